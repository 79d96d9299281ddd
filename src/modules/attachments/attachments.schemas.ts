import { z } from 'zod';
import type { AttachmentRow } from '../../db/schema/index.js';
import { ticketNumber } from '../../http/input-schemas.js';

export const attachmentSchema = z
  .object({
    id: z.uuid(),
    ticketId: z.number().int().describe('The ticket number'),
    commentId: z
      .uuid()
      .nullable()
      .describe('The comment this file belongs to, or null for a ticket-level file'),
    filename: z.string().describe("The uploader's filename, sanitized (no path, no control characters)"),
    contentType: z.string().describe('Decided by the server from the bytes, not from the client'),
    size: z.number().int().describe('Bytes'),
    sha256: z.string().describe('Lowercase hex SHA-256 of the bytes'),
    createdAt: z.date(),
  })
  .meta({ id: 'Attachment' });

export type AttachmentDto = z.infer<typeof attachmentSchema>;

export function toAttachmentDto(row: AttachmentRow): AttachmentDto {
  return {
    id: row.id,
    ticketId: row.ticketId,
    commentId: row.commentId,
    filename: row.filename,
    contentType: row.contentType,
    size: row.size,
    sha256: row.sha256,
    createdAt: row.createdAt,
  };
}

export const attachmentIdParams = z.strictObject({ id: z.uuid().describe('The attachment id') });

export const ticketIdParams = z.strictObject({
  id: ticketNumber().describe('The ticket number'),
});

/** The multipart body, for the OpenAPI document only (the stream is parsed by the handler, not validated). */
export const uploadBodyDoc = z
  .object({
    file: z
      .array(z.string().meta({ format: 'binary' }))
      .min(1)
      .max(5)
      .describe(
        'One to five files (any field name; `file` is conventional). Repeat the field for several files.',
      ),
    commentId: z
      .uuid()
      .optional()
      .describe('Attach the files to this comment of the ticket, written by the caller'),
  })
  .meta({ id: 'AttachmentUpload' });
