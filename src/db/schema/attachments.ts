import { sql } from 'drizzle-orm';
import { bigint, check, index, integer, pgTable, text, timestamp, uuid } from 'drizzle-orm/pg-core';
import { comments, tickets } from './tickets.js';
import { users } from './users.js';

const ts = () => timestamp({ withTimezone: true, mode: 'date', precision: 3 });

/**
 * Files attached to a ticket, optionally to one of its comments. The bytes live in the blob store
 * (src/lib/storage) under `storage_key`, their content address (`sha256/<2 hex>/<sha256>`, shared by
 * every row with the same bytes; older rows keep a generated `<2 hex>/<uuid>`); `filename` is the client's name,
 * sanitized, kept only for display and Content-Disposition. `content_type` was decided from the bytes.
 * An attachment of an internal note is as invisible to requesters as the note itself.
 */
export const attachments = pgTable(
  'attachments',
  {
    id: uuid().primaryKey().defaultRandom(),
    ticketId: integer()
      .notNull()
      .references(() => tickets.id, { onDelete: 'cascade' }),
    // Cascade, never SET NULL: un-linking a note's attachment would make it a public ticket attachment.
    commentId: uuid().references(() => comments.id, { onDelete: 'cascade' }),
    uploaderId: uuid()
      .notNull()
      .references(() => users.id),
    filename: text().notNull(),
    contentType: text().notNull(),
    size: bigint({ mode: 'number' }).notNull(),
    sha256: text().notNull(),
    storageKey: text().notNull(),
    createdAt: ts().notNull().defaultNow(),
  },
  (t) => [
    index('attachments_ticket_created_idx').on(t.ticketId, t.createdAt, t.id),
    index('attachments_comment_idx').on(t.commentId, t.createdAt, t.id).where(sql`comment_id IS NOT NULL`),
    // Not unique: identical bytes are stored once and shared.
    index('attachments_storage_key_idx').on(t.storageKey),
    check('attachments_filename_len', sql`char_length(${t.filename}) BETWEEN 1 AND 255`),
    check('attachments_size_nonneg', sql`${t.size} >= 0`),
    check('attachments_sha256_hex', sql`${t.sha256} ~ '^[0-9a-f]{64}$'`),
  ],
);
export type AttachmentRow = typeof attachments.$inferSelect;
export type NewAttachmentRow = typeof attachments.$inferInsert;
