import { z } from 'zod';
import { ticketPriority, ticketStatus, ticketType } from '../../db/schema/index.js';
import { pageCursor, pageLimit, text, ticketNumber } from '../../http/input-schemas.js';
import { ticketSlaSchema } from '../sla/sla.schemas.js';

export const statusEnum = z.enum(ticketStatus.enumValues);
export const priorityEnum = z.enum(ticketPriority.enumValues);
export const typeEnum = z.enum(ticketType.enumValues);

const title = text().trim().min(1).max(200);
const description = text().trim().min(1).max(20_000);
/** Tags are trimmed, lower-cased and de-duplicated; 1..40 characters each, at most 20. */
const tags = z
  .array(text().trim().toLowerCase().min(1).max(40))
  .max(20)
  .transform((t) => [...new Set(t)]);

export const ticketIdParams = z.strictObject({
  id: ticketNumber().describe('The ticket number'),
});

/** Documentation example (OpenAPI) of a ticket as an agent sees it. */
const TICKET_EXAMPLE = {
  id: 1042,
  title: 'VPN drops every hour',
  description: 'Since Monday the VPN disconnects on the hour, on Wi-Fi and cable.',
  status: 'open',
  priority: 'high',
  type: 'incident',
  tags: ['vpn', 'network'],
  requester: {
    id: '0b6f1c1e-6a3e-4d8e-9a52-3c1f2d4b5a60',
    name: 'Rita Requester',
    email: 'rita@example.com',
  },
  assignee: { id: '7d9e3a0c-1b2f-4c5d-8e6f-9a0b1c2d3e4f', name: 'Ada Agent' },
  teamId: null,
  version: 3,
  createdAt: '2026-11-22T09:12:00.000Z',
  updatedAt: '2026-11-22T10:00:00.000Z',
  firstResponseAt: '2026-11-22T09:40:00.000Z',
  solvedAt: null,
  closedAt: null,
  deletedAt: null,
  sla: {
    policyId: '3e0c8f1a-2b4d-4c6e-8f0a-1b2c3d4e5f60',
    firstResponseDueAt: '2026-11-22T10:12:00.000Z',
    resolutionDueAt: '2026-11-23T09:12:00.000Z',
    firstResponseBreachedAt: null,
    resolutionBreachedAt: null,
  },
  mergedIntoId: null,
  allowedTransitions: ['pending', 'on_hold', 'solved', 'cancelled'],
};

export const ticketSchema = z
  .object({
    id: z.number().int().describe('The ticket number (#1042)'),
    title: z.string(),
    description: z.string(),
    status: statusEnum,
    priority: priorityEnum,
    type: typeEnum,
    tags: z.array(z.string()),
    requester: z.object({ id: z.uuid(), name: z.string(), email: z.string().meta({ format: 'email' }) }),
    assignee: z.object({ id: z.uuid(), name: z.string() }).nullable(),
    teamId: z.uuid().nullable(),
    version: z.number().int().describe('Bumped on every change; also sent as the ETag'),
    createdAt: z.date(),
    updatedAt: z.date(),
    firstResponseAt: z.date().nullable(),
    solvedAt: z.date().nullable(),
    closedAt: z.date().nullable(),
    deletedAt: z
      .date()
      .nullable()
      .describe('Set on a soft-deleted ticket; only admins can read one (to restore it)'),
    sla: ticketSlaSchema,
    mergedIntoId: z
      .number()
      .int()
      .nullable()
      .describe(
        'Set when this ticket was merged into another (it is closed; its conversation shows on that one)',
      ),
    allowedTransitions: z
      .array(statusEnum)
      .describe('The statuses the caller may move this ticket to now (draw buttons from this)'),
  })
  .meta({ id: 'Ticket', example: TICKET_EXAMPLE });
export type TicketDto = z.infer<typeof ticketSchema>;

export const createTicketBody = z
  .strictObject({
    title,
    description,
    priority: priorityEnum.optional().describe('Requesters may set it at creation only'),
    type: typeEnum.optional().describe('Requesters may set it at creation only'),
    tags: tags.optional().describe('Agents and admins only'),
    teamId: z.uuid().nullable().optional().describe('Agents and admins only'),
    requesterId: z
      .uuid()
      .optional()
      .describe('Agents and admins: open the ticket on behalf of this active requester (default: self)'),
  })
  .meta({
    example: {
      title: 'VPN drops every hour',
      description: 'Since Monday the VPN disconnects on the hour, on Wi-Fi and cable.',
      priority: 'high',
      type: 'incident',
    },
  });
export type CreateTicketInput = z.infer<typeof createTicketBody>;

export const patchTicketBody = z
  .strictObject({
    title: title.optional(),
    description: description.optional(),
    priority: priorityEnum.optional(),
    type: typeEnum.optional(),
    tags: tags.optional(),
    teamId: z.uuid().nullable().optional(),
    status: statusEnum.optional(),
    assigneeId: z.uuid().nullable().optional(),
  })
  .refine((b) => Object.values(b).some((v) => v !== undefined), { message: 'Send at least one field.' })
  .meta({
    minProperties: 1,
    example: { status: 'pending', assigneeId: '7d9e3a0c-1b2f-4c5d-8e6f-9a0b1c2d3e4f' },
  });
export type PatchTicketInput = z.infer<typeof patchTicketBody>;

/**
 * `status=open,pending` or `status=open&status=pending`. Documented as a repeatable enum parameter
 * (an array of the values, form style), which is what clients and mock servers check against.
 */
const multi = <T extends z.ZodEnum<Record<string, string>>>(item: T) =>
  z
    .union([text(), z.array(text())])
    .transform((v) =>
      (Array.isArray(v) ? v : [v])
        .flatMap((s) => s.split(','))
        .map((s) => s.trim())
        .filter(Boolean),
    )
    .pipe(z.array(item).min(1))
    .meta({ anyOf: undefined, type: 'array', items: { type: 'string', enum: item.options } } as z.GlobalMeta);

export const SORTS = [
  'updatedAt',
  '-updatedAt',
  'createdAt',
  '-createdAt',
  'priority',
  '-priority',
  'slaDueAt',
  '-slaDueAt',
  'relevance',
] as const;
export type TicketSort = (typeof SORTS)[number];

export const listTicketsQuery = z.strictObject({
  status: multi(statusEnum)
    .optional()
    .describe(`Repeatable or comma list of: ${ticketStatus.enumValues.join(', ')}`),
  priority: multi(priorityEnum)
    .optional()
    .describe(`Repeatable or comma list of: ${ticketPriority.enumValues.join(', ')}`),
  type: multi(typeEnum)
    .optional()
    .describe(`Repeatable or comma list of: ${ticketType.enumValues.join(', ')}`),
  assigneeId: z
    .union([z.uuid(), z.literal('me'), z.literal('none')])
    .optional()
    .describe('A user id, `me`, or `none` (unassigned)'),
  requesterId: z.uuid().optional(),
  teamId: z.uuid().optional(),
  tag: text().trim().toLowerCase().min(1).max(40).optional(),
  q: text()
    .trim()
    .min(1)
    .max(200)
    .optional()
    .describe(
      'Full-text search over title, description and public comments. Sorted like any list (default -updatedAt); sort=relevance ranks the matches best first.',
    ),
  createdAfter: z.iso.datetime({ offset: true }).optional(),
  createdBefore: z.iso.datetime({ offset: true }).optional(),
  updatedAfter: z.iso.datetime({ offset: true }).optional(),
  slaBreached: z
    .enum(['true', 'false'])
    .transform((v) => v === 'true')
    .optional()
    .describe('true: tickets with a missed SLA target; false: tickets without one'),
  sort: z
    .enum(SORTS)
    .optional()
    .describe(
      'Default -updatedAt. slaDueAt: the earliest unmet SLA due time first (missed ones included; tickets with none last). relevance (only with q) ranks matches best first; its cost grows with the number of matches.',
    ),
  limit: pageLimit(25),
  cursor: pageCursor().optional().describe('nextCursor of the previous page (opaque)'),
});
export type ListTicketsQuery = z.infer<typeof listTicketsQuery>;

export const ticketPageSchema = z
  .object({
    data: z.array(ticketSchema),
    nextCursor: z.string().nullable(),
  })
  .meta({
    example: {
      data: [TICKET_EXAMPLE],
      nextCursor: 'eyJ1IjoiMjAyNi0xMS0yMlQxMDowMDowMC4wMDBaIiwiaSI6MTA0Mn0',
    },
  });

export const ifMatchHeaders = z.object({
  'if-match': text()
    .optional()
    .describe(
      'The ETag of the version you edited ("3"); a stale one → 412 VERSION_MISMATCH, nothing changed',
    ),
});

export const idempotencyHeaders = z.object({
  'idempotency-key': text()
    .min(1)
    .max(255)
    .optional()
    .describe(
      'Retry-safe creation: same key + same body within 24 h replays the first response (Idempotent-Replayed: true)',
    ),
});
