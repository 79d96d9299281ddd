import { z } from 'zod';

export const attachmentSummarySchema = z.object({
  id: z.uuid(),
  ticketId: z.number().int(),
  commentId: z.uuid().nullable(),
  filename: z.string(),
  contentType: z.string(),
  size: z.number().int(),
  sha256: z.string(),
  createdAt: z.date(),
});

export const commentSchema = z
  .object({
    id: z.uuid(),
    ticketId: z.number().int(),
    author: z.object({ id: z.uuid(), name: z.string(), role: z.enum(['requester', 'agent', 'admin']) }),
    body: z.string(),
    visibility: z.enum(['public', 'internal']),
    attachments: z.array(attachmentSummarySchema),
    createdAt: z.date(),
  })
  .meta({ id: 'Comment' });
export type CommentDto = z.infer<typeof commentSchema>;

export const createCommentBody = z.strictObject({
  body: z.string().trim().min(1).max(20_000),
  visibility: z
    .enum(['public', 'internal'])
    .default('public')
    .describe('internal: a note for agents and admins only, never shown to requesters'),
});
export type CreateCommentInput = z.infer<typeof createCommentBody>;

export const listCommentsQuery = z.strictObject({
  limit: z.coerce.number().int().min(1).max(100).default(50),
  cursor: z.string().min(1).max(2048).optional(),
});
export type ListCommentsQuery = z.infer<typeof listCommentsQuery>;

export const commentPageSchema = z.object({
  data: z.array(commentSchema),
  nextCursor: z.string().nullable(),
});
