import { describe, expect, it } from 'vitest';
import {
  type PatchableTicket,
  planTicketPatch,
  ticketAuditAction,
} from '../../src/modules/tickets/ticket-patch.js';

const NOW = new Date('2026-11-30T10:00:00.000Z');
const EARLIER = new Date('2026-11-29T10:00:00.000Z');
const admin = { id: 'admin-1', role: 'admin' as const };
const agent = { id: 'agent-1', role: 'agent' as const };
const colleague = 'agent-2';
const requester = { id: 'req-1', role: 'requester' as const };

function ticket(over: Partial<PatchableTicket> = {}): PatchableTicket {
  return {
    title: 'Printer on fire',
    description: 'It smokes.',
    priority: 'normal',
    type: 'question',
    tags: ['printer'],
    teamId: null,
    status: 'new',
    requesterId: requester.id,
    assigneeId: null,
    solvedAt: null,
    closedAt: null,
    firstResponseAt: null,
    ...over,
  };
}

describe('planTicketPatch', () => {
  it('sets only the fields that change, with [before, after] audit changes', () => {
    const plan = planTicketPatch(
      admin,
      ticket(),
      { title: 'Printer on fire', priority: 'high', tags: ['printer'] },
      NOW,
    );
    expect(plan).toEqual({ ok: true, set: { priority: 'high' }, changes: { priority: ['normal', 'high'] } });
  });

  it('an unchanged request plans nothing', () => {
    expect(planTicketPatch(admin, ticket(), { type: 'question', tags: ['printer'] }, NOW)).toEqual({
      ok: true,
      set: {},
      changes: {},
    });
  });

  it('assigning a new ticket opens it; assign + solve applies the assignment first', () => {
    const plan = planTicketPatch(agent, ticket(), { assigneeId: agent.id, status: 'solved' }, NOW);
    expect(plan).toEqual({
      ok: true,
      set: { assigneeId: agent.id, status: 'solved', solvedAt: NOW },
      changes: { assigneeId: [null, agent.id], status: ['new', 'solved'], solvedAt: [null, NOW] },
    });
  });

  it("who may change the status is judged on the ticket before the request (an agent and a colleague's ticket)", () => {
    const held = ticket({ status: 'open', assigneeId: colleague });
    expect(planTicketPatch(agent, held, { assigneeId: agent.id, status: 'solved' }, NOW)).toMatchObject({
      ok: false,
      code: 'FORBIDDEN',
    });
    expect(planTicketPatch(admin, held, { assigneeId: agent.id, status: 'solved' }, NOW)).toMatchObject({
      ok: true,
      set: { assigneeId: agent.id, status: 'solved' },
    });
  });

  it('a solved ticket keeps an assignee: unassigning it alone or with status solved is refused', () => {
    const solved = ticket({ status: 'solved', assigneeId: agent.id, solvedAt: EARLIER });
    for (const input of [{ assigneeId: null }, { assigneeId: null, status: 'solved' as const }]) {
      expect(planTicketPatch(admin, solved, input, NOW)).toEqual({
        ok: false,
        code: 'INVALID_TRANSITION',
        detail: 'A solved ticket must keep an assignee; reopen it before unassigning.',
      });
    }
    expect(planTicketPatch(admin, solved, { assigneeId: null, status: 'open' }, NOW)).toMatchObject({
      ok: true,
      set: { assigneeId: null, status: 'open', solvedAt: null },
    });
  });

  it('a transition outside the table, or solving without an assignee → INVALID_TRANSITION', () => {
    expect(planTicketPatch(admin, ticket({ status: 'pending' }), { status: 'cancelled' }, NOW)).toMatchObject(
      {
        ok: false,
        code: 'INVALID_TRANSITION',
      },
    );
    expect(planTicketPatch(admin, ticket({ status: 'open' }), { status: 'solved' }, NOW)).toMatchObject({
      ok: false,
      code: 'INVALID_TRANSITION',
      detail: 'A ticket can be solved only when it has an assignee.',
    });
  });

  it('closing keeps solvedAt and sets closedAt; reopening clears solvedAt', () => {
    const solved = ticket({ status: 'solved', assigneeId: agent.id, solvedAt: EARLIER });
    expect(planTicketPatch(agent, solved, { status: 'closed' }, NOW)).toEqual({
      ok: true,
      set: { status: 'closed', closedAt: NOW },
      changes: { status: ['solved', 'closed'], closedAt: [null, NOW] },
    });
    expect(planTicketPatch(requester, solved, { status: 'open' }, NOW)).toMatchObject({
      ok: true,
      set: { status: 'open', solvedAt: null },
    });
  });

  it('requesters may cancel their new ticket but not put it on hold (FORBIDDEN)', () => {
    expect(planTicketPatch(requester, ticket(), { status: 'cancelled' }, NOW)).toMatchObject({ ok: true });
    expect(planTicketPatch(requester, ticket(), { status: 'on_hold' }, NOW)).toMatchObject({
      ok: false,
      code: 'FORBIDDEN',
    });
  });
});

describe('ticketAuditAction', () => {
  it('the most specific action wins: status_changed > assigned > updated', () => {
    expect(ticketAuditAction({ status: ['new', 'open'], assigneeId: [null, 'a'] })).toBe(
      'ticket.status_changed',
    );
    expect(ticketAuditAction({ assigneeId: [null, 'a'], title: ['a', 'b'] })).toBe('ticket.assigned');
    expect(ticketAuditAction({ title: ['a', 'b'] })).toBe('ticket.updated');
  });
});
