import { sql } from 'drizzle-orm';
import { check, index, integer, jsonb, pgTable, text, timestamp, uuid } from 'drizzle-orm/pg-core';
import type { BusinessHours } from '../../lib/business-time.js';
import { type TicketPriority, tickets, ticketType } from './tickets.js';
import { teams } from './users.js';

const ts = () => timestamp({ withTimezone: true, mode: 'date', precision: 3 });

export interface SlaTarget {
  firstResponseMinutes?: number;
  resolutionMinutes?: number;
}
export type SlaTargets = Partial<Record<TicketPriority, SlaTarget>>;

/**
 * Service-level policies: the first one by `position` whose applies-to fields all match a ticket
 * governs it. `businessHours` null = every minute counts (24/7).
 */
export const slaPolicies = pgTable(
  'sla_policies',
  {
    id: uuid().primaryKey().defaultRandom(),
    name: text().notNull(),
    position: integer().notNull(),
    appliesToTeamId: uuid().references(() => teams.id, { onDelete: 'cascade' }),
    appliesToType: ticketType(),
    targets: jsonb().$type<SlaTargets>().notNull(),
    businessHours: jsonb().$type<BusinessHours | null>(),
    createdAt: ts().notNull().defaultNow(),
    updatedAt: ts().notNull().defaultNow(),
  },
  (t) => [
    index('sla_policies_position_idx').on(t.position, t.createdAt, t.id),
    check('sla_policies_name_len', sql`char_length(${t.name}) BETWEEN 1 AND 100`),
    check('sla_policies_position_nonneg', sql`${t.position} >= 0`),
  ],
);
export type SlaPolicyRow = typeof slaPolicies.$inferSelect;
export type NewSlaPolicyRow = typeof slaPolicies.$inferInsert;

/**
 * A ticket's SLA breach marks and the breach job's queue, apart from the wide tickets row: marking a breach
 * writes only this narrow row (two small partial indexes move, not the ticket's seventeen), so a pass over
 * thousands of due targets stays cheap. A row exists once a ticket has had something to mark or watch.
 * The due times and the clock stay on tickets: they change only with a change of the ticket itself.
 */
export const ticketSla = pgTable(
  'ticket_sla',
  {
    ticketId: integer()
      .primaryKey()
      .references(() => tickets.id, { onDelete: 'cascade' }),
    firstResponseBreachedAt: ts(),
    resolutionBreachedAt: ts(),
    /** The earliest due time not yet marked breached: what the breach job waits for (null: nothing). */
    breachCheckAt: ts(),
  },
  (t) => [
    // The breach job's scan: only targets still unmarked are in it.
    index('ticket_sla_breach_check_idx').on(t.breachCheckAt).where(sql`breach_check_at IS NOT NULL`),
    // GET /tickets?slaBreached=false&sort=slaDueAt: unbreached tickets by their earliest unmet due time
    // (for a ticket with no marks that is its earliest unmarked one), without stepping over breached ones.
    index('ticket_sla_unbreached_due_idx')
      .on(t.breachCheckAt, t.ticketId)
      .where(
        sql`breach_check_at IS NOT NULL AND first_response_breached_at IS NULL AND resolution_breached_at IS NULL`,
      ),
    // Reports: targets marked missed in a period.
    index('ticket_sla_fr_breached_idx')
      .on(t.firstResponseBreachedAt)
      .where(sql`first_response_breached_at IS NOT NULL`),
    index('ticket_sla_res_breached_idx')
      .on(t.resolutionBreachedAt)
      .where(sql`resolution_breached_at IS NOT NULL`),
  ],
);
export type TicketSlaRow = typeof ticketSla.$inferSelect;
