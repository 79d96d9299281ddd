import { asc, eq, sql } from 'drizzle-orm';
import type { Executor } from '../../db/client.js';
import {
  auditEvents,
  changeEvents,
  type NewSlaPolicyRow,
  type SlaPolicyRow,
  slaPolicies,
  teams,
  ticketSla,
  tickets,
  users,
} from '../../db/schema/index.js';
import type { TicketView } from '../tickets/tickets.repository.js';
import type { SlaState, SlaTicketFacts } from './sla-clock.js';

export type SlaTicketRow = SlaState & SlaTicketFacts & { id: number };

/**
 * A claimed ticket: its SLA row, and the rest of its staff view (read in the claiming statement, so the
 * breach events need no second read of the same rows).
 */
export type ClaimedTicket = SlaTicketRow & {
  view: Omit<
    TicketView,
    | 'id'
    | 'status'
    | 'priority'
    | 'type'
    | 'teamId'
    | 'createdAt'
    | 'firstResponseAt'
    | 'slaPolicyId'
    | 'slaFirstResponseDueAt'
    | 'slaResolutionDueAt'
    | 'slaFirstResponseBreachedAt'
    | 'slaResolutionBreachedAt'
  >;
};

/** The ticket's SLA facts and clock (tickets) without its breach marks (ticket_sla). */
export type SlaClockRow = Omit<SlaTicketRow, SlaMarkKey>;
type SlaMarkKey = 'slaFirstResponseBreachedAt' | 'slaResolutionBreachedAt' | 'slaBreachCheckAt';
export type SlaMarks = Pick<SlaState, SlaMarkKey>;

const NO_MARKS: SlaMarks = {
  slaFirstResponseBreachedAt: null,
  slaResolutionBreachedAt: null,
  slaBreachCheckAt: null,
};

const clockColumns = {
  id: tickets.id,
  status: tickets.status,
  priority: tickets.priority,
  type: tickets.type,
  teamId: tickets.teamId,
  createdAt: tickets.createdAt,
  firstResponseAt: tickets.firstResponseAt,
  slaPolicyId: tickets.slaPolicyId,
  slaFirstResponseDueAt: tickets.slaFirstResponseDueAt,
  slaResolutionDueAt: tickets.slaResolutionDueAt,
  slaResolutionStartedAt: tickets.slaResolutionStartedAt,
  slaResolutionConsumedMs: tickets.slaResolutionConsumedMs,
  // 'infinity' is "no unmet due time"; read it back as null.
  slaNextDueAt:
    sql<Date | null>`CASE WHEN isfinite(${tickets.slaNextDueAt}) THEN ${tickets.slaNextDueAt} END`.mapWith(
      (v: string | null) => (v === null ? null : new Date(v)),
    ),
};

const markColumns = {
  slaFirstResponseBreachedAt: ticketSla.firstResponseBreachedAt,
  slaResolutionBreachedAt: ticketSla.resolutionBreachedAt,
  slaBreachCheckAt: ticketSla.breachCheckAt,
};

const SLA_BREACHED_ACTION = 'ticket.sla_breached';

const date = (v: unknown): Date | null => (v === null || v === undefined ? null : new Date(v as string));

const orderColumns = [asc(slaPolicies.position), asc(slaPolicies.createdAt), asc(slaPolicies.id)];

export function createSlaRepository() {
  return {
    // ---- policies ----
    /** Every policy in matching order (position, then age). Few rows: an admin's list. */
    async allPolicies(ex: Executor): Promise<SlaPolicyRow[]> {
      return ex
        .select()
        .from(slaPolicies)
        .orderBy(...orderColumns);
    },

    async pagePolicies(
      ex: Executor,
      limit: number,
      after?: { position: number; createdAt: string; id: string },
    ): Promise<SlaPolicyRow[]> {
      const where = after
        ? sql`(${slaPolicies.position}, ${slaPolicies.createdAt}, ${slaPolicies.id}) > (${after.position}, ${after.createdAt}::timestamptz, ${after.id}::uuid)`
        : undefined;
      return ex
        .select()
        .from(slaPolicies)
        .where(where)
        .orderBy(...orderColumns)
        .limit(limit);
    },

    async findPolicy(
      ex: Executor,
      id: string,
      opts: { forUpdate?: boolean } = {},
    ): Promise<SlaPolicyRow | undefined> {
      const q = ex.select().from(slaPolicies).where(eq(slaPolicies.id, id)).limit(1);
      const [row] = await (opts.forUpdate ? q.for('update') : q);
      return row;
    },

    async nextPosition(ex: Executor): Promise<number> {
      const [row] = await ex
        .select({ next: sql<number>`coalesce(max(${slaPolicies.position}) + 1, 0)::int` })
        .from(slaPolicies);
      return Number(row?.next ?? 0);
    },

    async insertPolicy(ex: Executor, values: NewSlaPolicyRow): Promise<SlaPolicyRow> {
      const [row] = await ex.insert(slaPolicies).values(values).returning();
      return row!;
    },

    async updatePolicy(ex: Executor, id: string, set: Partial<NewSlaPolicyRow>): Promise<SlaPolicyRow> {
      const [row] = await ex.update(slaPolicies).set(set).where(eq(slaPolicies.id, id)).returning();
      return row!;
    },

    async deletePolicy(ex: Executor, id: string): Promise<void> {
      await ex.delete(slaPolicies).where(eq(slaPolicies.id, id));
    },

    async teamExists(ex: Executor, id: string): Promise<boolean> {
      const [row] = await ex.select({ id: teams.id }).from(teams).where(eq(teams.id, id)).limit(1);
      return row !== undefined;
    },

    // ---- ticket clock ----
    async ticketClock(ex: Executor, id: number): Promise<SlaClockRow | undefined> {
      const [row] = await ex.select(clockColumns).from(tickets).where(eq(tickets.id, id)).limit(1);
      return row;
    },

    /**
     * The ticket's breach marks, row-locked (FOR UPDATE) when it has any: a breach pass marking this
     * ticket right now is waited for, so its marks are seen and kept (never written back as unmarked and
     * announced twice). `exists` says whether there is a row to update or delete.
     */
    async lockMarks(ex: Executor, id: number): Promise<SlaMarks & { exists: boolean }> {
      const [row] = await ex
        .select(markColumns)
        .from(ticketSla)
        .where(eq(ticketSla.ticketId, id))
        .for('update');
      return row ? { ...row, exists: true } : { ...NO_MARKS, exists: false };
    },

    /**
     * Stores the SLA state: the clock on the ticket row (the caller's change rewrote that row anyway) and
     * the marks in ticket_sla (a ticket with nothing marked or watched has no row there). Does not touch
     * version or updated_at (the caller's change already did).
     */
    async saveState(ex: Executor, id: number, s: SlaState, marksRowExists: boolean): Promise<void> {
      await ex
        .update(tickets)
        .set({
          slaPolicyId: s.slaPolicyId,
          slaFirstResponseDueAt: s.slaFirstResponseDueAt,
          slaResolutionDueAt: s.slaResolutionDueAt,
          slaResolutionStartedAt: s.slaResolutionStartedAt,
          slaResolutionConsumedMs: s.slaResolutionConsumedMs,
          slaNextDueAt: s.slaNextDueAt ?? sql`'infinity'::timestamptz`,
        })
        .where(eq(tickets.id, id));
      const marks = {
        firstResponseBreachedAt: s.slaFirstResponseBreachedAt,
        resolutionBreachedAt: s.slaResolutionBreachedAt,
        breachCheckAt: s.slaBreachCheckAt,
      };
      if (marks.firstResponseBreachedAt || marks.resolutionBreachedAt || marks.breachCheckAt) {
        await ex
          .insert(ticketSla)
          .values({ ticketId: id, ...marks })
          .onConflictDoUpdate({ target: ticketSla.ticketId, set: marks });
      } else if (marksRowExists) {
        await ex.delete(ticketSla).where(eq(ticketSla.ticketId, id));
      }
    },

    /** The rest of this transaction commits without waiting for its WAL to reach disk. */
    async relaxCommit(ex: Executor): Promise<void> {
      await ex.execute(sql`SET LOCAL synchronous_commit = off`);
    },

    /**
     * Claims up to `limit` live tickets whose earliest unmarked due time has passed, in one statement:
     * their ticket_sla rows are locked FOR UPDATE SKIP LOCKED (concurrent passes never claim the same
     * ticket) and the ticket rows FOR SHARE SKIP LOCKED (a ticket being changed by a request right now is
     * left for the next pass, as its clock may be about to stop).
     */
    async claimDue(ex: Executor, now: Date, limit: number): Promise<ClaimedTicket[]> {
      const { rows } = await ex.execute<Record<string, unknown>>(sql`
        SELECT t.id, t.status, t.priority, t.type, t.team_id, t.created_at, t.first_response_at,
               t.sla_policy_id, t.sla_first_response_due_at, t.sla_resolution_due_at,
               t.sla_resolution_started_at, t.sla_resolution_consumed_ms,
               CASE WHEN isfinite(t.sla_next_due_at) THEN t.sla_next_due_at END AS sla_next_due_at,
               s.first_response_breached_at, s.resolution_breached_at, s.breach_check_at,
               t.title, t.description, t.tags, t.requester_id, t.assignee_id, t.version, t.updated_at,
               t.solved_at, t.closed_at, t.deleted_at, t.merged_into_id,
               r.name AS requester_name, r.email AS requester_email,
               (SELECT a.name FROM ${users} a WHERE a.id = t.assignee_id) AS assignee_name
          FROM ${ticketSla} s JOIN ${tickets} t ON t.id = s.ticket_id
          -- The people by primary key, per claimed row (a join would hash all users for 2,000 tickets).
          LEFT JOIN LATERAL (SELECT u.name, u.email FROM ${users} u WHERE u.id = t.requester_id) r ON true
         WHERE s.breach_check_at <= ${now.toISOString()}::timestamptz AND t.deleted_at IS NULL
         ORDER BY s.breach_check_at
         LIMIT ${limit}
           FOR UPDATE OF s SKIP LOCKED
           FOR SHARE OF t SKIP LOCKED`);
      return rows.map((r) => ({
        view: {
          title: r.title as string,
          description: r.description as string,
          tags: r.tags as string[],
          requesterId: r.requester_id as string,
          assigneeId: (r.assignee_id as string | null) ?? null,
          version: Number(r.version),
          updatedAt: date(r.updated_at)!,
          solvedAt: date(r.solved_at),
          closedAt: date(r.closed_at),
          deletedAt: date(r.deleted_at),
          mergedIntoId: r.merged_into_id === null ? null : Number(r.merged_into_id),
          requesterName: r.requester_name as string,
          requesterEmail: r.requester_email as string,
          assigneeName: (r.assignee_name as string | null) ?? null,
        },
        id: Number(r.id),
        status: r.status as SlaTicketRow['status'],
        priority: r.priority as SlaTicketRow['priority'],
        type: r.type as SlaTicketRow['type'],
        teamId: (r.team_id as string | null) ?? null,
        createdAt: date(r.created_at)!,
        firstResponseAt: date(r.first_response_at),
        slaPolicyId: (r.sla_policy_id as string | null) ?? null,
        slaFirstResponseDueAt: date(r.sla_first_response_due_at),
        slaResolutionDueAt: date(r.sla_resolution_due_at),
        slaResolutionStartedAt: date(r.sla_resolution_started_at),
        slaResolutionConsumedMs: Number(r.sla_resolution_consumed_ms),
        slaNextDueAt: date(r.sla_next_due_at),
        slaFirstResponseBreachedAt: date(r.first_response_breached_at),
        slaResolutionBreachedAt: date(r.resolution_breached_at),
        slaBreachCheckAt: date(r.breach_check_at),
      }));
    },

    /**
     * Marks breaches on claimed tickets and announces them, in ONE statement: the narrow ticket_sla rows
     * get their marks (each …BreachedAt set only where still null) and the breach queue moves on to the
     * next unmarked due time; each newly missed target (`hits`, in order) gets its audit row (system
     * actor) and its staff-only `ticket.sla_breached` change event. The event data travel as one JSON
     * parameter (validated once, split in step with the arrays); the audit rows are built here. The ticket
     * row is not written (its version, the ETag, does not move: a breach is not an edit). Returns the
     * events' ids, in the order of `hits`, and the transaction id they were written by.
     */
    async markAndAnnounce(
      ex: Executor,
      marks: Array<{
        id: number;
        firstResponse: Date | null;
        resolution: Date | null;
        breachCheckAt: Date | null;
      }>,
      hits: Array<{
        ticketId: number;
        requesterId: string;
        target: string;
        dueAt: string;
        data: Record<string, unknown>;
      }>,
      traceId: string,
    ): Promise<{ ids: number[]; xid?: string }> {
      if (marks.length === 0) return { ids: [] };
      const { rows } = await ex.execute<{ id: string | number; xid: string }>(sql`
        WITH marked AS (
          UPDATE ${ticketSla} AS s SET
            first_response_breached_at = coalesce(s.first_response_breached_at, m.fr),
            resolution_breached_at = coalesce(s.resolution_breached_at, m.res),
            breach_check_at = m.next
          FROM unnest(${sql.param(marks.map((m) => m.id))}::int[],
                      ${sql.param(marks.map((m) => m.firstResponse?.toISOString() ?? null))}::timestamptz[],
                      ${sql.param(marks.map((m) => m.resolution?.toISOString() ?? null))}::timestamptz[],
                      ${sql.param(marks.map((m) => m.breachCheckAt?.toISOString() ?? null))}::timestamptz[])
            AS m(id, fr, res, next)
          WHERE s.ticket_id = m.id
        ), hits AS (
          SELECT * FROM ROWS FROM (
                   unnest(${sql.param(hits.map((h) => h.ticketId))}::int[]),
                   unnest(${sql.param(hits.map((h) => h.requesterId))}::uuid[]),
                   unnest(${sql.param(hits.map((h) => h.target))}::text[]),
                   unnest(${sql.param(hits.map((h) => h.dueAt))}::text[]),
                   json_array_elements(${JSON.stringify(hits.map((h) => h.data))}::json))
                   WITH ORDINALITY AS h(id, requester_id, target, due, data, n)
        ), audited AS (
          INSERT INTO ${auditEvents} (action, entity_type, entity_id, trace_id, changes, metadata)
          SELECT ${SLA_BREACHED_ACTION}, 'ticket', h.id::text, ${traceId},
                 jsonb_build_object('sla.' || h.target || 'BreachedAt', jsonb_build_array(NULL, h.due)),
                 jsonb_build_object('ticketId', h.id::text, 'target', h.target, 'dueAt', h.due)
            FROM hits h
           ORDER BY h.n
        ), announced AS (
          INSERT INTO ${changeEvents} (type, ticket_id, requester_id, staff_only, trace_id, data)
          SELECT ${SLA_BREACHED_ACTION}, h.id, h.requester_id, true, ${traceId}, h.data
            FROM hits h
           ORDER BY h.n
          RETURNING id, xid
        )
        SELECT id, xid::text AS xid FROM announced ORDER BY id`);
      return { ids: rows.map((r) => Number(r.id)), xid: rows[0]?.xid };
    },
  };
}

export type SlaRepository = ReturnType<typeof createSlaRepository>;
