import { boolean, index, integer, pgTable, text, timestamp, uniqueIndex, uuid } from 'drizzle-orm/pg-core';
import { users } from './users.js';

/**
 * Per-user email notification switches. No row means every switch is on (the defaults); a row is
 * written the first time the user changes one.
 */
export const notificationPreferences = pgTable('notification_preferences', {
  userId: uuid()
    .primaryKey()
    .references(() => users.id, { onDelete: 'cascade' }),
  ticketCreated: boolean().notNull().default(true),
  publicReply: boolean().notNull().default(true),
  ticketSolved: boolean().notNull().default(true),
  requesterReply: boolean().notNull().default(true),
  assigned: boolean().notNull().default(true),
  slaBreach: boolean().notNull().default(true),
  updatedAt: timestamp({ withTimezone: true, mode: 'date' }).notNull().defaultNow(),
});
export type NotificationPreferencesRow = typeof notificationPreferences.$inferSelect;

/**
 * Every message the SMTP server (or the .eml fallback) accepted, keyed by its deterministic Message-ID:
 * a retried mail job looks here first, so a message is never handed over twice. Also lets inbound mail
 * check that an In-Reply-To names a message we really sent, and for which ticket.
 */
export const mailDeliveries = pgTable(
  'mail_deliveries',
  {
    messageId: text().primaryKey(),
    kind: text().notNull(),
    ticketId: integer(),
    recipientUserId: uuid().references(() => users.id, { onDelete: 'set null' }),
    /** The SMTP server's final answer (e.g. "250 2.0.0 Ok: queued as …") or the .eml path. */
    response: text().notNull(),
    sentAt: timestamp({ withTimezone: true, mode: 'date' }).notNull().defaultNow(),
  },
  (t) => [index('mail_deliveries_ticket_idx').on(t.ticketId)],
);

/**
 * Password-reset tokens, stored only as SHA-256 hashes. Single use (usedAt), 30 minutes (expiresAt);
 * `jobId` ties a token to the mail job that issued it so a retried job replaces its own unsent token.
 */
export const passwordResetTokens = pgTable(
  'password_reset_tokens',
  {
    id: uuid().primaryKey().defaultRandom(),
    userId: uuid()
      .notNull()
      .references(() => users.id, { onDelete: 'cascade' }),
    tokenHash: text().notNull(),
    jobId: text(),
    expiresAt: timestamp({ withTimezone: true, mode: 'date' }).notNull(),
    usedAt: timestamp({ withTimezone: true, mode: 'date' }),
    createdAt: timestamp({ withTimezone: true, mode: 'date' }).notNull().defaultNow(),
  },
  (t) => [
    uniqueIndex('password_reset_tokens_hash_uq').on(t.tokenHash),
    index('password_reset_tokens_user_idx').on(t.userId),
  ],
);
export type PasswordResetTokenRow = typeof passwordResetTokens.$inferSelect;

/**
 * Reset requests per account key (lower(email), whether or not such a user exists), for the per-email
 * throttle across instances. Rows older than the window are pruned as requests come in.
 */
export const passwordResetRequests = pgTable(
  'password_reset_requests',
  {
    id: uuid().primaryKey().defaultRandom(),
    emailKey: text().notNull(),
    occurredAt: timestamp({ withTimezone: true, mode: 'date' }).notNull().defaultNow(),
  },
  (t) => [index('password_reset_requests_email_occurred_idx').on(t.emailKey, t.occurredAt)],
);
