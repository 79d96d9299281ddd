import { z } from 'zod';
import { commentSchema } from '../comments/comments.schemas.js';
import { priorityEnum, statusEnum, ticketSchema, typeEnum } from '../tickets/tickets.schemas.js';

/** The ticket change a draft proposes: a subset of PATCH /tickets/{id}, judged by the same rules at approval. */
export const draftChangesSchema = z.strictObject({
  status: statusEnum.optional(),
  priority: priorityEnum.optional(),
  type: typeEnum.optional(),
  tags: z
    .array(z.string().trim().toLowerCase().min(1).max(40))
    .max(20)
    .transform((t) => [...new Set(t)])
    .optional(),
  assigneeId: z.uuid().nullable().optional(),
  teamId: z.uuid().nullable().optional(),
});
export type DraftChanges = z.infer<typeof draftChangesSchema>;

export const createDraftBody = z
  .strictObject({
    body: z.string().trim().min(1).max(20_000).optional().describe('The proposed reply (or internal note)'),
    visibility: z.enum(['public', 'internal']).default('public'),
    changes: draftChangesSchema.optional(),
    note: z.string().trim().min(1).max(2000).optional().describe('Why: for the person who decides'),
  })
  .refine((b) => b.body !== undefined || Object.values(b.changes ?? {}).some((v) => v !== undefined), {
    message: 'A draft proposes a reply (body), changes, or both.',
  })
  .meta({
    example: {
      body: 'The new VPN profile fixes this; it is attached to the article below.',
      visibility: 'public',
      changes: { status: 'pending', tags: ['vpn'] },
      note: 'Suggested from 14 similar tickets',
    },
  });
export type CreateDraftInput = z.infer<typeof createDraftBody>;

export const approveDraftBody = z
  .strictObject({
    body: z
      .string()
      .trim()
      .min(1)
      .max(20_000)
      .optional()
      .describe("Replaces the draft's reply (the approver edited it)"),
  })
  .meta({ example: { body: 'The new VPN profile fixes this; it is attached below.' } })
  .optional();

export const rejectDraftBody = z
  .strictObject({ reason: z.string().trim().min(1).max(2000).optional() })
  .meta({ example: { reason: 'Wrong tone; the customer asked for a refund, not a workaround.' } })
  .optional();

export const draftSchema = z
  .object({
    id: z.uuid(),
    ticketId: z.number().int(),
    author: z.object({ id: z.uuid(), name: z.string(), role: z.enum(['requester', 'agent', 'admin']) }),
    body: z.string().nullable(),
    visibility: z.enum(['public', 'internal']),
    changes: z.record(z.string(), z.unknown()),
    note: z.string().nullable(),
    state: z.enum(['pending', 'approved', 'rejected']),
    ticketVersion: z.number().int().describe('The ticket version the draft was written against'),
    createdAt: z.date(),
    decidedAt: z.date().nullable(),
    decidedBy: z.object({ id: z.uuid(), name: z.string() }).nullable(),
    reason: z.string().nullable().describe('Why it was rejected (when a reason was given)'),
  })
  .meta({ id: 'Draft' });
export type DraftDto = z.infer<typeof draftSchema>;

export const draftIdParams = z.strictObject({ id: z.uuid() });

export const listDraftsQuery = z.strictObject({
  state: z.enum(['pending', 'approved', 'rejected']).optional(),
  limit: z.coerce.number().int().min(1).max(100).default(50),
  cursor: z.string().min(1).max(2048).optional(),
});
export type ListDraftsQuery = z.infer<typeof listDraftsQuery>;

export const draftPageSchema = z.object({ data: z.array(draftSchema), nextCursor: z.string().nullable() });

export const approvalSchema = z.object({ ticket: ticketSchema, comment: commentSchema.nullable() });
