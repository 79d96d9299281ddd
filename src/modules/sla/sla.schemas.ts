import { z } from 'zod';
import { ticketPriority, ticketType } from '../../db/schema/index.js';
import { isIanaTimezone, isIsoDate, isLocalTime, minutesOfDay, WEEKDAYS } from '../../lib/business-time.js';

/** A year of minutes: targets beyond it are typing mistakes, and they bound the business-time search. */
const MAX_TARGET_MINUTES = 525_600;
const minutes = z.number().int().min(1).max(MAX_TARGET_MINUTES);

const target = z
  .strictObject({
    firstResponseMinutes: minutes
      .optional()
      .describe('Business minutes from creation to the first public staff reply'),
    resolutionMinutes: minutes
      .optional()
      .describe('Business minutes of open time (pending does not count) until solved'),
  })
  .refine((t) => t.firstResponseMinutes !== undefined || t.resolutionMinutes !== undefined, {
    message: 'set firstResponseMinutes, resolutionMinutes or both',
  });

const targets = z
  .strictObject(
    Object.fromEntries(ticketPriority.enumValues.map((p) => [p, target.optional()])) as {
      [K in (typeof ticketPriority.enumValues)[number]]: z.ZodOptional<typeof target>;
    },
  )
  .refine((t) => Object.values(t).some((v) => v !== undefined), {
    message: 'set a target for at least one priority',
  })
  .describe('Targets per ticket priority; a priority without an entry has no target under this policy');

// An array of exactly two (not a tuple): OpenAPI readers (Postman, Prism) misread prefixItems.
const interval = z
  .array(z.string().max(5))
  .length(2)
  .transform((pair) => pair as [string, string])
  .superRefine(([start, end], ctx) => {
    if (!isLocalTime(start))
      ctx.addIssue({ code: 'custom', message: 'start must be HH:MM (00:00–23:59)', path: [0] });
    if (!isLocalTime(end, true))
      ctx.addIssue({ code: 'custom', message: 'end must be HH:MM (00:01–24:00)', path: [1] });
    else if (isLocalTime(start) && minutesOfDay(end) <= minutesOfDay(start))
      ctx.addIssue({ code: 'custom', message: 'end must be after start', path: [1] });
  });

const dayIntervals = z
  .array(interval)
  .max(12)
  .superRefine((list, ctx) => {
    for (let i = 1; i < list.length; i++) {
      const [prevStart, prevEnd] = list[i - 1]!;
      const [start] = list[i]!;
      if (!isLocalTime(prevStart) || !isLocalTime(prevEnd, true) || !isLocalTime(start)) continue;
      if (minutesOfDay(start) < minutesOfDay(prevEnd))
        ctx.addIssue({
          code: 'custom',
          message: 'intervals must be in order and must not overlap',
          path: [i, 0],
        });
    }
  });

const businessHours = z
  .strictObject({
    timezone: z
      .string()
      .max(64)
      .refine(isIanaTimezone, { message: 'must be an IANA timezone name such as Europe/Berlin' }),
    days: z
      .strictObject(
        Object.fromEntries(WEEKDAYS.map((d) => [d, dayIntervals.optional()])) as {
          [K in (typeof WEEKDAYS)[number]]: z.ZodOptional<typeof dayIntervals>;
        },
      )
      .refine((d) => Object.values(d).some((v) => v !== undefined && v.length > 0), {
        message: 'open on at least one day',
      })
      .describe(
        'Opening intervals per weekday in local time, e.g. {"mon": [["09:00","12:00"],["13:00","17:30"]]}',
      ),
    holidays: z
      .array(z.string().refine(isIsoDate, { message: 'must be a date YYYY-MM-DD' }))
      .max(1000)
      .default([])
      .transform((h) => [...new Set(h)].sort())
      .describe('Local dates on which no business time counts'),
  })
  .describe('null (or absent) = every minute counts (24/7)');

const appliesTo = z
  .strictObject({
    teamId: z.uuid().nullable().optional(),
    type: z.enum(ticketType.enumValues).nullable().optional(),
  })
  .describe('The ticket fields this policy is for; an absent or null field matches every ticket');

const name = z.string().trim().min(1).max(100);

export const createSlaPolicyBody = z
  .strictObject({
    name,
    position: z
      .number()
      .int()
      .min(0)
      .max(1_000_000)
      .optional()
      .describe('Lower positions are tried first (default: after every existing policy)'),
    appliesTo: appliesTo.optional(),
    targets,
    businessHours: businessHours.nullable().optional(),
  })
  .meta({
    example: {
      name: 'Network team, business hours',
      appliesTo: { teamId: '5c1d2e3f-4a5b-4c6d-8e7f-0a1b2c3d4e5f' },
      targets: {
        urgent: { firstResponseMinutes: 30, resolutionMinutes: 240 },
        high: { firstResponseMinutes: 120, resolutionMinutes: 960 },
        normal: { firstResponseMinutes: 480 },
      },
      businessHours: {
        timezone: 'Europe/Berlin',
        days: {
          mon: [['09:00', '17:30']],
          tue: [['09:00', '17:30']],
          wed: [['09:00', '17:30']],
          thu: [['09:00', '17:30']],
          fri: [['09:00', '15:00']],
        },
        holidays: ['2026-12-25', '2026-12-26'],
      },
    },
  });
export type CreateSlaPolicyInput = z.infer<typeof createSlaPolicyBody>;

export const updateSlaPolicyBody = z
  .strictObject({
    name: name.optional(),
    position: z.number().int().min(0).max(1_000_000).optional(),
    appliesTo: appliesTo.optional(),
    targets: targets.optional(),
    businessHours: businessHours.nullable().optional(),
  })
  .refine((b) => Object.values(b).some((v) => v !== undefined), { message: 'Send at least one field.' })
  .meta({
    minProperties: 1,
    example: { position: 0, targets: { urgent: { firstResponseMinutes: 15, resolutionMinutes: 120 } } },
  });
export type UpdateSlaPolicyInput = z.infer<typeof updateSlaPolicyBody>;

export const slaPolicyIdParams = z.strictObject({ id: z.uuid() });

export const listSlaPoliciesQuery = z.strictObject({
  limit: z.coerce.number().int().min(1).max(100).default(100),
  cursor: z.string().min(1).max(2048).optional().describe('Opaque; the nextCursor of the previous page'),
});

const POLICY_EXAMPLE = {
  id: '3e0c8f1a-2b4d-4c6e-8f0a-1b2c3d4e5f60',
  name: 'Network team, business hours',
  position: 0,
  appliesTo: { teamId: '5c1d2e3f-4a5b-4c6d-8e7f-0a1b2c3d4e5f', type: null },
  targets: {
    urgent: { firstResponseMinutes: 30, resolutionMinutes: 240 },
    high: { firstResponseMinutes: 120, resolutionMinutes: 960 },
  },
  businessHours: {
    timezone: 'Europe/Berlin',
    days: { mon: [['09:00', '17:30']], tue: [['09:00', '17:30']], wed: [['09:00', '17:30']] },
    holidays: ['2026-12-25'],
  },
  createdAt: '2026-11-22T09:00:00.000Z',
  updatedAt: '2026-11-22T09:00:00.000Z',
};

const targetOut = z.object({
  firstResponseMinutes: z.number().int().optional(),
  resolutionMinutes: z.number().int().optional(),
});

export const slaPolicySchema = z
  .object({
    id: z.uuid(),
    name: z.string(),
    position: z.number().int(),
    appliesTo: z.object({ teamId: z.uuid().nullable(), type: z.enum(ticketType.enumValues).nullable() }),
    targets: z.object(
      Object.fromEntries(ticketPriority.enumValues.map((p) => [p, targetOut.optional()])) as {
        [K in (typeof ticketPriority.enumValues)[number]]: z.ZodOptional<typeof targetOut>;
      },
    ),
    businessHours: z
      .object({
        timezone: z.string(),
        days: z.partialRecord(z.enum(WEEKDAYS), z.array(z.array(z.string()).length(2))),
        holidays: z.array(z.string()),
      })
      .nullable(),
    createdAt: z.date(),
    updatedAt: z.date(),
  })
  .meta({ id: 'SlaPolicy', example: POLICY_EXAMPLE });
export type SlaPolicyDto = z.infer<typeof slaPolicySchema>;

export const slaPolicyListSchema = z.object({
  data: z.array(slaPolicySchema),
  nextCursor: z.string().nullable(),
});

/** Ticket.sla: null when no policy governs the ticket. */
export const ticketSlaSchema = z
  .object({
    policyId: z.uuid(),
    firstResponseDueAt: z.date().nullable(),
    resolutionDueAt: z
      .date()
      .nullable()
      .describe('null while the ticket is pending (the resolution clock is paused) or without a target'),
    firstResponseBreachedAt: z.date().nullable(),
    resolutionBreachedAt: z.date().nullable(),
  })
  .nullable()
  .describe(
    'The governing SLA policy and its due times (business time of the policy). A breach is marked by the server within 60 s of the due time.',
  );
export type TicketSlaDto = z.infer<typeof ticketSlaSchema>;

/** Ticket.sla from a ticket row's columns. */
export function ticketSlaOf(row: {
  slaPolicyId: string | null;
  slaFirstResponseDueAt: Date | null;
  slaResolutionDueAt: Date | null;
  slaFirstResponseBreachedAt: Date | null;
  slaResolutionBreachedAt: Date | null;
}): TicketSlaDto {
  if (!row.slaPolicyId) return null;
  return {
    policyId: row.slaPolicyId,
    firstResponseDueAt: row.slaFirstResponseDueAt,
    resolutionDueAt: row.slaResolutionDueAt,
    firstResponseBreachedAt: row.slaFirstResponseBreachedAt,
    resolutionBreachedAt: row.slaResolutionBreachedAt,
  };
}
