import pLimit from 'p-limit';
import type { Database } from '../../db/client.js';
import { ticketPriority } from '../../db/schema/index.js';
import type { Clock } from '../../lib/clock.js';
import { ValidationError } from '../../lib/errors.js';
import type { AuthedContext } from '../auth/actor.js';
import { assertCan } from '../auth/permissions.js';
import type { TicketDto } from '../tickets/tickets.schemas.js';
import type { TicketService } from '../tickets/tickets.service.js';
import { BACKLOG_STATUSES, type ReportScope, type ReportsRepository } from './reports.repository.js';
import {
  type ExportTicketsQuery,
  MAX_REPORT_DAYS,
  type OverviewDto,
  type OverviewQuery,
} from './reports.schemas.js';

export interface ReportsServiceDeps {
  db: Database;
  reports: ReportsRepository;
  tickets: Pick<TicketService, 'list'>;
  clock: Clock;
  timezone: string;
}

const DAY_MS = 86_400_000;
/** Rows per keyset page while exporting: memory stays flat whatever the number of tickets. */
const EXPORT_PAGE = 100;

/**
 * Report statements running at once in this process, across all report requests. An overview sends ten
 * independent statements; unbounded, two dashboards refreshing together would hold the whole pool and
 * every other request would wait for a connection.
 */
export const REPORT_PARALLEL_STATEMENTS = 3;

export function createReportsService({ db, reports, tickets, clock, timezone }: ReportsServiceDeps) {
  const parallel = pLimit(REPORT_PARALLEL_STATEMENTS);
  return {
    /**
     * GET /reports/overview (agents and admins). The period is [from, to), by default the last 30 days; at most
     * 366 days so byDay stays bounded. Measures are computed in PostgreSQL (percentile_cont for medians and p90).
     */
    async overview(ctx: AuthedContext, query: OverviewQuery): Promise<OverviewDto> {
      assertCan(ctx.actor, 'report.read', { type: 'report', id: 'overview' });
      const to = query.to ? new Date(query.to) : clock.now();
      const from = query.from ? new Date(query.from) : new Date(to.getTime() - 30 * DAY_MS);
      if (from.getTime() >= to.getTime()) {
        throw new ValidationError([{ path: 'querystring.from', message: '`from` must be before `to`.' }]);
      }
      if (to.getTime() - from.getTime() > MAX_REPORT_DAYS * DAY_MS) {
        throw new ValidationError([
          { path: 'querystring.from', message: `A report covers at most ${MAX_REPORT_DAYS} days.` },
        ]);
      }
      const scope: ReportScope = { from, to, teamId: query.teamId, assigneeId: query.assigneeId, timezone };
      // Seven statements, each an index-only scan of the period (or none): created, solved (with its days and
      // assignees), the backlog (with its assignees), reopenings, SLA attainment and the day list.
      const [created, solved, reopened, backlog, sla, days] = await Promise.all([
        parallel(() => reports.created(db, scope)),
        parallel(() => reports.solved(db, scope)),
        parallel(() => reports.reopened(db, scope)),
        parallel(() => reports.backlog(db, scope)),
        reports.slaMet(db, scope, parallel),
        parallel(() => reports.days(db, scope)),
      ]);
      const byStatus = Object.fromEntries(BACKLOG_STATUSES.map((s) => [s, 0])) as Record<string, number>;
      const byPriority = Object.fromEntries(ticketPriority.enumValues.map((p) => [p, 0])) as Record<
        string,
        number
      >;
      const perAssignee = new Map<string, { id: string; open: number; solved: number }>();
      const assignee = (id: string) => {
        const known = perAssignee.get(id);
        if (known) return known;
        const fresh = { id, open: 0, solved: 0 };
        perAssignee.set(id, fresh);
        return fresh;
      };
      for (const row of backlog) {
        byStatus[row.status] = (byStatus[row.status] ?? 0) + row.n;
        byPriority[row.priority] = (byPriority[row.priority] ?? 0) + row.n;
        if (row.assigneeId) assignee(row.assigneeId).open += row.n;
      }
      for (const [id, n] of solved.byAssignee) assignee(id).solved += n;
      const byAssignee = await reports.assignees(db, [...perAssignee.values()]);
      return {
        from,
        to,
        timezone,
        created: created.created,
        solved: solved.solved,
        reopened,
        backlog: { byStatus, byPriority },
        firstResponseMinutes: created.firstResponse,
        resolutionMinutes: solved.resolution,
        sla,
        byDay: days.map((date) => ({
          date,
          created: created.byDay.get(date) ?? 0,
          solved: solved.byDay.get(date) ?? 0,
        })),
        byAssignee,
      } as OverviewDto;
    },

    /**
     * GET /tickets/export (admins): every ticket matching the list filters, in the list's order, read page by page
     * along the same keyset as GET /tickets, so memory stays constant however many tickets match.
     */
    exportTickets(ctx: AuthedContext, query: ExportTicketsQuery): AsyncGenerator<TicketDto> {
      // Checked now, before the caller starts a 200 response, not when the first page is read.
      assertCan(ctx.actor, 'ticket.export', { type: 'ticket', id: null });
      return (async function* pages() {
        let cursor: string | undefined;
        do {
          const page = await tickets.list(ctx, { ...query, limit: EXPORT_PAGE, cursor });
          yield* page.data;
          cursor = page.nextCursor ?? undefined;
        } while (cursor);
      })();
    },
  };
}

export type ReportsService = ReturnType<typeof createReportsService>;
