import { sql } from 'drizzle-orm';
import { check, index, integer, pgTable, text, timestamp, uniqueIndex, uuid } from 'drizzle-orm/pg-core';
import { tickets } from './tickets.js';
import { users } from './users.js';

/**
 * Every mail POST /inbound/email took, keyed by its Message-ID (or a hash of the raw message when it
 * has none): a mail delivered twice is processed once, and the second delivery is answered with the
 * first one's outcome. Written in the same transaction as the ticket or comment it produced, so a
 * row exists exactly when the mail's effects do. Ignored mail (auto-replies, bounces, …) has a row too.
 */
export const inboundMessages = pgTable(
  'inbound_messages',
  {
    id: uuid().primaryKey().defaultRandom(),
    /** `<…@…>` as the sender wrote it (bounded), or `sha256:<hex>` of the raw message. */
    messageId: text().notNull(),
    /** created | replied | ignored */
    outcome: text().notNull(),
    /** Why an ignored mail was ignored (auto_reply, bounce, …), or how a reply was routed. */
    reason: text(),
    ticketId: integer().references(() => tickets.id, { onDelete: 'set null' }),
    commentId: uuid(),
    senderId: uuid().references(() => users.id, { onDelete: 'set null' }),
    /** The From address (lower-cased), for support staff looking for a lost mail. */
    fromAddress: text(),
    receivedAt: timestamp({ withTimezone: true, mode: 'date' }).notNull().defaultNow(),
  },
  (t) => [
    uniqueIndex('inbound_messages_message_id_uq').on(t.messageId),
    index('inbound_messages_ticket_idx').on(t.ticketId),
    // The retention purge walks the oldest rows.
    index('inbound_messages_received_idx').on(t.receivedAt),
    check('inbound_messages_outcome_check', sql`${t.outcome} IN ('created', 'replied', 'ignored')`),
  ],
);
export type InboundMessageRow = typeof inboundMessages.$inferSelect;
