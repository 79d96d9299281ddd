import { describe, expect, it } from 'vitest';
import type { UserRole } from '../../src/db/schema/index.js';
import {
  AccessDeniedError,
  type Action,
  assertCan,
  can,
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
