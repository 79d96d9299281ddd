import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TicketStatus } from '../../src/db/schema/index.js';
import { createTestApp } from '../helpers/app.js';
import { CONTRACT_TRANSITIONS } from '../helpers/contract-lifecycle.js';
import { createUser, type TestUser } from '../helpers/factory.js';
import { createTicket, patchTicket } from '../helpers/tickets.js';

let app: FastifyInstance;
let requester: TestUser;
let agent: TestUser;
let agent2: TestUser;
let admin: TestUser;

beforeAll(async () => {
  app = await createTestApp();
  [requester, agent, agent2, admin] = await Promise.all([
    createUser(app, { role: 'requester' }),
    createUser(app, { role: 'agent' }),
    createUser(app, { role: 'agent' }),
    createUser(app, { role: 'admin' }),
  ]);
});
afterAll(() => app.close());

/** Drives a fresh ticket (assigned to `agent`) into `status` as admin. */
async function ticketIn(status: TicketStatus): Promise<number> {
  const { id } = await createTicket(app, requester, { title: 'Lifecycle', description: 'Walk it' });
  if (status === 'new') return id;
  const paths: Record<Exclude<TicketStatus, 'new'>, TicketStatus[]> = {
    open: [],
    pending: ['pending'],
    on_hold: ['on_hold'],
    solved: ['solved'],
    closed: ['solved', 'closed'],
    cancelled: ['cancelled'],
  };
  expect((await patchTicket(app, admin, id, { assigneeId: agent.id })).json().status).toBe('open');
  for (const s of paths[status]) {
    const r = await patchTicket(app, admin, id, { status: s });
    expect(r.statusCode, r.body).toBe(200);
  }
  return id;
}

const ALLOWED = CONTRACT_TRANSITIONS;
const STATUSES = Object.keys(ALLOWED) as TicketStatus[];

describe('every forbidden transition answers 409 and changes nothing (admin)', () => {
  for (const from of STATUSES) {
    const forbidden = STATUSES.filter((to) => to !== from && !ALLOWED[from].includes(to));
    if (forbidden.length === 0) continue;
    it(`${from} → ${forbidden.join(', ')}`, async () => {
      const id = await ticketIn(from);
      const before = (
        await app.inject({ method: 'GET', url: `/api/v1/tickets/${id}`, headers: admin.auth })
      ).json();
      for (const to of forbidden) {
        const res = await patchTicket(app, admin, id, { status: to });
        expect(res.statusCode, `${from} → ${to}`).toBe(409);
        const code = from === 'closed' || from === 'cancelled' ? 'TICKET_CLOSED' : 'INVALID_TRANSITION';
        expect(res.json().code).toBe(code);
        if (code === 'INVALID_TRANSITION') expect(res.json().detail).toContain(ALLOWED[from].join(', '));
      }
      const after = (
        await app.inject({ method: 'GET', url: `/api/v1/tickets/${id}`, headers: admin.auth })
      ).json();
      expect(after.version).toBe(before.version);
      expect(after.status).toBe(from);
    });
  }
});

describe('allowed transitions (admin) with server-set timestamps', () => {
  for (const from of STATUSES) {
    for (const to of ALLOWED[from]) {
      it(`${from} → ${to}`, async () => {
        const id = await ticketIn(from);
        // new → solved needs an assignee: assign in the same PATCH (assignment applies first).
        const body =
          from === 'new' && to === 'solved' ? { status: to, assigneeId: agent.id } : { status: to };
        const res = await patchTicket(app, admin, id, body);
        expect(res.statusCode, res.body).toBe(200);
        const t = res.json();
        expect(t.status).toBe(to);
        expect(t.solvedAt !== null).toBe(to === 'solved' || to === 'closed');
        expect(t.closedAt !== null).toBe(to === 'closed');
        expect(t.allowedTransitions).toEqual(ALLOWED[to].filter((s) => s !== 'solved' || t.assignee));
      });
    }
  }

  it('solving without an assignee → 409 INVALID_TRANSITION; assign + solve in one PATCH works', async () => {
    const { id } = await createTicket(app, requester, { title: 'Lifecycle', description: 'Walk it' });
    const res = await patchTicket(app, admin, id, { status: 'solved' });
    expect(res.statusCode).toBe(409);
    expect(res.json().code).toBe('INVALID_TRANSITION');
    const both = await patchTicket(app, agent, id, { status: 'solved', assigneeId: agent.id });
    expect(both.statusCode).toBe(200);
    expect(both.json()).toMatchObject({ status: 'solved', assignee: { id: agent.id } });
  });

  it('unassigning a solved ticket → 409', async () => {
    const id = await ticketIn('solved');
    expect((await patchTicket(app, admin, id, { assigneeId: null })).statusCode).toBe(409);
  });

  it('closed tickets refuse every change, including title, with 409 TICKET_CLOSED', async () => {
    const id = await ticketIn('closed');
    const res = await patchTicket(app, admin, id, { title: 'renamed' });
    expect(res.statusCode).toBe(409);
    expect(res.json().code).toBe('TICKET_CLOSED');
  });
});

describe('role rules for status changes', () => {
  it('requester cancels own new/open ticket, cannot solve or put on hold (403)', async () => {
    const a = await createTicket(app, requester, { title: 'Lifecycle', description: 'Walk it' });
    expect((await patchTicket(app, requester, a.id, { status: 'on_hold' })).statusCode).toBe(403);
    const cancel = await patchTicket(app, requester, a.id, { status: 'cancelled' });
    expect(cancel.statusCode).toBe(200);
    expect(cancel.json().allowedTransitions).toEqual([]);
    const b = await ticketIn('open');
    expect((await patchTicket(app, requester, b, { status: 'cancelled' })).json().status).toBe('cancelled');
  });

  it('requester reopens own solved ticket, cannot close it', async () => {
    const id = await ticketIn('solved');
    const view = await app.inject({ method: 'GET', url: `/api/v1/tickets/${id}`, headers: requester.auth });
    expect(view.json().allowedTransitions).toEqual(['open']);
    expect((await patchTicket(app, requester, id, { status: 'closed' })).statusCode).toBe(403);
    const reopen = await patchTicket(app, requester, id, { status: 'open' });
    expect(reopen.json()).toMatchObject({ status: 'open', solvedAt: null });
  });

  it("agent changes status of own or unassigned tickets only; another agent's ticket → 403", async () => {
    const id = await ticketIn('open'); // assigned to agent
    const other = await app.inject({ method: 'GET', url: `/api/v1/tickets/${id}`, headers: agent2.auth });
    expect(other.json().allowedTransitions).toEqual([]);
    const res = await patchTicket(app, agent2, id, { status: 'pending' });
    expect(res.statusCode).toBe(403);
    expect((await patchTicket(app, agent, id, { status: 'pending' })).json().status).toBe('pending');
    const { id: unassigned } = await createTicket(app, requester, {
      title: 'Lifecycle',
      description: 'Walk it',
    });
    expect((await patchTicket(app, agent2, unassigned, { status: 'on_hold' })).json().status).toBe('on_hold');
  });

  it('a denied status change is audited as access.denied', async () => {
    const id = await ticketIn('open');
    const res = await app.inject({
      method: 'PATCH',
      url: `/api/v1/tickets/${id}`,
      headers: { ...agent2.auth, 'x-request-id': `deny-${id}` },
      payload: { status: 'pending' },
    });
    expect(res.statusCode).toBe(403);
    const { rows } = await app.db.$client.query(
      `SELECT action, metadata FROM audit_events WHERE trace_id = $1`,
      [`deny-${id}`],
    );
    expect(rows).toEqual([
      expect.objectContaining({
        action: 'access.denied',
        metadata: expect.objectContaining({ operation: 'ticket.changeStatus' }),
      }),
    ]);
  });
});
