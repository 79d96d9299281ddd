import { z } from 'zod';
import { CHANGE_TYPES } from './changes.service.js';

export const changeEventSchema = z
  .object({
    id: z.string().describe('Opaque cursor of this event: pass it as `after` (or Last-Event-ID) to resume'),
    type: z.enum(CHANGE_TYPES),
    occurredAt: z.date(),
    ticketId: z.number().int().nullable(),
    actor: z
      .object({ id: z.uuid(), name: z.string(), role: z.enum(['requester', 'agent', 'admin']) })
      .nullable(),
    data: z
      .record(z.string(), z.unknown())
      .describe(
        'The entity as the caller may see it: `ticket` (a Ticket without allowedTransitions), `comment`, `attachment`, …',
      ),
  })
  .meta({
    id: 'ChangeEvent',
    example: {
      id: '48213-1907',
      type: 'ticket.status_changed',
      occurredAt: '2026-11-22T09:40:00.000Z',
      ticketId: 1042,
      actor: { id: '7d9e3a0c-1b2f-4c5d-8e6f-9a0b1c2d3e4f', name: 'Ada Agent', role: 'agent' },
      data: { ticket: { id: 1042, status: 'solved', version: 5 } },
    },
  });

const typesParam = z
  .string()
  .max(1000)
  .transform((v, ctx) => {
    const types = v
      .split(',')
      .map((t) => t.trim())
      .filter(Boolean);
    for (const t of types) {
      if (!(CHANGE_TYPES as readonly string[]).includes(t)) {
        ctx.addIssue({ code: 'custom', message: `unknown change type: ${t.slice(0, 50)}` });
        return z.NEVER;
      }
    }
    return types;
  })
  .describe(`Comma list of types: ${CHANGE_TYPES.join(', ')}`);

const cursorParam = z.string().min(1).max(64);

export const changeFiltersQuery = {
  types: typesParam.optional(),
  ticketId: z.coerce.number().int().min(1).max(2_147_483_647).optional(),
};

export const listChangesQuery = z.strictObject({
  after: cursorParam
    .optional()
    .describe('Resume after this event id / nextCursor; absent: the oldest kept event'),
  ...changeFiltersQuery,
  limit: z.coerce.number().int().min(1).max(500).default(100),
});

export const changesPageSchema = z.object({
  data: z.array(changeEventSchema),
  nextCursor: z
    .string()
    .describe('Where to resume (always present: poll again with after=nextCursor); see the Link header'),
});

export const streamQuery = z.strictObject({
  after: cursorParam
    .optional()
    .describe('Resume after this event id (Last-Event-ID wins when both are sent)'),
  token: z
    .string()
    .min(1)
    .max(200)
    .optional()
    .describe(
      'A single-use stream token from POST /changes/stream-tokens (for EventSource, which cannot send headers)',
    ),
  ...changeFiltersQuery,
});

export const streamTokenSchema = z
  .object({
    token: z.string().describe('Single use; pass as ?token= to GET /changes/stream within expiresIn seconds'),
    expiresIn: z.literal(60),
  })
  .meta({ id: 'StreamToken' });
