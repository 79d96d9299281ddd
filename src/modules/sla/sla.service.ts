import { randomUUID } from 'node:crypto';
import type { Database, Executor } from '../../db/client.js';
import type { SlaPolicyRow } from '../../db/schema/index.js';
import type { BusinessHours } from '../../lib/business-time.js';
import type { Clock } from '../../lib/clock.js';
import { type CursorCodec, InvalidCursorError } from '../../lib/cursor.js';
import { NotFoundError, ValidationError } from '../../lib/errors.js';
import { type CreatedAtKeyset, createdAtKeyset, keysetPage } from '../../lib/keyset.js';
import type { AuditService } from '../audit/audit.service.js';
import type { AuthedContext, RequestContext } from '../auth/actor.js';
import { assertCan } from '../auth/permissions.js';
import type { TicketView } from '../tickets/tickets.repository.js';
import type { SlaRepository } from './sla.repository.js';
import type { CreateSlaPolicyInput, SlaPolicyDto, UpdateSlaPolicyInput } from './sla.schemas.js';
import {
  dueTargets,
  EMPTY_SLA,
  openDueTimes,
  planSla,
  policyMatches,
  type SlaPolicyRule,
  type SlaTicketFacts,
} from './sla-clock.js';

/** The change feed (src/modules/changes) as this service uses it: the breach events' subscribers. */
export interface ChangeRecorder {
  /** Runs the subscribers (mail, webhooks) of events already written (a breach pass writes its own). */
  dispatch(ex: Executor, seqs: number[]): Promise<number>;
  /** Wakes the live streams for events a committed transaction wrote without record(). */
  announce(xid?: string): void;
}

/** One batch of a breach pass: tickets claimed, targets marked, and the transaction that wrote its events (if any). */
type PassBatch = { claimed: number; breaches: number; xid?: string };

/** Enqueues a job in the caller's transaction (src/modules/jobs). */
export interface JobEnqueuer {
  enqueue(ex: Executor, kind: string, payload: object): Promise<string>;
}

export interface SlaServiceDeps {
  db: Database;
  repo: SlaRepository;
  audit: AuditService;
  changes: ChangeRecorder;
  jobs: JobEnqueuer;
  cursor: CursorCodec;
  clock: Clock;
  /** The ticket as staff see it (TicketDto without allowedTransitions): the breach events' `data.ticket`. */
  staffTicket(view: TicketView): Record<string, unknown>;
}

export class SlaPolicyNotFoundError extends NotFoundError {
  constructor(id: string) {
    super('SLA_POLICY_NOT_FOUND', 'SLA policy not found', `SLA policy ${id} does not exist.`);
  }
}

/** The fields of a ticket whose change can change its SLA. */
export type SlaRelevant = Pick<SlaTicketFacts, 'status' | 'priority' | 'type' | 'teamId' | 'firstResponseAt'>;

export const SLA_BREACHED = 'ticket.sla_breached';
/** The job that hands a breach pass's events to the feed's subscribers (mail, webhooks). */
export const SLA_NOTIFY_JOB = 'sla.notify_breaches';

/** For services built without SLA tracking (unit tests with fakes): tickets then carry `sla: null`. */
export const NO_SLA: Pick<SlaService, 'onTicketChanged'> = { onTicketChanged: async () => {} };

function toDto(row: SlaPolicyRow): SlaPolicyDto {
  return {
    id: row.id,
    name: row.name,
    position: row.position,
    appliesTo: { teamId: row.appliesToTeamId, type: row.appliesToType },
    targets: row.targets,
    businessHours: row.businessHours
      ? {
          timezone: row.businessHours.timezone,
          days: row.businessHours.days as Record<string, Array<[string, string]>>,
          holidays: [...row.businessHours.holidays],
        }
      : null,
    createdAt: row.createdAt,
    updatedAt: row.updatedAt,
  };
}

function ruleOf(row: SlaPolicyRow): SlaPolicyRule {
  return { id: row.id, targets: row.targets, businessHours: row.businessHours ?? null };
}

/** How often a long breach pass wakes the live streams. */
const ANNOUNCE_EVERY_MS = 1000;

export function createSlaService(deps: SlaServiceDeps) {
  const { db, repo, audit, changes, jobs, cursor, clock, staffTicket } = deps;

  async function assertTeam(ex: Executor, teamId: string | null | undefined) {
    if (teamId && !(await repo.teamExists(ex, teamId))) {
      throw new ValidationError([{ path: 'body.appliesTo.teamId', message: 'no such team' }]);
    }
  }

  /** The first policy by position whose applies-to matches. */
  async function matchPolicy(ex: Executor, ticket: Pick<SlaTicketFacts, 'teamId' | 'type'>) {
    const all = await repo.allPolicies(ex);
    const row = all.find((p) => policyMatches({ teamId: p.appliesToTeamId, type: p.appliesToType }, ticket));
    return row ? ruleOf(row) : null;
  }

  /**
   * One batch of a breach pass, in its own transaction: claims up to `batch` due tickets, marks their missed
   * targets and writes their audit rows and change events in one statement, and enqueues the job that runs
   * the events' subscribers.
   */
  function markBatch(now: Date, batch: number, ctx: RequestContext): Promise<PassBatch> {
    return db.transaction(async (tx): Promise<PassBatch> => {
      // Marks, events and audit rows commit together or not at all, and a pass is redone every 15 s:
      // a crash losing this commit only means the next pass marks the same targets again, once.
      // So the commit need not wait for the WAL flush.
      await repo.relaxCommit(tx);
      const rows = await repo.claimDue(tx, now, batch);
      if (rows.length === 0) return { claimed: 0, breaches: 0 };
      const marks = rows.map((row) => {
        const due = dueTargets(row, row, now);
        const firstResponse = due.includes('firstResponse') ? row.slaFirstResponseDueAt : null;
        const resolution = due.includes('resolution') ? row.slaResolutionDueAt : null;
        const { breachCheckAt } = openDueTimes(
          {
            ...row,
            slaFirstResponseBreachedAt: row.slaFirstResponseBreachedAt ?? firstResponse,
            slaResolutionBreachedAt: row.slaResolutionBreachedAt ?? resolution,
          },
          row,
        );
        return { id: row.id, firstResponse, resolution, breachCheckAt };
      });
      const hits: Parameters<typeof repo.markAndAnnounce>[2] = [];
      rows.forEach((row, i) => {
        const m = marks[i]!;
        if (!m.firstResponse && !m.resolution) return;
        const ticket = staffTicket({
          ...row.view,
          id: row.id,
          status: row.status,
          priority: row.priority,
          type: row.type,
          teamId: row.teamId,
          createdAt: row.createdAt,
          firstResponseAt: row.firstResponseAt,
          slaPolicyId: row.slaPolicyId,
          slaFirstResponseDueAt: row.slaFirstResponseDueAt,
          slaResolutionDueAt: row.slaResolutionDueAt,
          slaFirstResponseBreachedAt: row.slaFirstResponseBreachedAt ?? m.firstResponse,
          slaResolutionBreachedAt: row.slaResolutionBreachedAt ?? m.resolution,
        });
        for (const [target, due] of [
          ['firstResponse', m.firstResponse],
          ['resolution', m.resolution],
        ] as const) {
          if (!due) continue;
          const dueAt = due.toISOString();
          hits.push({
            ticketId: row.id,
            requesterId: row.view.requesterId,
            target,
            dueAt,
            data: { ticket, target, dueAt },
          });
        }
      });
      const written = await repo.markAndAnnounce(tx, marks, hits, ctx.traceId);
      if (written.ids.length === 0) return { claimed: rows.length, breaches: 0 };
      await jobs.enqueue(tx, SLA_NOTIFY_JOB, { events: written.ids });
      return { claimed: rows.length, breaches: written.ids.length, xid: written.xid };
    });
  }

  return {
    // ---- policies: admins write, staff read ----

    async list(ctx: AuthedContext, query: { limit: number; cursor?: string }) {
      assertCan(ctx.actor, 'sla.read', { type: 'sla_policy' });
      let after: ({ position: number } & CreatedAtKeyset) | undefined;
      if (query.cursor) {
        const c = cursor.decode(query.cursor);
        if (typeof c.p !== 'number' || !Number.isInteger(c.p)) throw new InvalidCursorError();
        after = { position: c.p, ...createdAtKeyset(c) };
      }
      const rows = await repo.pagePolicies(db, query.limit + 1, after);
      // created_at has millisecond precision: its ISO text padded to microseconds is exact.
      const { page, nextCursor } = keysetPage(rows, query.limit, (last) =>
        cursor.encode({ p: last.position, t: last.createdAt.toISOString().replace('Z', '000Z'), i: last.id }),
      );
      return { data: page.map(toDto), nextCursor };
    },

    async get(ctx: AuthedContext, id: string): Promise<SlaPolicyDto> {
      assertCan(ctx.actor, 'sla.read', { type: 'sla_policy', id });
      const row = await repo.findPolicy(db, id);
      if (!row) throw new SlaPolicyNotFoundError(id);
      return toDto(row);
    },

    /** Admins only; audited sla_policy.created. Without a position it goes after every existing policy. */
    async create(ctx: AuthedContext, input: CreateSlaPolicyInput): Promise<SlaPolicyDto> {
      assertCan(ctx.actor, 'sla.manage', { type: 'sla_policy' });
      return db.transaction(async (tx) => {
        await assertTeam(tx, input.appliesTo?.teamId);
        const now = clock.now();
        const row = await repo.insertPolicy(tx, {
          name: input.name,
          position: input.position ?? (await repo.nextPosition(tx)),
          appliesToTeamId: input.appliesTo?.teamId ?? null,
          appliesToType: input.appliesTo?.type ?? null,
          targets: input.targets,
          businessHours: (input.businessHours ?? null) as BusinessHours | null,
          createdAt: now,
          updatedAt: now,
        });
        const dto = toDto(row);
        await audit.record(tx, ctx, {
          action: 'sla_policy.created',
          entityType: 'sla_policy',
          entityId: row.id,
          changes: {
            name: [null, dto.name],
            position: [null, dto.position],
            appliesTo: [null, dto.appliesTo],
            targets: [null, dto.targets],
            businessHours: [null, dto.businessHours],
          },
        });
        return dto;
      });
    },

    /**
     * Admins only; audited sla_policy.updated with the fields that changed. Tickets keep the due times
     * they have until their policy is next evaluated (priority, team or type change).
     */
    async update(ctx: AuthedContext, id: string, input: UpdateSlaPolicyInput): Promise<SlaPolicyDto> {
      assertCan(ctx.actor, 'sla.manage', { type: 'sla_policy', id });
      return db.transaction(async (tx) => {
        const before = await repo.findPolicy(tx, id, { forUpdate: true });
        if (!before) throw new SlaPolicyNotFoundError(id);
        if (input.appliesTo?.teamId) await assertTeam(tx, input.appliesTo.teamId);
        const old = toDto(before);
        const next = {
          name: input.name ?? old.name,
          position: input.position ?? old.position,
          appliesTo:
            input.appliesTo === undefined
              ? old.appliesTo
              : { teamId: input.appliesTo.teamId ?? null, type: input.appliesTo.type ?? null },
          targets: input.targets ?? old.targets,
          businessHours: input.businessHours === undefined ? old.businessHours : input.businessHours,
        };
        const changed: Record<string, [unknown, unknown]> = {};
        for (const k of Object.keys(next) as Array<keyof typeof next>) {
          if (JSON.stringify(next[k]) !== JSON.stringify(old[k])) changed[k] = [old[k], next[k]];
        }
        if (Object.keys(changed).length === 0) return old;
        const row = await repo.updatePolicy(tx, id, {
          name: next.name,
          position: next.position,
          appliesToTeamId: next.appliesTo.teamId,
          appliesToType: next.appliesTo.type,
          targets: next.targets,
          businessHours: (next.businessHours ?? null) as BusinessHours | null,
          updatedAt: clock.now(),
        });
        await audit.record(tx, ctx, {
          action: 'sla_policy.updated',
          entityType: 'sla_policy',
          entityId: id,
          changes: changed,
        });
        return toDto(row);
      });
    },

    /** Admins only; audited sla_policy.deleted. Governed tickets keep their due times until re-evaluated. */
    async remove(ctx: AuthedContext, id: string): Promise<void> {
      assertCan(ctx.actor, 'sla.manage', { type: 'sla_policy', id });
      await db.transaction(async (tx) => {
        const before = await repo.findPolicy(tx, id, { forUpdate: true });
        if (!before) throw new SlaPolicyNotFoundError(id);
        await repo.deletePolicy(tx, id);
        await audit.record(tx, ctx, {
          action: 'sla_policy.deleted',
          entityType: 'sla_policy',
          entityId: id,
          changes: { name: [before.name, null] },
        });
      });
    },

    // ---- the ticket's clock ----

    /**
     * Recomputes a ticket's SLA inside the transaction of a change to it (call it after the ticket row
     * was written; `before` is the row as it was, null for a ticket just created). The policy is matched
     * again when priority, team or type changed (or the ticket is new); otherwise the governing one is
     * kept and only the clock moves (pause on pending, stop on solved, resume on reopen, first reply).
     */
    async onTicketChanged(tx: Executor, id: number, before: SlaRelevant | null, now: Date): Promise<void> {
      const clockRow = await repo.ticketClock(tx, id);
      if (!clockRow) return;
      const classified =
        before === null ||
        before.priority !== clockRow.priority ||
        before.type !== clockRow.type ||
        before.teamId !== clockRow.teamId;
      const moved =
        classified ||
        before.status !== clockRow.status ||
        (before.firstResponseAt === null) !== (clockRow.firstResponseAt === null);
      if (!moved) return;
      // A brand-new ticket has no marks and no breach pass can know it yet.
      const marks =
        before === null
          ? {
              slaFirstResponseBreachedAt: null,
              slaResolutionBreachedAt: null,
              slaBreachCheckAt: null,
              exists: false,
            }
          : await repo.lockMarks(tx, id);
      const after = { ...clockRow, ...marks };

      let recompute = classified;
      let policy: SlaPolicyRule | null = null;
      if (!recompute && after.slaPolicyId) {
        const row = await repo.findPolicy(tx, after.slaPolicyId);
        if (row) policy = ruleOf(row);
        else recompute = true; // the governing policy was deleted: take the one that matches now
      }
      if (recompute) policy = await matchPolicy(tx, after);
      const state = planSla({
        prev: before === null ? EMPTY_SLA : after,
        prevStatus: before?.status ?? null,
        ticket: after,
        policy,
        recompute,
        now,
      });
      await repo.saveState(tx, id, state, marks.exists);
    },

    /**
     * One pass of breach detection: marks every target whose due time has passed (…BreachedAt = the due
     * time) and records one `ticket.sla_breached` change event and one audit event per target, in the
     * transaction that marks it. Per batch of `batch` tickets (2000): one claiming statement (SKIP LOCKED, so
     * concurrent passes on several workers never mark or announce a target twice), ONE statement that
     * marks the narrow ticket_sla rows and writes the audit rows and change events (with the ticket views
     * built in it), and one job that runs the events' subscribers (mail to the assignee or team, webhooks)
     * off this transaction.
     */
    async detectBreaches(
      opts: { now?: Date; batch?: number } = {},
    ): Promise<{ tickets: number; breaches: number }> {
      const now = opts.now ?? clock.now();
      const batch = opts.batch ?? 2000;
      const ctx: RequestContext = { actor: null, traceId: `sla-${randomUUID()}`, ip: null, userAgent: null };
      let ticketsSeen = 0;
      let breaches = 0;
      // The live streams are woken once the pass is done, or once a second in a long one: an announcement
      // sent between batches would only run beside the next batch's statements.
      let unannounced: string | undefined;
      let announcedAt = performance.now();
      try {
        for (;;) {
          const done = await markBatch(now, batch, ctx);
          ticketsSeen += done.claimed;
          breaches += done.breaches;
          if (done.xid) unannounced = done.xid;
          const last = done.claimed < batch;
          // Committed: wake the live streams.
          if (unannounced && (last || performance.now() - announcedAt >= ANNOUNCE_EVERY_MS)) {
            changes.announce(unannounced);
            unannounced = undefined;
            announcedAt = performance.now();
          }
          if (last) break;
        }
      } finally {
        // A batch that failed after others committed: theirs are still announced.
        if (unannounced) changes.announce(unannounced);
      }
      return { tickets: ticketsSeen, breaches };
    },

    /** The job after a breach pass: the subscribers of its events, in one transaction (idempotent per event). */
    async notifyBreaches(eventSeqs: number[]): Promise<{ events: number }> {
      const events = await db.transaction((tx) => changes.dispatch(tx, eventSeqs));
      return { events };
    },
  };
}

export type SlaService = ReturnType<typeof createSlaService>;
