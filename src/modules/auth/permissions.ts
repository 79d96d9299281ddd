import type { UserRole } from '../../db/schema/index.js';
import { ForbiddenError } from '../../lib/errors.js';
import type { Actor } from './actor.js';

/**
 * The contract's permission matrix (../shared/API.md "Roles and permissions") as one table:
 * action → role → rule. Deny by default: a role missing from a row, or 'never', is refused.
 *
 * Rules:
 *  - 'any'   allowed on any resource of that kind
 *  - 'own'   allowed only on resources the actor owns (ticket requested by them, their own profile)
 *  - 'self'  allowed only with the actor as the target (agent assigning a ticket to themself)
 *  - 'limited' allowed with restrictions spelled out by a named check below (e.g. agent status changes)
 *  - 'never'
 * Resource checks (ownership, visibility, field rules) are the small named functions after the table;
 * services call them per resource, never only per route.
 */
export type Rule = 'any' | 'own' | 'self' | 'limited' | 'never';

export const PERMISSIONS = {
  // tickets
  'ticket.create': { requester: 'own', agent: 'any', admin: 'any' },
  'ticket.read': { requester: 'own', agent: 'any', admin: 'any' },
  'ticket.editContent': { requester: 'limited', agent: 'any', admin: 'any' }, // title/description; requester: own while new
  'ticket.classify': { requester: 'never', agent: 'any', admin: 'any' }, // priority/type/tags/teamId after creation
  'ticket.assign': { requester: 'never', agent: 'self', admin: 'any' },
  'ticket.changeStatus': { requester: 'limited', agent: 'limited', admin: 'any' },
  'ticket.delete': { requester: 'never', agent: 'never', admin: 'any' },
  'ticket.restore': { requester: 'never', agent: 'never', admin: 'any' },
  // comments
  'comment.createPublic': { requester: 'own', agent: 'any', admin: 'any' },
  'comment.internal': { requester: 'never', agent: 'any', admin: 'any' }, // add and read internal notes
  // users and teams
  'user.readSelf': { requester: 'own', agent: 'own', admin: 'own' },
  'user.updateSelf': { requester: 'own', agent: 'own', admin: 'own' },
  'user.list': { requester: 'never', agent: 'limited', admin: 'any' }, // agent: agents and admins only
  'user.read': { requester: 'never', agent: 'never', admin: 'any' },
  'user.manage': { requester: 'never', agent: 'never', admin: 'any' }, // create, update, role, deactivate
  'team.read': { requester: 'never', agent: 'any', admin: 'any' },
  'team.manage': { requester: 'never', agent: 'never', admin: 'any' },
  // SLA policies
  'sla.read': { requester: 'never', agent: 'any', admin: 'any' },
  'sla.manage': { requester: 'never', agent: 'never', admin: 'any' },
  // audit
  'audit.readTicketTimeline': { requester: 'never', agent: 'any', admin: 'any' },
  'audit.readAll': { requester: 'never', agent: 'never', admin: 'any' },
  // integrations
  'webhook.manage': { requester: 'never', agent: 'never', admin: 'any' },
  // reports
  'report.read': { requester: 'never', agent: 'any', admin: 'any' },
  'ticket.export': { requester: 'never', agent: 'never', admin: 'any' },
} as const satisfies Record<string, Record<UserRole, Rule>>;

export type Action = keyof typeof PERMISSIONS;

/** The rule for this actor and action ('never' when the table has none). */
export function ruleFor(actor: Pick<Actor, 'role'>, action: Action): Rule {
  return (PERMISSIONS[action] as Record<UserRole, Rule>)[actor.role] ?? 'never';
}

export function can(actor: Pick<Actor, 'role'>, action: Action): boolean {
  return ruleFor(actor, action) !== 'never';
}

/**
 * A 403 that the error pipeline records as an `access.denied` audit event (see src/app.ts), with the
 * attempted operation in its metadata.
 */
export class AccessDeniedError extends ForbiddenError {
  constructor(
    public readonly operation: Action | string,
    public readonly entity?: { type: string; id?: string | number | null },
    detail = 'You are not allowed to do this.',
    code = 'FORBIDDEN',
  ) {
    super(detail, code);
  }
}

/** Throws AccessDeniedError unless the role may perform the action at all. Returns the rule to refine on. */
export function assertCan(
  actor: Pick<Actor, 'role'>,
  action: Action,
  entity?: { type: string; id?: string | number | null },
): Rule {
  const rule = ruleFor(actor, action);
  if (rule === 'never') throw new AccessDeniedError(action, entity);
  return rule;
}

// ---- resource checks -------------------------------------------------------------------------------

/** ticket.read: requesters see only the tickets they requested ('own'); staff see all. Deleted: admins only. */
export function canViewTicket(
  actor: Pick<Actor, 'id' | 'role'>,
  ticket: { requesterId: string; deletedAt?: Date | null },
): boolean {
  if (ticket.deletedAt) return actor.role === 'admin';
  const rule = ruleFor(actor, 'ticket.read');
  return rule === 'any' || (rule === 'own' && ticket.requesterId === actor.id);
}

/** The fields of a ticket change that the field rules look at (absent: not part of the change). */
export interface TicketPatchFields {
  title?: unknown;
  description?: unknown;
  priority?: unknown;
  type?: unknown;
  tags?: unknown;
  teamId?: unknown;
  assigneeId?: string | null;
}

/**
 * Field rules of a ticket change, judged on the ticket as it was before the request; a field the
 * role may not set is refused (403 FORBIDDEN), never ignored.
 * - title/description: staff; requesters on their own ticket while it is new;
 * - priority/type/tags/teamId: staff;
 * - assigneeId: admins anyone; an agent takes an unassigned ticket (assigns it to themself) or
 *   unassigns themself — taking a ticket a colleague holds needs an admin.
 * Status changes are the lifecycle's role rules (ticket-lifecycle.ts), also on the ticket as it was.
 */
export function assertCanPatchTicket(
  actor: Pick<Actor, 'id' | 'role'>,
  ticket: { id: number; status: string; assigneeId: string | null },
  input: TicketPatchFields,
): void {
  const entity = { type: 'ticket', id: ticket.id };
  if (input.title !== undefined || input.description !== undefined) {
    assertCan(actor, 'ticket.editContent', entity);
    if (actor.role === 'requester' && ticket.status !== 'new') {
      throw new AccessDeniedError(
        'ticket.editContent',
        entity,
        'Requesters may edit the title and description only while the ticket is new.',
      );
    }
  }
  if ([input.priority, input.type, input.tags, input.teamId].some((v) => v !== undefined)) {
    assertCan(actor, 'ticket.classify', entity);
  }
  if (input.assigneeId !== undefined && assertCan(actor, 'ticket.assign', entity) === 'self') {
    const heldBySelfOrNobody = ticket.assigneeId === null || ticket.assigneeId === actor.id;
    const ok = (input.assigneeId === actor.id || input.assigneeId === null) && heldBySelfOrNobody;
    if (!ok) {
      throw new AccessDeniedError(
        'ticket.assign',
        entity,
        ticket.assigneeId !== null && input.assigneeId === actor.id
          ? 'The ticket is assigned to someone else; an admin reassigns it.'
          : 'Agents may take an unassigned ticket (assign it to themselves) or unassign themselves only.',
      );
    }
  }
}

/** Internal notes (and their attachments, counts, events) are invisible to requesters everywhere. */
export function canSeeInternal(actor: Pick<Actor, 'role'>): boolean {
  return can(actor, 'comment.internal');
}

/** Staff are agents and admins: the people a ticket can be assigned to. */
export function isStaff(role: UserRole): boolean {
  return role === 'agent' || role === 'admin';
}
