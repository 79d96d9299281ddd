import { sql } from 'drizzle-orm';
import { bigint, index, jsonb, pgTable, text, timestamp, uuid } from 'drizzle-orm/pg-core';
import { userRole } from './users.js';

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
    index('audit_events_entity_idx').on(t.entityType, t.entityId, t.seq),
    // Only people's actions: the system's (an SLA breach pass writes thousands) are never looked up by actor.
    index('audit_events_actor_idx').on(t.actorId, t.seq).where(sql`actor_id IS NOT NULL`),
    index('audit_events_action_idx').on(t.action, t.seq),
    index('audit_events_trace_idx').on(t.traceId),
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
