import { sql } from 'drizzle-orm';
import { bigint, index, jsonb, pgTable, text, timestamp, uuid } from 'drizzle-orm/pg-core';
import { userRole } from './users.js';

/**
 * The rows audit_events_entity_idx holds, as SQL text: queries that want that index repeat it word for word
 * (the planner uses a partial index only where it can prove the query implies its predicate).
 */
export const ENTITY_INDEXED = sql.raw(
  `(entity_type <> 'ticket' OR (metadata ->> 'ticketId') IS DISTINCT FROM entity_id)`,
);
/** Its complement: a ticket's own rows, in the ticket index. */
export const TICKET_OWN_ROW = sql.raw(`(metadata ->> 'ticketId') = entity_id`);

/**
 * Append-only audit trail. Rows are written inside the transaction of the change they describe;
 * a trigger (migration 0001) refuses UPDATE, DELETE and TRUNCATE.
 */
export const auditEvents = pgTable(
  'audit_events',
  {
    /**
     * The event's public name. Never looked up (the API pages by seq): unique by construction
     * (gen_random_uuid), not by an index, so no audited write pays for a B-tree of random keys.
     */
    id: uuid().notNull().defaultRandom(),
    /** Insertion order; the key, and the cursor key together with occurredAt. */
    seq: bigint({ mode: 'number' }).generatedAlwaysAsIdentity().primaryKey(),
    occurredAt: timestamp({ withTimezone: true, mode: 'date' }).notNull().default(sql`clock_timestamp()`),
    actorId: uuid(),
    actorRole: userRole(),
    action: text().notNull(),
    entityType: text().notNull(),
    entityId: text(),
    traceId: text(),
    ip: text(),
    userAgent: text(),
    changes: jsonb().$type<Record<string, [unknown, unknown]>>().notNull().default({}),
    metadata: jsonb().$type<Record<string, unknown>>().notNull().default({}),
  },
  (t) => [
    // A ticket's own rows (entity = the ticket named in metadata.ticketId) are found by the ticket index
    // (audit_events_ticket_idx, migration 0005), so they are left out here: one random-key insert less for
    // every audited ticket change. The rest (other entities, and ticket rows that name no ticket or another
    // one, such as access.denied) stay. AuditRepository.list asks for each part in words both indexes match.
    index('audit_events_entity_idx').on(t.entityType, t.entityId, t.seq).where(ENTITY_INDEXED),
    // Only people's actions: the system's (an SLA breach pass writes thousands) are never looked up by actor.
    index('audit_events_actor_idx').on(t.actorId, t.seq).where(sql`actor_id IS NOT NULL`),
    index('audit_events_action_idx').on(t.action, t.seq),
    // Only rows written for a request: the system's (breach passes, jobs) carry no trace id.
    index('audit_events_trace_idx').on(t.traceId).where(sql`trace_id IS NOT NULL`),
    // Rows arrive in time order, so a block-range index answers from/to filters at a fraction of a
    // B-tree's upkeep: every audited change (an SLA breach pass writes thousands) skips one index insert.
    index('audit_events_occurred_brin').using('brin', t.occurredAt).with({ autosummarize: true }),
    // Reports: moves from solved back to open, by time.
    index('audit_events_reopened_idx')
      .on(t.occurredAt)
      .where(
        sql`action = 'ticket.status_changed' AND (changes -> 'status' ->> 0) = 'solved' AND (changes -> 'status' ->> 1) = 'open'`,
      ),
  ],
);
export type AuditEventRow = typeof auditEvents.$inferSelect;
export type NewAuditEvent = typeof auditEvents.$inferInsert;
