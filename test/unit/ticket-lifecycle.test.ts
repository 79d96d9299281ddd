import { describe, expect, it } from 'vitest';
import type { TicketStatus, UserRole } from '../../src/db/schema/index.js';
import {
  allowedTargets,
  canTransition,
  checkTransition,
  isTerminal,
  type LifecycleTicket,
  STATUSES,
  setsFirstResponse,
  statusAfterAssignment,
  statusAfterComment,
  statusSideEffects,
  transitionsFor,
} from '../../src/modules/tickets/ticket-lifecycle.js';
import { CONTRACT_TRANSITIONS } from '../helpers/contract-lifecycle.js';

const TABLE = CONTRACT_TRANSITIONS;

const REQUESTER = { id: 'req', role: 'requester' as UserRole };
const OTHER_REQUESTER = { id: 'req2', role: 'requester' as UserRole };
const AGENT = { id: 'agent', role: 'agent' as UserRole };
const AGENT2 = { id: 'agent2', role: 'agent' as UserRole };
const ADMIN = { id: 'admin', role: 'admin' as UserRole };

function ticket(status: TicketStatus, assigneeId: string | null = 'agent'): LifecycleTicket {
  return { status, requesterId: 'req', assigneeId, solvedAt: null, closedAt: null, firstResponseAt: null };
}

/** The expected answer of the contract for (from, to, actor) on a ticket requested by REQUESTER. */
function expected(
  actor: { id: string; role: UserRole },
  from: TicketStatus,
  to: TicketStatus,
  assigneeId: string | null,
): 'ok' | 'TICKET_CLOSED' | 'INVALID_TRANSITION' | 'FORBIDDEN' {
  if (from === 'closed' || from === 'cancelled') return 'TICKET_CLOSED';
  if (!TABLE[from].includes(to)) return 'INVALID_TRANSITION';
  if (to === 'solved' && assigneeId === null) return 'INVALID_TRANSITION';
  if (actor.role === 'admin') return 'ok';
  if (actor.role === 'agent') return assigneeId === null || assigneeId === actor.id ? 'ok' : 'FORBIDDEN';
  if (actor.id !== 'req') return 'FORBIDDEN';
  if ((from === 'new' || from === 'open') && to === 'cancelled') return 'ok';
  if (from === 'solved' && to === 'open') return 'ok';
  return 'FORBIDDEN';
}

const ACTORS = [REQUESTER, OTHER_REQUESTER, AGENT, AGENT2, ADMIN];
const ASSIGNEES = ['agent', null];

const cases = STATUSES.flatMap((from) =>
  STATUSES.filter((to) => to !== from).flatMap((to) =>
    ACTORS.flatMap((actor) => ASSIGNEES.map((assigneeId) => ({ from, to, actor, assigneeId }))),
  ),
);

describe('ticket lifecycle: transition table', () => {
  it('canTransition matches the contract for every (from, to) pair', () => {
    for (const from of STATUSES) {
      for (const to of STATUSES) {
        expect(canTransition(from, to), `${from} → ${to}`).toBe(TABLE[from].includes(to));
      }
    }
  });

  it('allowedTargets lists exactly the table row; closed and cancelled are terminal', () => {
    for (const from of STATUSES) expect(allowedTargets(from)).toEqual(TABLE[from]);
    expect(STATUSES.filter(isTerminal)).toEqual(['closed', 'cancelled']);
  });
});

describe('ticket lifecycle: every (from, to, role) combination', () => {
  it.each(cases)('$from → $to by $actor.id (assignee $assigneeId)', ({ from, to, actor, assigneeId }) => {
    const result = checkTransition(actor, ticket(from, assigneeId), to);
    const want = expected(actor, from, to, assigneeId);
    expect(result.ok ? 'ok' : result.code).toBe(want);
    if (!result.ok && result.code === 'INVALID_TRANSITION' && TABLE[from].includes(to) === false) {
      expect(result.detail).toContain(TABLE[from].join(', ') || 'none');
    }
    // allowedTransitions agrees with checkTransition.
    expect(transitionsFor(actor, ticket(from, assigneeId)).includes(to)).toBe(want === 'ok');
  });
});

describe('ticket lifecycle: guards and side effects', () => {
  it('solving needs an assignee', () => {
    const r = checkTransition(ADMIN, ticket('open', null), 'solved');
    expect(r).toMatchObject({ ok: false, code: 'INVALID_TRANSITION' });
    expect(transitionsFor(ADMIN, ticket('open', null))).not.toContain('solved');
  });

  it('assigning a new ticket opens it; other statuses are kept; unassigning keeps the status', () => {
    expect(statusAfterAssignment('new', 'agent')).toBe('open');
    expect(statusAfterAssignment('new', null)).toBe('new');
    for (const s of STATUSES.filter((x) => x !== 'new')) expect(statusAfterAssignment(s, 'agent')).toBe(s);
  });

  it('a public requester reply reopens pending and solved tickets only', () => {
    for (const s of STATUSES) {
      const t = { status: s, requesterId: 'req' };
      const want = s === 'pending' || s === 'solved' ? 'open' : s;
      expect(statusAfterComment(t, { authorId: 'req', visibility: 'public' })).toBe(want);
      expect(statusAfterComment(t, { authorId: 'agent', visibility: 'public' })).toBe(s);
      expect(statusAfterComment(t, { authorId: 'agent', visibility: 'internal' })).toBe(s);
    }
  });

  it('solvedAt/closedAt follow the status', () => {
    const now = new Date('2026-11-22T10:00:00.000Z');
    const earlier = new Date('2026-11-21T10:00:00.000Z');
    expect(statusSideEffects({ solvedAt: null, closedAt: null }, 'solved', now)).toEqual({
      solvedAt: now,
      closedAt: null,
    });
    expect(statusSideEffects({ solvedAt: earlier, closedAt: null }, 'closed', now)).toEqual({
      solvedAt: earlier,
      closedAt: now,
    });
    expect(statusSideEffects({ solvedAt: earlier, closedAt: null }, 'open', now)).toEqual({
      solvedAt: null,
      closedAt: null,
    });
  });

  it('firstResponseAt: first public reply by staff only', () => {
    const t = { firstResponseAt: null };
    expect(setsFirstResponse(t, { role: 'agent' }, 'public')).toBe(true);
    expect(setsFirstResponse(t, { role: 'admin' }, 'public')).toBe(true);
    expect(setsFirstResponse(t, { role: 'agent' }, 'internal')).toBe(false);
    expect(setsFirstResponse(t, { role: 'requester' }, 'public')).toBe(false);
    expect(setsFirstResponse({ firstResponseAt: new Date() }, { role: 'agent' }, 'public')).toBe(false);
  });
});
