import { ruleFor } from '../auth/permissions.js';
import type { UserRole } from '../users/user-roles.js';
import { TICKET_STATUSES, type TicketStatus } from './ticket-values.js';

/**
 * The ticket lifecycle as pure rules (../shared/API.md "Ticket lifecycle"): the transition table,
 * guards, who may move a ticket where, and the side effects of a change. No I/O: the ticket service
 * applies these inside its transaction and turns refusals into 409/403 problems.
 */

export const STATUSES: readonly TicketStatus[] = TICKET_STATUSES;

export const TRANSITIONS: Readonly<Record<TicketStatus, readonly TicketStatus[]>> = {
  new: ['open', 'pending', 'on_hold', 'solved', 'cancelled'],
  open: ['pending', 'on_hold', 'solved', 'cancelled'],
  pending: ['open', 'on_hold', 'solved'],
  on_hold: ['open', 'pending', 'solved'],
  solved: ['open', 'closed'],
  closed: [],
  cancelled: [],
};

export function isTerminal(status: TicketStatus): boolean {
  return status === 'closed' || status === 'cancelled';
}

/** Is `from → to` in the transition table (ignoring who asks and guards)? */
export function canTransition(from: TicketStatus, to: TicketStatus): boolean {
  return TRANSITIONS[from].includes(to);
}

export function allowedTargets(from: TicketStatus): TicketStatus[] {
  return [...TRANSITIONS[from]];
}

/** What the lifecycle needs to know about a ticket. */
export interface LifecycleTicket {
  status: TicketStatus;
  requesterId: string;
  assigneeId: string | null;
  solvedAt: Date | null;
  closedAt: Date | null;
  firstResponseAt: Date | null;
}

export interface LifecycleActor {
  id: string;
  role: UserRole;
}

/** Guards beyond the table: a ticket can be solved only with an assignee. */
export function guardFailure(ticket: Pick<LifecycleTicket, 'assigneeId'>, to: TicketStatus): string | null {
  if (to === 'solved' && !ticket.assigneeId) return 'A ticket can be solved only when it has an assignee.';
  return null;
}

/**
 * Role rules for status changes (the `ticket.changeStatus` row of the permission table):
 * - 'any' (admin): any table transition;
 * - 'limited' agent: any table transition on tickets assigned to themself or unassigned;
 * - 'limited' requester: on own tickets, cancel while new/open, reopen own solved ticket (solved → open).
 */
export function roleMayTransition(
  actor: LifecycleActor,
  ticket: Pick<LifecycleTicket, 'requesterId' | 'assigneeId'>,
  from: TicketStatus,
  to: TicketStatus,
): boolean {
  const rule = ruleFor(actor, 'ticket.changeStatus');
  if (rule === 'any') return true;
  if (rule !== 'limited') return false;
  switch (actor.role) {
    case 'agent':
      return ticket.assigneeId === null || ticket.assigneeId === actor.id;
    case 'requester':
      if (ticket.requesterId !== actor.id) return false;
      return (
        ((from === 'new' || from === 'open') && to === 'cancelled') || (from === 'solved' && to === 'open')
      );
    default:
      return false;
  }
}

/** The statuses this actor may move this ticket to right now (what a SPA draws as buttons). */
export function transitionsFor(actor: LifecycleActor, ticket: LifecycleTicket): TicketStatus[] {
  return TRANSITIONS[ticket.status].filter(
    (to) => guardFailure(ticket, to) === null && roleMayTransition(actor, ticket, ticket.status, to),
  );
}

export type TransitionCheck =
  | { ok: true }
  | { ok: false; code: 'TICKET_CLOSED' | 'INVALID_TRANSITION' | 'FORBIDDEN'; detail: string };

/**
 * Checks a requested status change in the order the API answers it:
 * terminal ticket → 409 TICKET_CLOSED; not in the table → 409 INVALID_TRANSITION (allowed targets in
 * the detail); guard fails → 409 INVALID_TRANSITION; the role may not → 403 FORBIDDEN.
 * `ticket` is the state after any assignment in the same request (assignment applies first); who may
 * move it is judged on `before`, the ticket as it was before the request.
 */
export function checkTransition(
  actor: LifecycleActor,
  ticket: LifecycleTicket,
  to: TicketStatus,
  before: Pick<LifecycleTicket, 'requesterId' | 'assigneeId'> = ticket,
): TransitionCheck {
  const from = ticket.status;
  if (isTerminal(from)) {
    return { ok: false, code: 'TICKET_CLOSED', detail: `The ticket is ${from}; it cannot change any more.` };
  }
  if (!canTransition(from, to)) {
    const targets = allowedTargets(from);
    return {
      ok: false,
      code: 'INVALID_TRANSITION',
      detail: `Cannot move a ${from} ticket to ${to}; allowed: ${targets.join(', ') || 'none'}.`,
    };
  }
  const guard = guardFailure(ticket, to);
  if (guard) return { ok: false, code: 'INVALID_TRANSITION', detail: guard };
  if (!roleMayTransition(actor, before, from, to)) {
    return {
      ok: false,
      code: 'FORBIDDEN',
      detail:
        actor.role === 'agent'
          ? 'Agents change the status only of tickets assigned to them or unassigned.'
          : `A ${actor.role} may not move a ${from} ticket to ${to}.`,
    };
  }
  return { ok: true };
}

/** Server-set timestamps that follow a status change. Reopening clears solvedAt (it marks the current solve). */
export function statusSideEffects(
  ticket: Pick<LifecycleTicket, 'solvedAt' | 'closedAt'>,
  to: TicketStatus,
  now: Date,
): Pick<LifecycleTicket, 'solvedAt' | 'closedAt'> {
  if (to === 'solved') return { solvedAt: now, closedAt: null };
  if (to === 'closed') return { solvedAt: ticket.solvedAt, closedAt: now };
  return { solvedAt: null, closedAt: null };
}

/** Assigning a `new` ticket opens it. */
export function statusAfterAssignment(status: TicketStatus, newAssigneeId: string | null): TicketStatus {
  return status === 'new' && newAssigneeId !== null ? 'open' : status;
}

/** A public comment by the requester on a pending or solved ticket reopens it. */
export function statusAfterComment(
  ticket: Pick<LifecycleTicket, 'status' | 'requesterId'>,
  comment: { authorId: string; visibility: 'public' | 'internal' },
): TicketStatus {
  if (
    comment.visibility === 'public' &&
    comment.authorId === ticket.requesterId &&
    (ticket.status === 'pending' || ticket.status === 'solved')
  ) {
    return 'open';
  }
  return ticket.status;
}

/** firstResponseAt: the first public comment by an agent or admin. */
export function setsFirstResponse(
  ticket: Pick<LifecycleTicket, 'firstResponseAt'>,
  author: { role: UserRole },
  visibility: 'public' | 'internal',
): boolean {
  return ticket.firstResponseAt === null && visibility === 'public' && author.role !== 'requester';
}
