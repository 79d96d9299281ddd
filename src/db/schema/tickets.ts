import { sql } from 'drizzle-orm';
import {
  type AnyPgColumn,
  bigint,
  check,
  customType,
  index,
  integer,
  jsonb,
  pgEnum,
  pgTable,
  primaryKey,
  text,
  timestamp,
  uuid,
} from 'drizzle-orm/pg-core';
import {
  COMMENT_VISIBILITIES,
  TICKET_PRIORITIES,
  TICKET_STATUSES,
  TICKET_TYPES,
} from '../../modules/tickets/ticket-values.js';
import { teams, users } from './users.js';

export type {
  CommentVisibility,
  TicketPriority,
  TicketStatus,
  TicketType,
} from '../../modules/tickets/ticket-values.js';

export const ticketStatus = pgEnum('ticket_status', TICKET_STATUSES);
/** Declared in ascending order so ORDER BY priority sorts low < normal < high < urgent. */
export const ticketPriority = pgEnum('ticket_priority', TICKET_PRIORITIES);
export const ticketType = pgEnum('ticket_type', TICKET_TYPES);
export const commentVisibility = pgEnum('comment_visibility', COMMENT_VISIBILITIES);

export const idempotencyStatus = pgEnum('idempotency_status', ['in_progress', 'completed']);

const tsvector = customType<{ data: string }>({ dataType: () => 'tsvector' });

/** Millisecond precision: a JS Date round-trips exactly, so keyset cursors never skip or repeat a row. */
const ts = () => timestamp({ withTimezone: true, mode: 'date', precision: 3 });

/** Text search configuration used for the search column and for queries (must match). */
export const SEARCH_CONFIG = 'english';

export const tickets = pgTable(
  'tickets',
  {
    /** The human ticket number (#1042). */
    id: integer().primaryKey().generatedAlwaysAsIdentity(),
    title: text().notNull(),
    description: text().notNull(),
    status: ticketStatus().notNull().default('new'),
    priority: ticketPriority().notNull().default('normal'),
    type: ticketType().notNull().default('question'),
    tags: text().array().notNull().default(sql`'{}'::text[]`),
    requesterId: uuid()
      .notNull()
      .references(() => users.id),
    assigneeId: uuid().references(() => users.id),
    teamId: uuid().references(() => teams.id, { onDelete: 'set null' }),
    /** Bumped on every change of the ticket; the ETag. */
    version: integer().notNull().default(1),
    createdAt: ts().notNull().defaultNow(),
    updatedAt: ts().notNull().defaultNow(),
    firstResponseAt: ts(),
    solvedAt: ts(),
    closedAt: ts(),
    /** Soft delete: set → invisible to everyone but an admin restoring it. */
    deletedAt: ts(),
    // ---- SLA (src/modules/sla): the governing policy and its clock, kept by the SLA service ----
    /** The policy that governed the ticket when its targets were last computed (no FK: a deleted policy leaves it). */
    slaPolicyId: uuid(),
    slaFirstResponseDueAt: ts(),
    /** null while the resolution clock is paused (pending) or without a resolution target. */
    slaResolutionDueAt: ts(),
    // Breach marks and the breach job's queue live in ticket_sla (schema/sla.ts): marking a breach must
    // not rewrite this wide, heavily indexed row.
    /** Start of the running resolution segment; null while paused or stopped. */
    slaResolutionStartedAt: ts(),
    /** Business milliseconds of resolution time used before the running segment. */
    slaResolutionConsumedMs: bigint({ mode: 'number' }).notNull().default(0),
    /** The earliest unmet due time ('infinity' when none): the key of sort=slaDueAt. */
    slaNextDueAt: ts().notNull().default(sql`'infinity'`),
    /** Set when this ticket was merged into another one (and closed). */
    mergedIntoId: integer().references((): AnyPgColumn => tickets.id),
    /**
     * Text of PUBLIC comments only, appended by the comment service in the comment's transaction.
     * Internal notes never enter it (nor `search`).
     */
    commentSearch: tsvector().notNull().default(sql`''::tsvector`),
    /** Ranked full-text document: title (A), description (B), public comments (C). */
    search: tsvector()
      .notNull()
      .generatedAlwaysAs(
        sql`setweight(to_tsvector('english', coalesce(title, '')), 'A') || setweight(to_tsvector('english', coalesce(description, '')), 'B') || setweight(comment_search, 'C')`,
      ),
  },
  (t) => [
    // Keyset pagination: every sort has (key, id) indexes over live tickets; common filters lead.
    index('tickets_updated_idx').on(t.updatedAt, t.id).where(sql`deleted_at IS NULL`),
    index('tickets_created_idx').on(t.createdAt, t.id).where(sql`deleted_at IS NULL`),
    index('tickets_priority_idx').on(t.priority, t.id).where(sql`deleted_at IS NULL`),
    index('tickets_status_updated_idx').on(t.status, t.updatedAt, t.id).where(sql`deleted_at IS NULL`),
    index('tickets_status_created_idx').on(t.status, t.createdAt, t.id).where(sql`deleted_at IS NULL`),
    index('tickets_requester_updated_idx')
      .on(t.requesterId, t.updatedAt, t.id)
      .where(sql`deleted_at IS NULL`),
    index('tickets_requester_created_idx')
      .on(t.requesterId, t.createdAt, t.id)
      .where(sql`deleted_at IS NULL`),
    index('tickets_assignee_updated_idx').on(t.assigneeId, t.updatedAt, t.id).where(sql`deleted_at IS NULL`),
    index('tickets_team_updated_idx').on(t.teamId, t.updatedAt, t.id).where(sql`deleted_at IS NULL`),
    index('tickets_tags_gin').using('gin', t.tags),
    index('tickets_search_gin').using('gin', t.search),
    // Reports (src/modules/reports): covering indexes made in migrations/0013_slarep_reports_sql.sql (drizzle cannot
    // declare INCLUDE), so each measure of a 30-day overview at a million tickets is an index-only range scan:
    // tickets_report_created_idx (created_at) INCLUDE (first_response_at, team_id, assignee_id),
    // tickets_report_solved_idx (solved_at) INCLUDE (created_at, team_id, assignee_id, sla_policy_id, id),
    // tickets_report_backlog_idx (status, priority, assignee_id) INCLUDE (team_id) over the backlog statuses,
    // tickets_report_first_response_idx (first_response_at) INCLUDE (id, team_id, assignee_id) over SLA-governed
    // tickets (first-response targets met in a period), tickets_report_sla_scope_idx (id) INCLUDE (the SLA and
    // scope columns) over governed tickets (breach marks of a period checked without heap fetches).
    index('tickets_sla_due_idx').on(t.slaNextDueAt, t.id).where(sql`deleted_at IS NULL`),
    index('tickets_deleted_idx').on(t.deletedAt).where(sql`deleted_at IS NOT NULL`),
    // The self-reference's foreign-key check on deleting a ticket, and "what was merged into #N".
    index('tickets_merged_into_idx').on(t.mergedIntoId).where(sql`merged_into_id IS NOT NULL`),
    check('tickets_title_len', sql`char_length(${t.title}) BETWEEN 1 AND 200`),
    check('tickets_description_len', sql`char_length(${t.description}) BETWEEN 1 AND 20000`),
    check('tickets_tags_max', sql`cardinality(${t.tags}) <= 20`),
    check('tickets_version_positive', sql`${t.version} >= 1`),
    check('tickets_sla_consumed_nonneg', sql`${t.slaResolutionConsumedMs} >= 0`),
  ],
);
export type TicketRow = typeof tickets.$inferSelect;
export type NewTicketRow = typeof tickets.$inferInsert;

export const comments = pgTable(
  'comments',
  {
    id: uuid().primaryKey().defaultRandom(),
    ticketId: integer()
      .notNull()
      .references(() => tickets.id, { onDelete: 'cascade' }),
    authorId: uuid()
      .notNull()
      .references(() => users.id),
    body: text().notNull(),
    visibility: commentVisibility().notNull().default('public'),
    createdAt: ts().notNull().defaultNow(),
  },
  (t) => [
    index('comments_ticket_created_idx').on(t.ticketId, t.createdAt, t.id),
    check('comments_body_len', sql`char_length(${t.body}) BETWEEN 1 AND 20000`),
  ],
);
export type CommentRow = typeof comments.$inferSelect;
export type NewCommentRow = typeof comments.$inferInsert;

/**
 * Idempotency-Key records, scoped per user. The INSERT … ON CONFLICT DO NOTHING claims a key; the
 * completed response is stored in the same transaction as the change it describes. Kept 24 h.
 */
export const idempotencyKeys = pgTable(
  'idempotency_keys',
  {
    userId: uuid()
      .notNull()
      .references(() => users.id, { onDelete: 'cascade' }),
    key: text().notNull(),
    /** SHA-256 of method, route and canonical body: same key + other request → 422. */
    requestHash: text().notNull(),
    status: idempotencyStatus().notNull().default('in_progress'),
    responseStatus: integer(),
    responseBody: text(),
    responseHeaders: jsonb().$type<Record<string, string>>(),
    createdAt: ts().notNull().defaultNow(),
    /** An in-progress claim older than this is considered abandoned (crashed instance) and may be re-claimed. */
    lockedUntil: ts().notNull(),
    expiresAt: ts().notNull(),
  },
  (t) => [primaryKey({ columns: [t.userId, t.key] }), index('idempotency_keys_expires_idx').on(t.expiresAt)],
);
