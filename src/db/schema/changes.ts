import { sql } from 'drizzle-orm';
import {
  bigint,
  boolean,
  check,
  customType,
  index,
  integer,
  json,
  pgTable,
  smallint,
  text,
  timestamp,
  uuid,
} from 'drizzle-orm/pg-core';
import { userRole, users } from './users.js';

/**
 * PostgreSQL's 64-bit transaction id. Read and written as its decimal text: it can exceed 2^53 in
 * theory, and it is only ever compared inside SQL.
 */
const xid8 = customType<{ data: string; driverData: string }>({ dataType: () => 'xid8' });

/**
 * The change feed (transactional outbox). A row is written by `changes.record(tx, …)` inside the
 * transaction of the change it describes, next to its audit event.
 *
 * Order without gaps: `xid` is the writing transaction's id (pg_current_xact_id()). Readers serve only
 * rows whose xid is below the oldest transaction of this database still running, ordered by (xid, id):
 * every row a later read can reveal has a larger xid than everything already served, so a cursor
 * never skips an event that committed late with a lower id. Why this technique: changes.repository.ts.
 */
export const changeEvents = pgTable(
  'change_events',
  {
    id: bigint({ mode: 'number' }).generatedAlwaysAsIdentity().primaryKey(),
    xid: xid8().notNull().default(sql`pg_current_xact_id()`),
    occurredAt: timestamp({ withTimezone: true, mode: 'date' }).notNull().default(sql`now()`),
    type: text().notNull(),
    ticketId: integer(),
    /** The ticket's requester when the event was written: requesters' feeds are filtered on it. */
    requesterId: uuid(),
    /** Never shown to requesters (internal notes, their attachments, drafts). */
    staffOnly: boolean().notNull().default(false),
    actorId: uuid(),
    actorName: text(),
    actorRole: userRole(),
    traceId: text(),
    /**
     * The entity as staff see it; readers filter it per caller. `json`, not `jsonb`: it is only ever
     * written whole and read whole (never queried into), so it is stored as the text it arrives as: a
     * write only validates it (no binary conversion, a third of the parse), a read sends it back as is.
     */
    data: json().$type<Record<string, unknown>>().notNull(),
  },
  (t) => [
    index('change_events_position_idx').on(t.xid, t.id),
    index('change_events_ticket_idx').on(t.ticketId, t.xid, t.id),
    // A requester's feed: never a staff-only event (internal notes, drafts, SLA breaches), which skip it.
    index('change_events_requester_idx').on(t.requesterId, t.xid, t.id).where(sql`NOT staff_only`),
    // No index on occurred_at: retention walks the feed from its oldest end (position index), where the
    // oldest events are, so every recorded change pays one B-tree insert less.
  ],
);
export type ChangeEventRow = typeof changeEvents.$inferSelect;

/**
 * One row: the position of the newest event pruned by retention. A cursor before it has lost events
 * (410 CURSOR_EXPIRED); a cursor at or after it has not.
 */
export const changeFeedHorizon = pgTable(
  'change_feed_horizon',
  {
    id: smallint().primaryKey().default(1),
    xid: xid8().notNull(),
    eventId: bigint({ mode: 'number' }).notNull(),
    prunedAt: timestamp({ withTimezone: true, mode: 'date' }).notNull().default(sql`now()`),
  },
  (t) => [check('change_feed_horizon_single_row', sql`${t.id} = 1`)],
);

/**
 * Single-use tokens for `GET /changes/stream?token=` (EventSource cannot send headers). Stored as a
 * SHA-256 hash; consumed by DELETE … RETURNING so two instances can never both accept one.
 */
export const changeStreamTokens = pgTable(
  'change_stream_tokens',
  {
    tokenHash: text().primaryKey(),
    userId: uuid()
      .notNull()
      .references(() => users.id, { onDelete: 'cascade' }),
    expiresAt: timestamp({ withTimezone: true, mode: 'date' }).notNull(),
    /**
     * The access token that asked for it, AES-256-GCM-encrypted under a key derived from the stream token
     * itself (only the holder of the stream token can decrypt it). The stream re-checks it the way every
     * request is checked, so it ends when that token would be refused (expiry, logout, deactivation).
     */
    accessTokenSealed: text().notNull(),
    createdAt: timestamp({ withTimezone: true, mode: 'date' }).notNull().default(sql`now()`),
  },
  (t) => [index('change_stream_tokens_expires_idx').on(t.expiresAt)],
);
