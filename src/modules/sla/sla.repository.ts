import { and, asc, eq, isNotNull, isNull, lte, sql } from 'drizzle-orm';
import type { Executor } from '../../db/client.js';
import {
  type NewSlaPolicyRow,
  type SlaPolicyRow,
  slaPolicies,
  teams,
  tickets,
} from '../../db/schema/index.js';
import type { SlaState, SlaTicketFacts } from './sla-clock.js';

export type SlaTicketRow = SlaState & SlaTicketFacts & { id: number };

const stateColumns = {
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
  slaFirstResponseBreachedAt: tickets.slaFirstResponseBreachedAt,
  slaResolutionBreachedAt: tickets.slaResolutionBreachedAt,
  slaResolutionStartedAt: tickets.slaResolutionStartedAt,
  slaResolutionConsumedMs: tickets.slaResolutionConsumedMs,
  // 'infinity' is "no unmet due time"; read it back as null.
  slaNextDueAt:
    sql<Date | null>`CASE WHEN isfinite(${tickets.slaNextDueAt}) THEN ${tickets.slaNextDueAt} END`.mapWith(
      (v: string | null) => (v === null ? null : new Date(v)),
    ),
  slaBreachCheckAt: tickets.slaBreachCheckAt,
};

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
      after?: { position: number; createdAt: Date; id: string },
    ): Promise<SlaPolicyRow[]> {
      const where = after
        ? sql`(${slaPolicies.position}, ${slaPolicies.createdAt}, ${slaPolicies.id}) > (${after.position}, ${after.createdAt.toISOString()}::timestamptz, ${after.id}::uuid)`
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
    async ticketState(ex: Executor, id: number): Promise<SlaTicketRow | undefined> {
      const [row] = await ex.select(stateColumns).from(tickets).where(eq(tickets.id, id)).limit(1);
      return row;
    },

    /** Stores the SLA columns; does not touch version or updated_at (the caller's change already did). */
    async saveState(ex: Executor, id: number, s: SlaState): Promise<void> {
      await ex
        .update(tickets)
        .set({
          slaPolicyId: s.slaPolicyId,
          slaFirstResponseDueAt: s.slaFirstResponseDueAt,
          slaResolutionDueAt: s.slaResolutionDueAt,
          slaFirstResponseBreachedAt: s.slaFirstResponseBreachedAt,
          slaResolutionBreachedAt: s.slaResolutionBreachedAt,
          slaResolutionStartedAt: s.slaResolutionStartedAt,
          slaResolutionConsumedMs: s.slaResolutionConsumedMs,
          slaNextDueAt: s.slaNextDueAt ?? sql`'infinity'::timestamptz`,
          slaBreachCheckAt: s.slaBreachCheckAt,
        })
        .where(eq(tickets.id, id));
    },

    /**
     * Claims up to `limit` live tickets whose earliest unmarked due time has passed, locking them
     * (FOR UPDATE SKIP LOCKED): concurrent runs never claim the same ticket, and a ticket being changed by
     * a request right now is left for the next run.
     */
    async claimDue(ex: Executor, now: Date, limit: number): Promise<SlaTicketRow[]> {
      const due = ex
        .select({ id: tickets.id })
        .from(tickets)
        .where(
          and(
            isNotNull(tickets.slaBreachCheckAt),
            lte(tickets.slaBreachCheckAt, now),
            isNull(tickets.deletedAt),
          ),
        )
        .orderBy(asc(tickets.slaBreachCheckAt))
        .limit(limit)
        .for('update', { skipLocked: true });
      return ex.select(stateColumns).from(tickets).where(sql`${tickets.id} IN ${due}`);
    },

    /**
     * Marks breaches on claimed tickets in one statement: each …BreachedAt is set only where still null,
     * version is bumped (the representation changed), updated_at is not (a breach is not activity).
     */
    async markBreaches(
      ex: Executor,
      marks: Array<{
        id: number;
        firstResponse: Date | null;
        resolution: Date | null;
        breachCheckAt: Date | null;
      }>,
    ): Promise<void> {
      if (marks.length === 0) return;
      const ids = marks.map((m) => m.id);
      const fr = marks.map((m) => m.firstResponse?.toISOString() ?? null);
      const res = marks.map((m) => m.resolution?.toISOString() ?? null);
      const next = marks.map((m) => m.breachCheckAt?.toISOString() ?? null);
      await ex.execute(sql`
        UPDATE ${tickets} AS t SET
          sla_first_response_breached_at = coalesce(t.sla_first_response_breached_at, m.fr),
          sla_resolution_breached_at = coalesce(t.sla_resolution_breached_at, m.res),
          sla_breach_check_at = m.next,
          version = t.version + 1
        FROM unnest(${sql.param(ids)}::int[], ${sql.param(fr)}::timestamptz[], ${sql.param(res)}::timestamptz[], ${sql.param(next)}::timestamptz[])
          AS m(id, fr, res, next)
        WHERE t.id = m.id`);
    },
  };
}

export type SlaRepository = ReturnType<typeof createSlaRepository>;
