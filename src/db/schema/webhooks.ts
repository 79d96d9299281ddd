import { sql } from 'drizzle-orm';
import {
  boolean,
  check,
  index,
  integer,
  jsonb,
  pgEnum,
  pgTable,
  text,
  timestamp,
  uniqueIndex,
  uuid,
} from 'drizzle-orm/pg-core';
import { users } from './users.js';

const ts = () => timestamp({ withTimezone: true, mode: 'date', precision: 3 });

/**
 * Outbound webhooks (admin). Secrets are kept encrypted (AES-256-GCM, key derived from the server secret):
 * they must be readable to sign, so they cannot be hashed. After a rotation the previous secret keeps
 * signing beside the new one until `previousSecretExpiresAt`.
 */
export const webhooks = pgTable(
  'webhooks',
  {
    id: uuid().primaryKey().defaultRandom(),
    url: text().notNull(),
    /** Change event types, or ['*'] for all. */
    events: text().array().notNull(),
    description: text(),
    active: boolean().notNull().default(true),
    disabledReason: text(),
    secretEnc: text().notNull(),
    previousSecretEnc: text(),
    previousSecretExpiresAt: ts(),
    /** Start of the current run of failed attempts (null after a success); 5 days of it disables the webhook. */
    failingSince: ts(),
    createdBy: uuid().references(() => users.id),
    createdAt: ts().notNull().defaultNow(),
    updatedAt: ts().notNull().defaultNow(),
  },
  (t) => [
    index('webhooks_created_idx').on(t.createdAt, t.id),
    index('webhooks_active_idx').on(t.id).where(sql`active`),
    check('webhooks_url_len', sql`char_length(${t.url}) BETWEEN 1 AND 2048`),
  ],
);
export type WebhookRow = typeof webhooks.$inferSelect;

export const deliveryStatus = pgEnum('webhook_delivery_status', ['pending', 'succeeded', 'failed']);
export type DeliveryStatus = (typeof deliveryStatus.enumValues)[number];

/** One delivery per (webhook, event): every attempt and redelivery sends the same message id and body. */
export const webhookDeliveries = pgTable(
  'webhook_deliveries',
  {
    id: uuid().primaryKey().defaultRandom(),
    webhookId: uuid()
      .notNull()
      .references(() => webhooks.id, { onDelete: 'cascade' }),
    eventId: text().notNull(),
    eventType: text().notNull(),
    /** The exact JSON body sent on every attempt: {type, timestamp, data}. */
    payload: jsonb().$type<Record<string, unknown>>().notNull(),
    status: deliveryStatus().notNull().default('pending'),
    attempts: integer().notNull().default(0),
    lastResponseStatus: integer(),
    lastError: text(),
    nextAttemptAt: ts(),
    createdAt: ts().notNull().defaultNow(),
    updatedAt: ts().notNull().defaultNow(),
  },
  (t) => [
    uniqueIndex('webhook_deliveries_event_uq').on(t.webhookId, t.eventId),
    index('webhook_deliveries_webhook_created_idx').on(t.webhookId, t.createdAt, t.id),
  ],
);
export type WebhookDeliveryRow = typeof webhookDeliveries.$inferSelect;
