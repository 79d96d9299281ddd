import { sql } from 'drizzle-orm';
import { check, index, integer, jsonb, pgTable, text, timestamp, uuid } from 'drizzle-orm/pg-core';
import type { BusinessHours } from '../../lib/business-time.js';
import { type TicketPriority, ticketType } from './tickets.js';
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
