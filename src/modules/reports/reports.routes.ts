import { Readable } from 'node:stream';
import { stringify } from 'csv-stringify';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { AUTHED_PROBLEMS, problemResponses } from '../../http/problem.js';
import { authed } from '../../http/reply.js';
import type { TicketDto } from '../tickets/tickets.schemas.js';
import { exportTicketsQuery, overviewQuery, overviewSchema } from './reports.schemas.js';
import type { ReportsService } from './reports.service.js';

/** The CSV columns of an exported ticket, in order. */
export const EXPORT_COLUMNS = [
  'id',
  'title',
  'status',
  'priority',
  'type',
  'tags',
  'requesterId',
  'requesterName',
  'requesterEmail',
  'assigneeId',
  'assigneeName',
  'teamId',
  'createdAt',
  'updatedAt',
  'firstResponseAt',
  'solvedAt',
  'closedAt',
  'description',
] as const;

const iso = (d: Date | null) => (d ? d.toISOString() : '');

function csvRecord(t: TicketDto): Record<(typeof EXPORT_COLUMNS)[number], string | number> {
  return {
    id: t.id,
    title: t.title,
    status: t.status,
    priority: t.priority,
    type: t.type,
    tags: t.tags.join(' '),
    requesterId: t.requester.id,
    requesterName: t.requester.name,
    requesterEmail: t.requester.email,
    assigneeId: t.assignee?.id ?? '',
    assigneeName: t.assignee?.name ?? '',
    teamId: t.teamId ?? '',
    createdAt: iso(t.createdAt),
    updatedAt: iso(t.updatedAt),
    firstResponseAt: iso(t.firstResponseAt),
    solvedAt: iso(t.solvedAt),
    closedAt: iso(t.closedAt),
    description: t.description,
  };
}

export const reportsRoutes: FastifyPluginAsyncZod<{ reports: ReportsService }> = async (app, { reports }) => {
  app.get(
    '/reports/overview',
    {
      schema: {
        operationId: 'getReportOverview',
        tags: ['reports'],
        summary: 'Support overview for a period (agents, admins)',
        description: `The numbers a support lead asks for: volume, backlog, response and resolution times, SLA
attainment, per day and per assignee. The period is \`[from, to)\`, by default the last 30 days, at most 366 days.
Days (\`byDay\`) are counted in the server's report timezone (\`REPORT_TIMEZONE\`, default UTC). Medians and p90 are
calendar minutes computed in PostgreSQL (\`percentile_cont\`). \`backlog\` and \`byAssignee[].open\` describe now;
every other figure describes the period. Filters \`teamId\` and \`assigneeId\` narrow every figure. Requesters → 403.`,
        querystring: overviewQuery,
        response: { 200: overviewSchema, ...problemResponses(...AUTHED_PROBLEMS, 403) },
      },
    },
    async (request) => reports.overview(authed(request), request.query),
  );

  app.get(
    '/tickets/export',
    {
      schema: {
        operationId: 'exportTickets',
        tags: ['reports', 'tickets'],
        summary: 'Export tickets as CSV (admins)',
        description: `Every ticket matching the filters of \`GET /tickets\` (same names, same sort; no paging), as
CSV (RFC 4180: comma-separated, CRLF line ends, quoted where needed, UTF-8, a header row). Streamed while it is
read, so any number of tickets exports in constant memory. Cells that a spreadsheet would run as a formula
(starting with \`=\`, \`+\`, \`-\`, \`@\`, tab or carriage return) are prefixed with \`'\`. Columns: ${EXPORT_COLUMNS.join(', ')}
(\`tags\` space-separated, times ISO-8601 UTC). Agents and requesters → 403.`,
        querystring: exportTicketsQuery,
        response: {
          200: {
            description: 'The tickets as CSV',
            content: { 'text/csv': { schema: z.string() } },
          },
          ...problemResponses(...AUTHED_PROBLEMS, 403),
        },
      },
    },
    async (request, reply) => {
      const rows = reports.exportTickets(authed(request), request.query);
      const csv = stringify({
        header: true,
        columns: [...EXPORT_COLUMNS],
        escape_formulas: true,
        record_delimiter: 'windows',
      });
      const stamp = new Date().toISOString().slice(0, 10);
      reply
        .type('text/csv; charset=utf-8')
        .header('content-disposition', `attachment; filename="tickets-${stamp}.csv"`)
        .header('cache-control', 'no-store');
      const source = Readable.from(
        (async function* records() {
          for await (const t of rows) yield csvRecord(t);
        })(),
      );
      source.on('error', (err) => {
        request.log.error({ err }, 'ticket export stopped');
        csv.destroy(err);
      });
      return reply.send(source.pipe(csv) as never);
    },
  );
};
