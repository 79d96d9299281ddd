import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApp } from '../helpers/app.js';
import { createUser, type TestUser } from '../helpers/factory.js';
import { expectProblem } from '../helpers/http.js';
import { auditEvents, createTicket, patchTicket } from '../helpers/tickets.js';

let app: FastifyInstance;
let requester: TestUser;
let agent: TestUser;
let colleague: TestUser;
let admin: TestUser;

beforeAll(async () => {
  app = await createTestApp();
  [requester, agent, colleague, admin] = await Promise.all([
    createUser(app, { role: 'requester' }),
    createUser(app, { role: 'agent' }),
    createUser(app, { role: 'agent' }),
    createUser(app, { role: 'admin' }),
  ]);
});
afterAll(() => app.close());

/** A ticket the colleague holds (assigned by the admin), open. */
async function colleaguesTicket(): Promise<number> {
  const { id } = await createTicket(app, requester);
  const res = await patchTicket(app, admin, id, { assigneeId: colleague.id });
  expect(res.json()).toMatchObject({ status: 'open', assignee: { id: colleague.id } });
  return id;
}

async function current(id: number) {
  return (await app.inject({ method: 'GET', url: `/api/v1/tickets/${id}`, headers: admin.auth })).json();
}

describe("an agent and a colleague's ticket: rules apply to the ticket as it was before the request", () => {
  it('taking it and solving it in one PATCH → 403, nothing changes, access.denied audited', async () => {
    const id = await colleaguesTicket();
    const res = await patchTicket(
      app,
      agent,
      id,
      { assigneeId: agent.id, status: 'solved' },
      { 'x-request-id': `take-solve-${id}` },
    );
    expectProblem(res, 403, 'FORBIDDEN');
    expect(await current(id)).toMatchObject({ status: 'open', assignee: { id: colleague.id }, version: 2 });
    const denied = await auditEvents(app, { traceId: `take-solve-${id}` });
    expect(denied).toEqual([
      expect.objectContaining({ action: 'access.denied', entity_id: String(id), actor_id: agent.id }),
    ]);
  });

  it('taking it alone → 403: reassigning a held ticket needs an admin', async () => {
    const id = await colleaguesTicket();
    expectProblem(await patchTicket(app, agent, id, { assigneeId: agent.id }), 403, 'FORBIDDEN');
    expect((await current(id)).assignee.id).toBe(colleague.id);
  });

  it('take-then-unassign cannot unassign the colleague', async () => {
    const id = await colleaguesTicket();
    expectProblem(await patchTicket(app, agent, id, { assigneeId: agent.id }), 403, 'FORBIDDEN');
    expectProblem(await patchTicket(app, agent, id, { assigneeId: null }), 403, 'FORBIDDEN');
    expect((await current(id)).assignee.id).toBe(colleague.id);
  });

  it("changing the status of the colleague's ticket → 403", async () => {
    const id = await colleaguesTicket();
    expectProblem(await patchTicket(app, agent, id, { status: 'pending' }), 403, 'FORBIDDEN');
  });

  it('the admin reassigns it; an agent still takes an unassigned ticket and solves it in one PATCH', async () => {
    const held = await colleaguesTicket();
    const moved = await patchTicket(app, admin, held, { assigneeId: agent.id });
    expect(moved.json().assignee.id).toBe(agent.id);

    const { id } = await createTicket(app, requester);
    const res = await patchTicket(app, agent, id, { assigneeId: agent.id, status: 'solved' });
    expect(res.statusCode, res.body).toBe(200);
    expect(res.json()).toMatchObject({ status: 'solved', assignee: { id: agent.id } });
  });
});
