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
 * Report queries. Every measure reads an index made for it: created_at and solved_at ranges
 * (tickets_created_idx, tickets_solved_idx), the backlog by status (tickets_status_updated_idx) and reopenings
 * from the audit trail's partial index over solved → open moves (audit_events_reopened_idx).
 */
export function createReportsRepository() {
  return {
    /** Tickets created in the period, with the created → first public staff reply percentiles. */
    async created(ex: Executor, s: ReportScope) {
      const m = minutesBetween(sql`t.first_response_at`, sql`t.created_at`);
      const { rows } = await ex.execute<{ created: number; median: unknown; p90: unknown }>(sql`
        SELECT count(*)::int AS created,
               percentile_cont(0.5) WITHIN GROUP (ORDER BY ${m}) FILTER (WHERE t.first_response_at IS NOT NULL) AS median,
               percentile_cont(0.9) WITHIN GROUP (ORDER BY ${m}) FILTER (WHERE t.first_response_at IS NOT NULL) AS p90
        FROM tickets t
        WHERE ${scopeOf(s)} AND t.created_at >= ${s.from} AND t.created_at < ${s.to}`);
      const r = rows[0]!;
      return { created: Number(r.created), firstResponse: { median: num(r.median), p90: num(r.p90) } };
    },

    /** Tickets whose current solve falls in the period, with the created → solved percentiles. */
    async solved(ex: Executor, s: ReportScope) {
      const m = minutesBetween(sql`t.solved_at`, sql`t.created_at`);
      const { rows } = await ex.execute<{ solved: number; median: unknown; p90: unknown }>(sql`
        SELECT count(*)::int AS solved,
               percentile_cont(0.5) WITHIN GROUP (ORDER BY ${m}) AS median,
               percentile_cont(0.9) WITHIN GROUP (ORDER BY ${m}) AS p90
        FROM tickets t
        WHERE ${scopeOf(s)} AND t.solved_at >= ${s.from} AND t.solved_at < ${s.to}`);
      const r = rows[0]!;
      return { solved: Number(r.solved), resolution: { median: num(r.median), p90: num(r.p90) } };
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

    /** The backlog now: unsolved tickets by status and priority. */
    async backlog(ex: Executor, s: ReportScope) {
      const { rows } = await ex.execute<{ status: TicketStatus; priority: TicketPriority; n: number }>(sql`
        SELECT t.status, t.priority, count(*)::int AS n
        FROM tickets t
        WHERE ${scopeOf(s)} AND t.status IN ('new', 'open', 'pending', 'on_hold')
        GROUP BY t.status, t.priority`);
      return rows.map((r) => ({ status: r.status, priority: r.priority, n: Number(r.n) }));
    },

    /** Every day of the period in the report timezone, with tickets created and solved on it. */
    async byDay(ex: Executor, s: ReportScope) {
      const tz = s.timezone;
      const { rows } = await ex.execute<{ date: string; created: number; solved: number }>(sql`
        WITH days AS (
          SELECT d::date AS day
          FROM generate_series((${s.from}::timestamptz AT TIME ZONE ${tz})::date,
                               ((${s.to}::timestamptz - interval '1 millisecond') AT TIME ZONE ${tz})::date,
                               interval '1 day') AS d
        ),
        c AS (
          SELECT (t.created_at AT TIME ZONE ${tz})::date AS day, count(*)::int AS n
          FROM tickets t
          WHERE ${scopeOf(s)} AND t.created_at >= ${s.from} AND t.created_at < ${s.to}
          GROUP BY 1
        ),
        v AS (
          SELECT (t.solved_at AT TIME ZONE ${tz})::date AS day, count(*)::int AS n
          FROM tickets t
          WHERE ${scopeOf(s)} AND t.solved_at >= ${s.from} AND t.solved_at < ${s.to}
          GROUP BY 1
        )
        SELECT to_char(days.day, 'YYYY-MM-DD') AS date, coalesce(c.n, 0)::int AS created, coalesce(v.n, 0)::int AS solved
        FROM days LEFT JOIN c USING (day) LEFT JOIN v USING (day)
        ORDER BY days.day`);
      return rows.map((r) => ({ date: r.date, created: Number(r.created), solved: Number(r.solved) }));
    },

    /** Per assignee: unsolved tickets assigned now, and tickets solved in the period. */
    async byAssignee(ex: Executor, s: ReportScope) {
      const { rows } = await ex.execute<{ id: string; name: string; open: number; solved: number }>(sql`
        WITH o AS (
          SELECT t.assignee_id, count(*)::int AS n
          FROM tickets t
          WHERE ${scopeOf(s)} AND t.assignee_id IS NOT NULL AND t.status IN ('new', 'open', 'pending', 'on_hold')
          GROUP BY 1
        ),
        v AS (
          SELECT t.assignee_id, count(*)::int AS n
          FROM tickets t
          WHERE ${scopeOf(s)} AND t.assignee_id IS NOT NULL AND t.solved_at >= ${s.from} AND t.solved_at < ${s.to}
          GROUP BY 1
        )
        SELECT u.id, u.name, coalesce(o.n, 0)::int AS open, coalesce(v.n, 0)::int AS solved
        FROM o FULL JOIN v USING (assignee_id)
        JOIN users u ON u.id = assignee_id
        ORDER BY open DESC, solved DESC, u.name, u.id`);
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
    async slaMet(ex: Executor, s: ReportScope) {
      const inPeriod = (col: SQL) => sql`(${col} >= ${s.from} AND ${col} < ${s.to})`;
      const fr = sql`t.sla_first_response_due_at IS NOT NULL AND (${inPeriod(sql`t.first_response_at`)} OR ${inPeriod(sql`t.sla_first_response_breached_at`)})`;
      const rs = sql`t.sla_policy_id IS NOT NULL AND (${inPeriod(sql`t.solved_at`)} OR ${inPeriod(sql`t.sla_resolution_breached_at`)})`;
      const { rows } = await ex.execute<{ fr_n: number; fr_met: number; rs_n: number; rs_met: number }>(sql`
        SELECT count(*) FILTER (WHERE ${fr})::int AS fr_n,
               count(*) FILTER (WHERE ${fr} AND t.sla_first_response_breached_at IS NULL)::int AS fr_met,
               count(*) FILTER (WHERE ${rs})::int AS rs_n,
               count(*) FILTER (WHERE ${rs} AND t.sla_resolution_breached_at IS NULL)::int AS rs_met
        FROM tickets t
        WHERE ${scopeOf(s)} AND t.sla_policy_id IS NOT NULL
          AND (${inPeriod(sql`t.first_response_at`)} OR ${inPeriod(sql`t.solved_at`)}
               OR ${inPeriod(sql`t.sla_first_response_breached_at`)} OR ${inPeriod(sql`t.sla_resolution_breached_at`)})`);
      const r = rows[0]!;
      const ratio = (met: number, n: number) => (Number(n) === 0 ? null : Number(met) / Number(n));
      return { firstResponseMet: ratio(r.fr_met, r.fr_n), resolutionMet: ratio(r.rs_met, r.rs_n) };
    },
  };
}

export type ReportsRepository = ReturnType<typeof createReportsRepository>;
