import type { SlaTargets, TicketPriority, TicketStatus, TicketType } from '../../db/schema/index.js';
import { addBusinessMs, businessMsBetween, type Schedule } from '../../lib/business-time.js';

/**
 * The SLA clock of one ticket as a pure function of its previous state, its facts now and the policy
 * that governs it. The service stores the result on the ticket row.
 *
 * - First response: due `firstResponseMinutes` business minutes after creation; met by the first public
 *   staff reply (firstResponseAt). Never paused.
 * - Resolution: due after `resolutionMinutes` business minutes of time in new/open/on_hold. The clock
 *   pauses in pending and stops in solved/closed/cancelled (the due time is then kept, to show whether it
 *   was met); re-opening resumes it with the minutes already used.
 * - A breach, once marked, stays marked while a policy governs the ticket (one event per target).
 */

export interface SlaPolicyRule {
  id: string;
  targets: SlaTargets;
  businessHours: Schedule;
}

export interface SlaState {
  slaPolicyId: string | null;
  slaFirstResponseDueAt: Date | null;
  slaResolutionDueAt: Date | null;
  slaFirstResponseBreachedAt: Date | null;
  slaResolutionBreachedAt: Date | null;
  slaResolutionStartedAt: Date | null;
  slaResolutionConsumedMs: number;
  /** null = no unmet due time (stored as 'infinity' so the sort index covers every ticket). */
  slaNextDueAt: Date | null;
  slaBreachCheckAt: Date | null;
}

export interface SlaTicketFacts {
  status: TicketStatus;
  priority: TicketPriority;
  type: TicketType;
  teamId: string | null;
  createdAt: Date;
  firstResponseAt: Date | null;
}

export const EMPTY_SLA: SlaState = {
  slaPolicyId: null,
  slaFirstResponseDueAt: null,
  slaResolutionDueAt: null,
  slaFirstResponseBreachedAt: null,
  slaResolutionBreachedAt: null,
  slaResolutionStartedAt: null,
  slaResolutionConsumedMs: 0,
  slaNextDueAt: null,
  slaBreachCheckAt: null,
};

/** Statuses in which the resolution clock runs. */
const RUNNING: ReadonlySet<TicketStatus> = new Set(['new', 'open', 'on_hold']);
/** Statuses in which no target can be missed any more. */
const FINISHED: ReadonlySet<TicketStatus> = new Set(['solved', 'closed', 'cancelled']);

const MINUTE = 60_000;

/** Does a policy's applies-to match the ticket? Absent fields match anything. */
export function policyMatches(
  appliesTo: { teamId: string | null; type: TicketType | null },
  ticket: Pick<SlaTicketFacts, 'teamId' | 'type'>,
): boolean {
  return (
    (appliesTo.teamId === null || appliesTo.teamId === ticket.teamId) &&
    (appliesTo.type === null || appliesTo.type === ticket.type)
  );
}

export interface PlanInput {
  /** The stored state (EMPTY_SLA for a new ticket) and the status it was computed for (null: new ticket). */
  prev: SlaState;
  prevStatus: TicketStatus | null;
  ticket: SlaTicketFacts;
  policy: SlaPolicyRule | null;
  /** Recompute the due times from the policy (new ticket, policy re-evaluated); else keep the stored ones. */
  recompute: boolean;
  now: Date;
}

export function planSla({ prev, prevStatus, ticket, policy, recompute, now }: PlanInput): SlaState {
  const schedule = policy?.businessHours ?? null;

  // The resolution clock's bookkeeping runs whether or not a policy governs, so a policy that starts to
  // apply later (team or type change) finds the time already used.
  let startedAt = prevStatus === null ? ticket.createdAt : prev.slaResolutionStartedAt;
  let consumed = prevStatus === null ? 0 : prev.slaResolutionConsumedMs;
  const running = RUNNING.has(ticket.status);
  if (startedAt && !running) {
    consumed += businessMsBetween(startedAt, now, schedule);
    startedAt = null;
  } else if (!startedAt && running) {
    startedAt = now;
  }

  if (!policy) {
    return { ...EMPTY_SLA, slaResolutionStartedAt: startedAt, slaResolutionConsumedMs: consumed };
  }

  const target = policy.targets[ticket.priority] ?? {};
  const samePolicy = prev.slaPolicyId === policy.id;

  let frDue: Date | null;
  if (recompute || !samePolicy) {
    frDue =
      target.firstResponseMinutes === undefined
        ? null
        : addBusinessMs(ticket.createdAt, target.firstResponseMinutes * MINUTE, schedule);
  } else {
    frDue = prev.slaFirstResponseDueAt;
  }

  let resDue: Date | null;
  if (target.resolutionMinutes === undefined) resDue = null;
  else if (startedAt) {
    const left = Math.max(0, target.resolutionMinutes * MINUTE - consumed);
    resDue = addBusinessMs(startedAt, left, schedule);
  } else if (FINISHED.has(ticket.status)) {
    // Stopped: keep the due time it had, so whether it was met stays visible.
    resDue = samePolicy ? prev.slaResolutionDueAt : null;
  } else resDue = null; // paused (pending)

  const frBreached = samePolicy ? prev.slaFirstResponseBreachedAt : null;
  const resBreached = samePolicy ? prev.slaResolutionBreachedAt : null;

  const { nextDueAt, breachCheckAt } = openDueTimes(
    {
      slaFirstResponseDueAt: frDue,
      slaResolutionDueAt: resDue,
      slaFirstResponseBreachedAt: frBreached,
      slaResolutionBreachedAt: resBreached,
      slaResolutionStartedAt: startedAt,
    },
    ticket,
  );

  return {
    slaPolicyId: policy.id,
    slaFirstResponseDueAt: frDue,
    slaResolutionDueAt: resDue,
    slaFirstResponseBreachedAt: frBreached,
    slaResolutionBreachedAt: resBreached,
    slaResolutionStartedAt: startedAt,
    slaResolutionConsumedMs: Math.round(consumed),
    slaNextDueAt: nextDueAt,
    slaBreachCheckAt: breachCheckAt,
  };
}

type ClockFields = Pick<
  SlaState,
  | 'slaFirstResponseDueAt'
  | 'slaResolutionDueAt'
  | 'slaFirstResponseBreachedAt'
  | 'slaResolutionBreachedAt'
  | 'slaResolutionStartedAt'
>;

const earliest = (ds: Date[]) => (ds.length ? new Date(Math.min(...ds.map((d) => d.getTime()))) : null);

/**
 * The earliest unmet due time (breached or not: the "due next" sort key) and the earliest one not yet
 * marked as breached (what the breach job waits for). A first response is open until the first public
 * staff reply or the end of the ticket; resolution while its clock runs.
 */
export function openDueTimes(
  state: ClockFields,
  ticket: Pick<SlaTicketFacts, 'status' | 'firstResponseAt'>,
): { nextDueAt: Date | null; breachCheckAt: Date | null } {
  const unmet: Date[] = [];
  const unmarked: Date[] = [];
  const fr = state.slaFirstResponseDueAt;
  if (fr && ticket.firstResponseAt === null && !FINISHED.has(ticket.status)) {
    unmet.push(fr);
    if (!state.slaFirstResponseBreachedAt) unmarked.push(fr);
  }
  const res = state.slaResolutionDueAt;
  if (res && state.slaResolutionStartedAt) {
    unmet.push(res);
    if (!state.slaResolutionBreachedAt) unmarked.push(res);
  }
  return { nextDueAt: earliest(unmet), breachCheckAt: earliest(unmarked) };
}

/** The targets of a stored state that are due at `now` and not yet marked. */
export function dueTargets(
  state: ClockFields,
  ticket: Pick<SlaTicketFacts, 'status' | 'firstResponseAt'>,
  now: Date,
): Array<'firstResponse' | 'resolution'> {
  const out: Array<'firstResponse' | 'resolution'> = [];
  const t = now.getTime();
  if (
    state.slaFirstResponseDueAt &&
    !state.slaFirstResponseBreachedAt &&
    ticket.firstResponseAt === null &&
    !FINISHED.has(ticket.status) &&
    state.slaFirstResponseDueAt.getTime() <= t
  )
    out.push('firstResponse');
  if (
    state.slaResolutionDueAt &&
    !state.slaResolutionBreachedAt &&
    state.slaResolutionStartedAt &&
    state.slaResolutionDueAt.getTime() <= t
  )
    out.push('resolution');
  return out;
}
