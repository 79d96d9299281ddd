import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApp } from '../helpers/app.js';
import { createUser, type TestUser } from '../helpers/factory.js';
import { createTicket } from '../helpers/tickets.js';

let app: FastifyInstance;
let requester: TestUser;
let other: TestUser;
let agent: TestUser;
let admin: TestUser;

beforeAll(async () => {
  app = await createTestApp();
  [requester, other, agent, admin] = await Promise.all([
    createUser(app, { role: 'requester' }),
    createUser(app, { role: 'requester' }),
    createUser(app, { role: 'agent', name: 'Agent Smith' }),
    createUser(app, { role: 'admin' }),
  ]);
});
afterAll(() => app.close());

function comment(user: TestUser, id: number, body: string, visibility?: 'public' | 'internal') {
  return app.inject({
    method: 'POST',
    url: `/api/v1/tickets/${id}/comments`,
    headers: user.auth,
    payload: visibility ? { body, visibility } : { body },
  });
}

const get = (user: TestUser, url: string) => app.inject({ method: 'GET', url, headers: user.auth });

describe('comments', () => {
  it('public reply by requester and agent; first agent reply sets firstResponseAt', async () => {
    const { id } = await createTicket(app, requester, { title: 'Comment me', description: 'Body' });
    const r1 = await comment(requester, id, 'Any news?');
    expect(r1.statusCode).toBe(201);
    expect(r1.json()).toMatchObject({
      ticketId: id,
      author: { id: requester.id, role: 'requester' },
      body: 'Any news?',
      visibility: 'public',
      attachments: [],
    });
    expect((await get(agent, `/api/v1/tickets/${id}`)).json().firstResponseAt).toBeNull();
    await comment(agent, id, 'Internal look', 'internal');
    expect((await get(agent, `/api/v1/tickets/${id}`)).json().firstResponseAt).toBeNull();
    const r2 = await comment(agent, id, 'On it.');
    const t = (await get(agent, `/api/v1/tickets/${id}`)).json();
    expect(t.firstResponseAt).toBe(r2.json().createdAt);
    await comment(admin, id, 'Second reply');
    expect((await get(agent, `/api/v1/tickets/${id}`)).json().firstResponseAt).toBe(t.firstResponseAt);
  });

  it('requester cannot write internal notes (403) nor comment on others’ tickets (404)', async () => {
    const { id } = await createTicket(app, requester, { title: 'Comment me', description: 'Body' });
    const res = await comment(requester, id, 'secret', 'internal');
    expect(res.statusCode).toBe(403);
    expect((await comment(other, id, 'hi')).statusCode).toBe(404);
  });

  it('internal notes are invisible to the requester: list, ticket, search; visible to staff', async () => {
    const { id } = await createTicket(app, requester, {
      title: 'Quarterly report export',
      description: 'Body',
    });
    await comment(agent, id, 'Customer uses xylophonequark macro, escalate', 'internal');
    await comment(agent, id, 'Please try the export again, dolphinvortex mode');

    const asRequester = (await get(requester, `/api/v1/tickets/${id}/comments`)).json();
    expect(asRequester.data.map((c: { visibility: string }) => c.visibility)).toEqual(['public']);
    expect(JSON.stringify(asRequester)).not.toContain('xylophonequark');
    const asAgent = (await get(agent, `/api/v1/tickets/${id}/comments`)).json();
    expect(asAgent.data.map((c: { visibility: string }) => c.visibility)).toEqual(['internal', 'public']);

    // Search: public comment text is searchable, internal note text is not — for anyone.
    for (const user of [requester, agent, admin]) {
      const internalHit = (await get(user, '/api/v1/tickets?q=xylophonequark')).json();
      expect(internalHit.data).toEqual([]);
    }
    const publicHit = (await get(requester, '/api/v1/tickets?q=dolphinvortex')).json();
    expect(publicHit.data.map((t: { id: number }) => t.id)).toEqual([id]);

    // The internal note did not touch the ticket (no updatedAt/version change visible to the requester).
    const before = (await get(requester, `/api/v1/tickets/${id}`)).json();
    await comment(agent, id, 'another quiet note', 'internal');
    const after = (await get(requester, `/api/v1/tickets/${id}`)).json();
    expect(after.updatedAt).toBe(before.updatedAt);
    expect(after.version).toBe(before.version);
  });

  it("requester's public reply reopens a pending or solved ticket", async () => {
    for (const status of ['pending', 'solved'] as const) {
      const { id } = await createTicket(app, requester, { title: 'Comment me', description: 'Body' });
      await app.inject({
        method: 'PATCH',
        url: `/api/v1/tickets/${id}`,
        headers: admin.auth,
        payload: { assigneeId: agent.id, status },
      });
      await comment(agent, id, 'staff reply keeps status');
      expect((await get(requester, `/api/v1/tickets/${id}`)).json().status).toBe(status);
      await comment(requester, id, 'Still broken');
      expect((await get(requester, `/api/v1/tickets/${id}`)).json()).toMatchObject({
        status: 'open',
        solvedAt: null,
      });
    }
  });

  it('comments on closed or cancelled tickets → 409 TICKET_CLOSED', async () => {
    const { id } = await createTicket(app, requester, { title: 'Comment me', description: 'Body' });
    await app.inject({
      method: 'PATCH',
      url: `/api/v1/tickets/${id}`,
      headers: requester.auth,
      payload: { status: 'cancelled' },
    });
    for (const user of [requester, agent]) {
      const res = await comment(user, id, 'hello?');
      expect(res.statusCode).toBe(409);
      expect(res.json().code).toBe('TICKET_CLOSED');
    }
  });

  it('comment pages are oldest first and walk every comment once', async () => {
    const { id } = await createTicket(app, requester, { title: 'Comment me', description: 'Body' });
    for (let i = 0; i < 7; i++) await comment(agent, id, `c${i}`, i % 3 === 0 ? 'internal' : 'public');
    const walk = async (user: TestUser) => {
      const seen: string[] = [];
      let url: string | null = `/api/v1/tickets/${id}/comments?limit=2`;
      while (url) {
        const res = await get(user, url);
        expect(res.statusCode).toBe(200);
        const page = res.json();
        seen.push(...page.data.map((c: { body: string }) => c.body));
        url = page.nextCursor ? /<([^>]+)>/.exec(String(res.headers.link))![1]! : null;
      }
      return seen;
    };
    expect(await walk(agent)).toEqual(['c0', 'c1', 'c2', 'c3', 'c4', 'c5', 'c6']);
    expect(await walk(requester)).toEqual(['c1', 'c2', 'c4', 'c5']);
  });

  it('a comment cursor from another ticket is refused (422)', async () => {
    const a = await createTicket(app, requester, { title: 'Comment me', description: 'Body' });
    const b = await createTicket(app, requester, { title: 'Comment me', description: 'Body' });
    await comment(agent, a.id, 'one');
    await comment(agent, a.id, 'two');
    const page = (await get(agent, `/api/v1/tickets/${a.id}/comments?limit=1`)).json();
    const res = await get(agent, `/api/v1/tickets/${b.id}/comments?cursor=${page.nextCursor}`);
    expect(res.statusCode).toBe(422);
  });
});
