import { type SQL, sql } from 'drizzle-orm';
import type { Executor } from '../../db/client.js';
import type { TicketPriority, TicketStatus } from '../../db/schema/index.js';

export interface ReportScope {
  from: Date;
  to: Date;
  teamId?: string;
  assigneeId?: string;
  /** IANA timezone the days are counted in. */
  timezone: string;
}

/** Statuses that are still work to do: the backlog. */
export const BACKLOG_STATUSES = ['new', 'open', 'pending', 'on_hold'] as const satisfies TicketStatus[];

/** Live tickets of the scope's team and assignee (the period is applied per measure). */
function scopeOf(s: ReportScope): SQL {
  const parts = [sql`t.deleted_at IS NULL`];
  if (s.teamId) parts.push(sql`t.team_id = ${s.teamId}`);
  if (s.assigneeId) parts.push(sql`t.assignee_id = ${s.assigneeId}`);
  return sql.join(parts, sql` AND `);
}

const minutesBetween = (later: SQL, earlier: SQL) => sql`extract(epoch FROM ${later} - ${earlier}) / 60.0`;

const num = (v: unknown): number | null => (v === null || v === undefined ? null : Number(v));

/**
 * Report queries. Every measure reads a covering index made for it, so it is an index-only scan of the period
 * (migrations/0013_slarep_reports_sql.sql): created_at (tickets_report_created_idx), solved_at
 * (tickets_report_solved_idx), the backlog by status, priority and assignee (tickets_report_backlog_idx), first
 * replies to SLA-governed tickets (tickets_report_first_response_idx), breach marks (ticket_sla's partial
 * indexes) and reopenings from the audit trail's partial index over solved → open moves
 * (audit_events_reopened_idx).
 */
export function createReportsRepository() {
  return {
    /**
     * Tickets created in the period: the count and the created → first public staff reply percentiles over
     * the whole period, and the count per day in the report timezone. The period's rows are read once
     * (one index-only scan into a materialized CTE of two small columns); the total and the days are
     * aggregated from it (the days by hashing: nothing is sorted but the percentiles' minutes).
     */
    async created(ex: Executor, s: ReportScope) {
      const { rows } = await ex.execute<{ day: string | null; n: number; median: unknown; p90: unknown }>(sql`
        WITH x AS MATERIALIZED (
          SELECT (t.created_at AT TIME ZONE ${s.timezone})::date AS day,
                 ${minutesBetween(sql`t.first_response_at`, sql`t.created_at`)} AS minutes
            FROM tickets t
           WHERE ${scopeOf(s)} AND t.created_at >= ${s.from} AND t.created_at < ${s.to})
        SELECT NULL AS day, count(*)::int AS n,
               percentile_cont(0.5) WITHIN GROUP (ORDER BY minutes) FILTER (WHERE minutes IS NOT NULL) AS median,
               percentile_cont(0.9) WITHIN GROUP (ORDER BY minutes) FILTER (WHERE minutes IS NOT NULL) AS p90
          FROM x
        UNION ALL
        SELECT to_char(day, 'YYYY-MM-DD'), count(*)::int, NULL, NULL FROM x GROUP BY day`);
      const total = rows.find((r) => r.day === null);
      return {
        created: Number(total?.n ?? 0),
        firstResponse: { median: num(total?.median), p90: num(total?.p90) },
        byDay: new Map(rows.filter((r) => r.day !== null).map((r) => [r.day!, Number(r.n)])),
      };
    },

    /**
     * Tickets whose current solve falls in the period: the count and created → solved percentiles, the
     * count per day and per assignee — the period's rows read once, as for created().
     */
    async solved(ex: Executor, s: ReportScope) {
      const { rows } = await ex.execute<{
        kind: 'total' | 'day' | 'assignee';
        key: string | null;
        n: number;
        median: unknown;
        p90: unknown;
      }>(sql`
        WITH x AS MATERIALIZED (
          SELECT (t.solved_at AT TIME ZONE ${s.timezone})::date AS day, t.assignee_id,
                 ${minutesBetween(sql`t.solved_at`, sql`t.created_at`)} AS minutes
            FROM tickets t
           WHERE ${scopeOf(s)} AND t.solved_at >= ${s.from} AND t.solved_at < ${s.to})
        SELECT 'total' AS kind, NULL AS key, count(*)::int AS n,
               percentile_cont(0.5) WITHIN GROUP (ORDER BY minutes) AS median,
               percentile_cont(0.9) WITHIN GROUP (ORDER BY minutes) AS p90
          FROM x
        UNION ALL
        SELECT 'day', to_char(day, 'YYYY-MM-DD'), count(*)::int, NULL, NULL FROM x GROUP BY day
        UNION ALL
        SELECT 'assignee', assignee_id::text, count(*)::int, NULL, NULL FROM x WHERE assignee_id IS NOT NULL
         GROUP BY assignee_id`);
      const total = rows.find((r) => r.kind === 'total');
      const of = (kind: 'day' | 'assignee') =>
        new Map(rows.filter((r) => r.kind === kind).map((r) => [r.key!, Number(r.n)]));
      return {
        solved: Number(total?.n ?? 0),
        resolution: { median: num(total?.median), p90: num(total?.p90) },
        byDay: of('day'),
        byAssignee: of('assignee'),
      };
    },

    /** Moves from solved back to open (by a reopen or a requester's reply) in the period. */
    async reopened(ex: Executor, s: ReportScope): Promise<number> {
      const { rows } = await ex.execute<{ n: number }>(sql`
        SELECT count(*)::int AS n
        FROM audit_events a
        JOIN tickets t ON t.id = (CASE WHEN a.entity_id ~ '^[0-9]{1,9}$' THEN a.entity_id::int END)
        WHERE a.action = 'ticket.status_changed' AND a.entity_type = 'ticket'
          AND a.changes -> 'status' ->> 0 = 'solved' AND a.changes -> 'status' ->> 1 = 'open'
          AND a.occurred_at >= ${s.from} AND a.occurred_at < ${s.to}
          AND ${scopeOf(s)}`);
      return Number(rows[0]!.n);
    },

    /** The backlog now: unsolved tickets by status, priority and assignee (one index-only scan). */
    async backlog(ex: Executor, s: ReportScope) {
      const { rows } = await ex.execute<{
        status: TicketStatus;
        priority: TicketPriority;
        assignee_id: string | null;
        n: number;
      }>(sql`
        SELECT t.status, t.priority, t.assignee_id, count(*)::int AS n
        FROM tickets t
        WHERE ${scopeOf(s)} AND t.status IN ('new', 'open', 'pending', 'on_hold')
        GROUP BY t.status, t.priority, t.assignee_id`);
      return rows.map((r) => ({
        status: r.status,
        priority: r.priority,
        assigneeId: r.assignee_id,
        n: Number(r.n),
      }));
    },

    /** Every day of the period in the report timezone (DST-correct; reads no table). */
    async days(ex: Executor, s: ReportScope): Promise<string[]> {
      const tz = s.timezone;
      const { rows } = await ex.execute<{ date: string }>(sql`
        SELECT to_char(d::date, 'YYYY-MM-DD') AS date
        FROM generate_series((${s.from}::timestamptz AT TIME ZONE ${tz})::date,
                             ((${s.to}::timestamptz - interval '1 millisecond') AT TIME ZONE ${tz})::date,
                             interval '1 day') AS d
        ORDER BY 1`);
      return rows.map((r) => r.date);
    },

    /** Assignees with their open and solved counts, named and in report order (open, solved, name). */
    async assignees(ex: Executor, counts: Array<{ id: string; open: number; solved: number }>) {
      if (counts.length === 0) return [];
      const { rows } = await ex.execute<{ id: string; name: string; open: number; solved: number }>(sql`
        SELECT u.id, u.name, x.open, x.solved
        FROM unnest(${sql.param(counts.map((c) => c.id))}::uuid[], ${sql.param(counts.map((c) => c.open))}::int[],
                    ${sql.param(counts.map((c) => c.solved))}::int[]) AS x(id, open, solved)
        JOIN users u ON u.id = x.id
        ORDER BY x.open DESC, x.solved DESC, u.name, u.id`);
      return rows.map((r) => ({
        assignee: { id: r.id, name: r.name },
        open: Number(r.open),
        solved: Number(r.solved),
      }));
    },

    /**
     * Share of SLA targets met among the targets decided in the period: a target is decided when it was met
     * (first public staff reply, or solve, in the period) or marked missed (its breach in the period).
     * null when none was decided.
     */
    /** `parallel` runs each of its four counts (the caller's bound on statements at once). */
    async slaMet(
      ex: Executor,
      s: ReportScope,
      parallel: <T>(fn: () => Promise<T>) => Promise<T> = (fn) => fn(),
    ) {
      const inPeriod = (col: SQL) => sql`(${col} >= ${s.from} AND ${col} < ${s.to})`;
      // Met targets were decided by their event in the period (first reply, solve): one index-only range
      // scan each (tickets_report_first_response_idx, tickets_report_solved_idx), a missed one by its mark
      // in ticket_sla. Missed targets add those marked in the period whose event was not in it. Never a
      // pass over every ticket. Four independent counts, run side by side within the caller's bound.
      const count = (q: SQL) =>
        parallel(async () => {
          const { rows } = await ex.execute<{ n: number; met: number }>(q);
          return { n: Number(rows[0]?.n ?? 0), met: Number(rows[0]?.met ?? 0) };
        });
      const [frDecided, frMissed, rsDecided, rsMissed] = await Promise.all([
        count(sql`
          SELECT count(*)::int AS n, count(*) FILTER (WHERE m.first_response_breached_at IS NULL)::int AS met
            FROM tickets t LEFT JOIN ticket_sla m ON m.ticket_id = t.id
           WHERE ${scopeOf(s)} AND t.first_response_at IS NOT NULL AND t.sla_first_response_due_at IS NOT NULL
             AND ${inPeriod(sql`t.first_response_at`)}`),
        count(sql`
          SELECT count(*)::int AS n, 0 AS met
            FROM ticket_sla m JOIN tickets t ON t.id = m.ticket_id
           WHERE m.first_response_breached_at IS NOT NULL AND ${inPeriod(sql`m.first_response_breached_at`)}
             AND ${scopeOf(s)} AND t.sla_first_response_due_at IS NOT NULL
             AND NOT coalesce(${inPeriod(sql`t.first_response_at`)}, false)`),
        count(sql`
          SELECT count(*)::int AS n, count(*) FILTER (WHERE m.resolution_breached_at IS NULL)::int AS met
            FROM tickets t LEFT JOIN ticket_sla m ON m.ticket_id = t.id
           WHERE ${scopeOf(s)} AND t.solved_at IS NOT NULL AND t.sla_policy_id IS NOT NULL
             AND ${inPeriod(sql`t.solved_at`)}`),
        count(sql`
          SELECT count(*)::int AS n, 0 AS met
            FROM ticket_sla m JOIN tickets t ON t.id = m.ticket_id
           WHERE m.resolution_breached_at IS NOT NULL AND ${inPeriod(sql`m.resolution_breached_at`)}
             AND ${scopeOf(s)} AND t.sla_policy_id IS NOT NULL
             AND NOT coalesce(${inPeriod(sql`t.solved_at`)}, false)`),
      ]);
      const ratio = (met: number, n: number) => (n === 0 ? null : met / n);
      return {
        firstResponseMet: ratio(frDecided.met, frDecided.n + frMissed.n),
        resolutionMet: ratio(rsDecided.met, rsDecided.n + rsMissed.n),
      };
    },
  };
}

export type ReportsRepository = ReturnType<typeof createReportsRepository>;
