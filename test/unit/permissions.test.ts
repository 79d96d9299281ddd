import { describe, expect, it } from 'vitest';
import type { UserRole } from '../../src/db/schema/index.js';
import {
  AccessDeniedError,
  type Action,
  assertCan,
  assertCanPatchTicket,
  can,
  canViewTicket,
  isStaff,
  PERMISSIONS,
  ruleFor,
} from '../../src/modules/auth/permissions.js';

const roles: UserRole[] = ['requester', 'agent', 'admin'];

describe('permission matrix: users, teams, audit rows of the contract', () => {
  // "manage users, roles, teams | own profile only | own profile; list agents and teams | everything"
  // "read audit events | no | ticket timeline of any ticket | everything"
  const expected: Record<string, Record<UserRole, string>> = {
    'user.readSelf': { requester: 'own', agent: 'own', admin: 'own' },
    'user.updateSelf': { requester: 'own', agent: 'own', admin: 'own' },
    'user.list': { requester: 'never', agent: 'limited', admin: 'any' },
    'user.read': { requester: 'never', agent: 'never', admin: 'any' },
    'user.manage': { requester: 'never', agent: 'never', admin: 'any' },
    'team.read': { requester: 'never', agent: 'any', admin: 'any' },
    'team.manage': { requester: 'never', agent: 'never', admin: 'any' },
    'audit.readTicketTimeline': { requester: 'never', agent: 'any', admin: 'any' },
    'audit.readAll': { requester: 'never', agent: 'never', admin: 'any' },
  };

  for (const [action, byRole] of Object.entries(expected)) {
    for (const role of roles) {
      it(`${action} for ${role}: ${byRole[role]}`, () => {
        expect(ruleFor({ role }, action as Action)).toBe(byRole[role]);
        expect(can({ role }, action as Action)).toBe(byRole[role] !== 'never');
      });
    }
  }

  it('assertCan throws AccessDeniedError (403 FORBIDDEN) carrying the operation and entity', () => {
    try {
      assertCan({ role: 'agent' }, 'user.manage', { type: 'user', id: 'u1' });
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(AccessDeniedError);
      const e = err as AccessDeniedError;
      expect(e.status).toBe(403);
      expect(e.code).toBe('FORBIDDEN');
      expect(e.operation).toBe('user.manage');
      expect(e.entity).toEqual({ type: 'user', id: 'u1' });
    }
    expect(assertCan({ role: 'admin' }, 'user.manage')).toBe('any');
  });

  it('denies by default: an unknown role gets nothing', () => {
    const stranger = { role: 'guest' as UserRole };
    for (const action of Object.keys(PERMISSIONS) as Action[]) {
      expect(can(stranger, action)).toBe(false);
    }
  });

  it('staff are agents and admins', () => {
    expect(roles.filter(isStaff)).toEqual(['agent', 'admin']);
  });
});

describe('assertCanPatchTicket: field rules on the ticket as it was before the request', () => {
  const agent = { id: 'agent-1', role: 'agent' as const };
  const open = (assigneeId: string | null) => ({ id: 7, status: 'open', assigneeId });
  const denied = (fn: () => void) => {
    try {
      fn();
    } catch (err) {
      return err instanceof AccessDeniedError ? err.operation : 'other error';
    }
    return null;
  };

  it('an agent takes an unassigned ticket or unassigns themself', () => {
    expect(denied(() => assertCanPatchTicket(agent, open(null), { assigneeId: agent.id }))).toBeNull();
    expect(denied(() => assertCanPatchTicket(agent, open(agent.id), { assigneeId: null }))).toBeNull();
    expect(denied(() => assertCanPatchTicket(agent, open(agent.id), { assigneeId: agent.id }))).toBeNull();
  });

  it("an agent may not take a colleague's ticket, unassign the colleague or assign someone else", () => {
    expect(denied(() => assertCanPatchTicket(agent, open('agent-2'), { assigneeId: agent.id }))).toBe(
      'ticket.assign',
    );
    expect(denied(() => assertCanPatchTicket(agent, open('agent-2'), { assigneeId: null }))).toBe(
      'ticket.assign',
    );
    expect(denied(() => assertCanPatchTicket(agent, open(null), { assigneeId: 'agent-2' }))).toBe(
      'ticket.assign',
    );
  });

  it('admins assign anyone; requesters edit content only while new and never classify', () => {
    const adminActor = { id: 'admin-1', role: 'admin' as const };
    expect(denied(() => assertCanPatchTicket(adminActor, open('agent-2'), { assigneeId: 'x' }))).toBeNull();
    const req = { id: 'req-1', role: 'requester' as const };
    expect(
      denied(() => assertCanPatchTicket(req, { id: 1, status: 'new', assigneeId: null }, { title: 't' })),
    ).toBeNull();
    expect(denied(() => assertCanPatchTicket(req, open(null), { title: 't' }))).toBe('ticket.editContent');
    expect(
      denied(() => assertCanPatchTicket(req, { id: 1, status: 'new', assigneeId: null }, { tags: [] })),
    ).toBe('ticket.classify');
  });
});

describe('the ticket rows of the table are the ones the checks consult', () => {
  it('ticket.read: requesters own, staff any', () => {
    expect(ruleFor({ role: 'requester' }, 'ticket.read')).toBe('own');
    expect(canViewTicket({ id: 'r', role: 'requester' }, { requesterId: 'r' })).toBe(true);
    expect(canViewTicket({ id: 'r', role: 'requester' }, { requesterId: 'other' })).toBe(false);
    expect(canViewTicket({ id: 'a', role: 'agent' }, { requesterId: 'other' })).toBe(true);
  });
});
