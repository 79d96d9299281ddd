import { z } from 'zod';
import { listTicketsQuery } from '../tickets/tickets.schemas.js';

/** The longest period one overview covers: byDay stays a bounded list. */
export const MAX_REPORT_DAYS = 366;

export const overviewQuery = z
  .strictObject({
    from: z.iso
      .datetime({ offset: true })
      .optional()
      .describe('Start of the period, inclusive (default: 30 days before `to`)'),
    to: z.iso.datetime({ offset: true }).optional().describe('End of the period, exclusive (default: now)'),
    teamId: z.uuid().optional().describe('Only tickets of this team'),
    assigneeId: z.uuid().optional().describe('Only tickets assigned to this agent or admin'),
  })
  .refine((q) => !q.from || !q.to || Date.parse(q.from) < Date.parse(q.to), {
    message: '`from` must be before `to`.',
    path: ['from'],
  });
export type OverviewQuery = z.infer<typeof overviewQuery>;

const minutes = z
  .object({
    median: z.number().nullable().describe('null when no ticket in the period has the measure'),
    p90: z.number().nullable(),
  })
  .describe('Calendar minutes, computed in PostgreSQL with percentile_cont');

export const overviewSchema = z
  .object({
    from: z.date(),
    to: z.date(),
    timezone: z.string().describe('The IANA timezone the days of byDay are counted in (REPORT_TIMEZONE)'),
    created: z.number().int().describe('Tickets created in the period'),
    solved: z.number().int().describe('Tickets whose current solve happened in the period'),
    reopened: z.number().int().describe('Moves from solved back to open in the period'),
    backlog: z
      .object({
        byStatus: z.object({
          new: z.number().int(),
          open: z.number().int(),
          pending: z.number().int(),
          on_hold: z.number().int(),
        }),
        byPriority: z.object({
          low: z.number().int(),
          normal: z.number().int(),
          high: z.number().int(),
          urgent: z.number().int(),
        }),
      })
      .describe('Unsolved tickets now (new, open, pending, on_hold), whatever the period'),
    firstResponseMinutes: minutes.describe(
      'Created → first public staff reply, tickets created in the period',
    ),
    resolutionMinutes: minutes.describe('Created → solved, tickets solved in the period'),
    sla: z
      .object({
        firstResponseMet: z.number().min(0).max(1).nullable(),
        resolutionMet: z.number().min(0).max(1).nullable(),
      })
      .describe(
        'Share of SLA targets met among the targets decided in the period (0..1); null when none was decided',
      ),
    byDay: z.array(z.object({ date: z.string(), created: z.number().int(), solved: z.number().int() })),
    byAssignee: z.array(
      z.object({
        assignee: z.object({ id: z.uuid(), name: z.string() }),
        open: z.number().int().describe('Unsolved tickets assigned now'),
        solved: z.number().int().describe('Tickets solved in the period'),
      }),
    ),
  })
  .meta({ id: 'ReportOverview' });
export type OverviewDto = z.infer<typeof overviewSchema>;

/** GET /tickets/export takes the list filters and sort, without paging. */
export const exportTicketsQuery = listTicketsQuery.omit({ limit: true, cursor: true });
export type ExportTicketsQuery = z.infer<typeof exportTicketsQuery>;
