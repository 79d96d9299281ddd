import { z } from 'zod';
import { listTicketsQuery, priorityEnum, statusEnum } from '../tickets/tickets.schemas.js';

export const BULK_MAX_TICKETS = 1000;

const tagList = z.array(z.string().trim().toLowerCase().min(1).max(40)).min(1).max(20);

export const bulkChangesSchema = z
  .strictObject({
    status: statusEnum.optional(),
    priority: priorityEnum.optional(),
    assigneeId: z.uuid().nullable().optional(),
    teamId: z.uuid().nullable().optional(),
    addTags: tagList.optional(),
    removeTags: tagList.optional(),
  })
  .refine((c) => Object.values(c).some((v) => v !== undefined), { message: 'Name at least one change.' });
export type BulkChanges = z.infer<typeof bulkChangesSchema>;

export const bulkFilterSchema = listTicketsQuery
  .omit({ sort: true, limit: true, cursor: true })
  .describe('The filters of GET /tickets (arrays or comma lists); resolved once, at the dry run');

export const bulkBody = z
  .strictObject({
    ids: z
      .array(z.number().int().min(1).max(2_147_483_647))
      .min(1)
      .max(BULK_MAX_TICKETS)
      .refine((ids) => new Set(ids).size === ids.length, { message: 'ids must be unique' })
      .optional(),
    filter: bulkFilterSchema.optional(),
    changes: bulkChangesSchema,
    dryRun: z.boolean().optional(),
    confirmationToken: z
      .string()
      .min(1)
      .max(512)
      .optional()
      .describe('From the dry run of this exact request (10 minutes, single use)'),
  })
  .refine((b) => (b.ids === undefined) !== (b.filter === undefined), {
    message: 'Send either ids or filter.',
  })
  .refine((b) => b.dryRun === true || b.confirmationToken !== undefined, {
    message: 'Preview with dryRun: true first, then send its confirmationToken.',
  })
  .meta({
    example: { ids: [1042, 1043], changes: { status: 'pending', addTags: ['outage'] }, dryRun: true },
  });
export type BulkBody = z.infer<typeof bulkBody>;

export const bulkOutcomeSchema = z.object({
  id: z.number().int(),
  outcome: z.enum(['change', 'skip', 'error']),
  code: z.string().optional().describe('For an error: the code PATCH /tickets/{id} would answer'),
});
export type BulkOutcome = z.infer<typeof bulkOutcomeSchema>;

export const bulkPreviewSchema = z
  .object({
    matched: z.number().int(),
    results: z.array(bulkOutcomeSchema),
    confirmationToken: z.string(),
    expiresAt: z.date(),
  })
  .meta({ id: 'BulkPreview' });

export const bulkAcceptedSchema = z
  .object({ jobId: z.string(), bulkId: z.uuid() })
  .meta({ id: 'BulkAccepted' });
