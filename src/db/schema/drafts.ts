import { sql } from 'drizzle-orm';
import { check, index, integer, jsonb, pgEnum, pgTable, text, timestamp, uuid } from 'drizzle-orm/pg-core';
import { commentVisibility, tickets } from './tickets.js';
import { users } from './users.js';

export const draftState = pgEnum('draft_state', ['pending', 'approved', 'rejected']);

const ts = () => timestamp({ withTimezone: true, mode: 'date', precision: 3 });

/**
 * Proposed replies and ticket changes (by staff or an assistant's token) that a person approves or
 * rejects. Staff-only: no requester-facing read ever joins this table.
 */
export const drafts = pgTable(
  'drafts',
  {
    id: uuid().primaryKey().defaultRandom(),
    ticketId: integer()
      .notNull()
      .references(() => tickets.id, { onDelete: 'cascade' }),
    authorId: uuid()
      .notNull()
      .references(() => users.id),
    body: text(),
    visibility: commentVisibility().notNull().default('public'),
    /** The proposed ticket change, in PATCH /tickets/{id} shape (status, priority, type, tags, assigneeId, teamId). */
    changes: jsonb().$type<Record<string, unknown>>().notNull().default(sql`'{}'::jsonb`),
    note: text(),
    state: draftState().notNull().default('pending'),
    /** The ticket's version when the draft was written: approval of a draft on a changed ticket is refused. */
    ticketVersion: integer().notNull(),
    createdAt: ts().notNull().defaultNow(),
    decidedAt: ts(),
    decidedById: uuid().references(() => users.id),
    reason: text(),
  },
  (t) => [
    index('drafts_ticket_created_idx').on(t.ticketId, t.createdAt, t.id),
    index('drafts_pending_created_idx').on(t.createdAt, t.id).where(sql`state = 'pending'`),
    check('drafts_body_len', sql`${t.body} IS NULL OR char_length(${t.body}) BETWEEN 1 AND 20000`),
    check('drafts_note_len', sql`${t.note} IS NULL OR char_length(${t.note}) <= 2000`),
  ],
);
export type DraftRow = typeof drafts.$inferSelect;

/**
 * A bulk change previewed by a dry run: the resolved ticket ids (the filter's snapshot), the changes and
 * the hash of the request, kept for the confirmation token (which names this row). Executing claims the
 * row once (`usedAt`): a token runs at most one job.
 */
export const bulkRuns = pgTable(
  'bulk_runs',
  {
    id: uuid().primaryKey().defaultRandom(),
    actorId: uuid()
      .notNull()
      .references(() => users.id, { onDelete: 'cascade' }),
    ticketIds: integer().array().notNull(),
    changes: jsonb().$type<Record<string, unknown>>().notNull(),
    requestHash: text().notNull(),
    createdAt: ts().notNull().defaultNow(),
    expiresAt: ts().notNull(),
    usedAt: ts(),
    jobId: text(),
  },
  (t) => [index('bulk_runs_expires_idx').on(t.expiresAt)],
);
