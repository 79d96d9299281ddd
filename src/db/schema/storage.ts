import { sql } from 'drizzle-orm';
import { bigint, check, index, pgTable, timestamp, uuid } from 'drizzle-orm/pg-core';
import { users } from './users.js';

/**
 * Bytes each account uploaded, one row per accepted upload request, for the rolling 24-hour upload quota.
 * A ledger rather than a sum over `attachments`: deleting a comment (and so its files) gives no quota
 * back, and identical bytes count for every upload although they are stored once. Rows older than a day
 * are pruned by the next upload of the same account.
 */
export const uploadUsage = pgTable(
  'upload_usage',
  {
    id: bigint({ mode: 'number' }).generatedAlwaysAsIdentity().primaryKey(),
    userId: uuid()
      .notNull()
      .references(() => users.id, { onDelete: 'cascade' }),
    bytes: bigint({ mode: 'number' }).notNull(),
    createdAt: timestamp({ withTimezone: true, mode: 'date', precision: 3 }).notNull().defaultNow(),
  },
  (t) => [
    index('upload_usage_user_created_idx').on(t.userId, t.createdAt),
    check('upload_usage_bytes_nonneg', sql`${t.bytes} >= 0`),
  ],
);
export type UploadUsageRow = typeof uploadUsage.$inferSelect;
