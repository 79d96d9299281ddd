import { type FieldChanges, fieldChanges, sameValue } from '../../lib/field-diff.js';
import {
  checkTransition,
  type LifecycleActor,
  type LifecycleTicket,
  statusAfterAssignment,
  statusSideEffects,
} from './ticket-lifecycle.js';
import type { TicketPriority, TicketStatus, TicketType } from './ticket-values.js';

/**
 * What a ticket change does, as a pure function of who asks, the ticket as it is, the request and
 * the time: the columns to set and the audit `changes`, or the refusal the API answers. No I/O; field
 * permissions (assertCanPatchTicket) and the existence of the named assignee and team are checked
 * before, by the service.
 */

export interface PatchableTicket extends LifecycleTicket {
  title: string;
  description: string;
  priority: TicketPriority;
  type: TicketType;
  tags: string[];
  teamId: string | null;
}

export interface TicketPatchRequest {
  title?: string;
  description?: string;
  priority?: TicketPriority;
  type?: TicketType;
  tags?: string[];
  teamId?: string | null;
  status?: TicketStatus;
  assigneeId?: string | null;
}

export type TicketPatchSet = Partial<
  Pick<
    PatchableTicket,
    | 'title'
    | 'description'
    | 'priority'
    | 'type'
    | 'tags'
    | 'teamId'
    | 'status'
    | 'assigneeId'
    | 'solvedAt'
    | 'closedAt'
  >
>;

export type TicketPatchPlan =
  | { ok: true; set: TicketPatchSet; changes: FieldChanges }
  | { ok: false; code: 'INVALID_TRANSITION' | 'TICKET_CLOSED' | 'FORBIDDEN'; detail: string };

const CONTENT_FIELDS = ['title', 'description', 'priority', 'type', 'tags', 'teamId'] as const;

const SOLVED_KEEPS_ASSIGNEE = {
  ok: false,
  code: 'INVALID_TRANSITION',
  detail: 'A solved ticket must keep an assignee; reopen it before unassigning.',
} as const;

/**
 * Plans a PATCH. The assignment applies first (assigning a new ticket opens it), then the status
 * change is checked against the lifecycle on the state after the assignment — but who may change
 * the status is judged on the ticket as it was before the request, so taking a ticket cannot lend
 * its taker the right to move it. A solved ticket never ends up without an assignee.
 */
export function planTicketPatch(
  actor: LifecycleActor,
  ticket: PatchableTicket,
  input: TicketPatchRequest,
  now: Date,
): TicketPatchPlan {
  const set: TicketPatchSet = {};
  for (const field of CONTENT_FIELDS) {
    const value = input[field];
    if (value !== undefined && !sameValue(value, ticket[field])) Object.assign(set, { [field]: value });
  }

  let status = ticket.status;
  let assigneeId = ticket.assigneeId;
  if (input.assigneeId !== undefined && input.assigneeId !== ticket.assigneeId) {
    assigneeId = input.assigneeId;
    set.assigneeId = assigneeId;
    status = statusAfterAssignment(status, assigneeId);
  }
  if (input.status !== undefined && input.status !== status) {
    const check = checkTransition(actor, { ...ticket, status, assigneeId }, input.status, ticket);
    if (!check.ok) return check;
    status = input.status;
  }
  if (status === 'solved' && assigneeId === null) return SOLVED_KEEPS_ASSIGNEE;

  if (status !== ticket.status) {
    set.status = status;
    const effects = statusSideEffects(ticket, status, now);
    if (!sameValue(effects.solvedAt, ticket.solvedAt)) set.solvedAt = effects.solvedAt;
    if (!sameValue(effects.closedAt, ticket.closedAt)) set.closedAt = effects.closedAt;
  }
  return { ok: true, set, changes: fieldChanges(ticket, set) };
}

/**
 * The audit action of a ticket change. One event per changed ticket per request: the most specific
 * action wins (status_changed > assigned > updated) and `changes` holds every field that changed.
 */
export function ticketAuditAction(
  changes: FieldChanges,
): 'ticket.status_changed' | 'ticket.assigned' | 'ticket.updated' {
  if ('status' in changes) return 'ticket.status_changed';
  if ('assigneeId' in changes) return 'ticket.assigned';
  return 'ticket.updated';
}
