import { z } from 'zod';
import { pageCursor, pageLimit, text } from '../../http/input-schemas.js';

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
  .meta({
    id: 'Comment',
    example: {
      id: '3f2a1b0c-9d8e-4f7a-8b6c-5d4e3f2a1b0c',
      ticketId: 1042,
      author: { id: '7d9e3a0c-1b2f-4c5d-8e6f-9a0b1c2d3e4f', name: 'Ada Agent', role: 'agent' },
      body: 'Could you try the new VPN profile attached?',
      visibility: 'public',
      attachments: [],
      createdAt: '2026-11-22T09:40:00.000Z',
    },
  });
export type CommentDto = z.infer<typeof commentSchema>;

export const createCommentBody = z
  .strictObject({
    body: text().trim().min(1).max(20_000),
    visibility: z
      .enum(['public', 'internal'])
      .default('public')
      .describe('internal: a note for agents and admins only, never shown to requesters'),
  })
  .meta({ example: { body: 'Could you try the new VPN profile attached?', visibility: 'public' } });
export type CreateCommentInput = z.infer<typeof createCommentBody>;

export const listCommentsQuery = z.strictObject({
  limit: pageLimit(50),
  cursor: pageCursor().optional(),
});
export type ListCommentsQuery = z.infer<typeof listCommentsQuery>;

export const commentPageSchema = z.object({
  data: z.array(commentSchema),
  nextCursor: z.string().nullable(),
});
