import type { UserRole } from '../../db/schema/index.js';
import { canSeeInternal, canViewTicket, isStaff } from '../auth/permissions.js';
import type { NotificationKind } from './mail-templates.js';

/** The switches a user has (GET/PATCH /auth/me/notifications). */
export type PreferenceKey = Exclude<NotificationKind, 'ticketMerged'>;
export type NotificationPreferences = Record<PreferenceKey, boolean>;

/**
 * The switch that governs a kind of mail. A merge closes the requester's ticket the way solving does, so
 * it follows `ticketSolved` (the contract's switches are fixed; a seventh would surprise clients).
 */
export const preferenceOf = (kind: NotificationKind): PreferenceKey =>
  kind === 'ticketMerged' ? 'ticketSolved' : kind;

export const DEFAULT_PREFERENCES: NotificationPreferences = {
  ticketCreated: true,
  publicReply: true,
  ticketSolved: true,
  requesterReply: true,
  assigned: true,
  slaBreach: true,
};

/** The facts of one change event that decide who is told (captured when the change was recorded). */
export interface NotificationEvent {
  type: string;
  ticketId: number;
  actorId: string | null;
  comment?: { id: string; authorId: string; visibility: 'public' | 'internal' } | null;
  /** The ticket's new status, when this change set it. */
  newStatus?: string | null;
  /** The ticket's new assignee, when this change set one (null: unassigned). */
  newAssigneeId?: string | null;
  assigneeChanged?: boolean;
  /** ticket.sla_breached: which target was missed. */
  slaTarget?: 'firstResponse' | 'resolution' | null;
  /**
   * ticket.merged: this event's side of the merge, the other ticket, and the other ticket's requester
   * (the target's requester is told only when they are not the source's: one mail per person per merge).
   */
  merge?: { role: 'source' | 'target'; otherTicketId: number; otherRequesterId: string | null } | null;
}

export interface NotificationTicket {
  id: number;
  requesterId: string;
  assigneeId: string | null;
  teamId: string | null;
  deletedAt?: Date | null;
}

export interface Person {
  id: string;
  role: UserRole;
  active: boolean;
  preferences: NotificationPreferences;
}

export interface Recipient {
  userId: string;
  kind: NotificationKind;
}

/**
 * Who gets a mail for one change event (the contract's table "Who gets what"): one mail per recipient
 * per event; never a deactivated user; never the actor, except the requester's receipt for a ticket they
 * created; only people who may see the ticket (and, for anything from an internal note, internal notes),
 * by the same permission functions as GET; and only when their preference for that kind is on.
 *
 * `people` resolves the users named by the ticket, the event and the team (unknown ids are skipped).
 */
export function notificationRecipients(
  event: NotificationEvent,
  ticket: NotificationTicket,
  people: (id: string) => Person | undefined,
  teamMemberIds: readonly string[],
): Recipient[] {
  const wanted: Recipient[] = [];
  const teamStaff = () =>
    teamMemberIds.filter((id) => {
      const p = people(id);
      return p !== undefined && isStaff(p.role);
    });

  switch (event.type) {
    case 'ticket.created':
      wanted.push({ userId: ticket.requesterId, kind: 'ticketCreated' });
      for (const id of teamStaff()) wanted.push({ userId: id, kind: 'ticketCreated' });
      break;
    case 'comment.created': {
      const c = event.comment;
      if (c?.visibility !== 'public') break; // internal notes notify nobody by mail
      if (c.authorId === ticket.requesterId) {
        if (ticket.assigneeId) wanted.push({ userId: ticket.assigneeId, kind: 'requesterReply' });
      } else {
        const author = people(c.authorId);
        if (author && isStaff(author.role)) wanted.push({ userId: ticket.requesterId, kind: 'publicReply' });
      }
      break;
    }
    case 'ticket.merged':
      if (event.merge?.role === 'source' || event.merge?.otherRequesterId !== ticket.requesterId)
        wanted.push({ userId: ticket.requesterId, kind: 'ticketMerged' });
      break;
    case 'ticket.sla_breached':
      if (ticket.assigneeId) wanted.push({ userId: ticket.assigneeId, kind: 'slaBreach' });
      else for (const id of teamStaff()) wanted.push({ userId: id, kind: 'slaBreach' });
      break;
    default:
      break;
  }
  // One PATCH may both assign and solve: each change tells its own person.
  if (event.type.startsWith('ticket.') && event.type !== 'ticket.created') {
    if (event.newStatus === 'solved') wanted.push({ userId: ticket.requesterId, kind: 'ticketSolved' });
    if (event.assigneeChanged && event.newAssigneeId)
      wanted.push({ userId: event.newAssigneeId, kind: 'assigned' });
  }

  const seen = new Set<string>();
  const out: Recipient[] = [];
  for (const r of wanted) {
    if (seen.has(r.userId)) continue;
    const person = people(r.userId);
    if (!person?.active) continue;
    const receipt = event.type === 'ticket.created' && r.userId === ticket.requesterId;
    if (r.userId === event.actorId && !receipt) continue;
    if (!canViewTicket(person, ticket)) continue;
    if (event.comment?.visibility === 'internal' && !canSeeInternal(person)) continue;
    if (!person.preferences[preferenceOf(r.kind)]) continue;
    seen.add(r.userId);
    out.push(r);
  }
  return out;
}
