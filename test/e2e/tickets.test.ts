import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApp } from '../helpers/app.js';
import { createUser, type TestUser } from '../helpers/factory.js';
import { createTicket, patchTicket } from '../helpers/tickets.js';

let app: FastifyInstance;
let requester: TestUser;
let other: TestUser;
let agent: TestUser;
let agent2: TestUser;
let admin: TestUser;

beforeAll(async () => {
  app = await createTestApp();
  [requester, other, agent, agent2, admin] = await Promise.all([
    createUser(app, { role: 'requester', name: 'Rita Requester' }),
    createUser(app, { role: 'requester' }),
    createUser(app, { role: 'agent', name: 'Alan Agent' }),
    createUser(app, { role: 'agent' }),
    createUser(app, { role: 'admin' }),
  ]);
});
afterAll(() => app.close());

describe('create and read', () => {
  it('requester creates a ticket for self with defaults, Location, ETag and allowedTransitions', async () => {
    const res = await app.inject({
      method: 'POST',
      url: '/api/v1/tickets',
      headers: requester.auth,
      payload: {
        title: 'VPN down',
        description: 'Cannot connect since 9am',
        priority: 'high',
        type: 'incident',
      },
    });
    expect(res.statusCode).toBe(201);
    const t = res.json();
    expect(res.headers.location).toBe(`/api/v1/tickets/${t.id}`);
    expect(res.headers.etag).toBe('"1"');
    expect(t).toMatchObject({
      id: expect.any(Number),
      title: 'VPN down',
      status: 'new',
      priority: 'high',
      type: 'incident',
      tags: [],
      requester: { id: requester.id, name: 'Rita Requester', email: requester.email },
      assignee: null,
      teamId: null,
      version: 1,
      firstResponseAt: null,
      solvedAt: null,
      closedAt: null,
      allowedTransitions: ['cancelled'],
    });
    const get = await app.inject({ method: 'GET', url: `/api/v1/tickets/${t.id}`, headers: requester.auth });
    expect(get.statusCode).toBe(200);
    expect(get.headers.etag).toBe('"1"');
    expect(get.json().id).toBe(t.id);
  });

  it('agent creates on behalf of a requester, with tags and team refused for requesters', async () => {
    const t = await createTicket(app, agent, { requesterId: requester.id, tags: ['VPN', 'vpn', 'network'] });
    expect(t.requester.id).toBe(requester.id);
    expect(t.tags).toEqual(['vpn', 'network']);
    expect(t.allowedTransitions).toEqual(['open', 'pending', 'on_hold', 'cancelled']);

    const tags = await app.inject({
      method: 'POST',
      url: '/api/v1/tickets',
      headers: requester.auth,
      payload: { title: 'x', description: 'y', tags: ['a'] },
    });
    expect(tags.statusCode).toBe(403);
    expect(tags.json().code).toBe('FORBIDDEN');
    const onBehalf = await app.inject({
      method: 'POST',
      url: '/api/v1/tickets',
      headers: requester.auth,
      payload: { title: 'x', description: 'y', requesterId: other.id },
    });
    expect(onBehalf.statusCode).toBe(403);
  });

  it('admin opens a ticket on behalf of a requester, with team; unknown team → 422', async () => {
    const { rows } = await app.db.$client.query<{ id: string }>(
      'INSERT INTO teams (name) VALUES ($1) RETURNING id',
      [`Desk ${Math.random()}`],
    );
    const t = await createTicket(app, admin, {
      requesterId: requester.id,
      teamId: rows[0]!.id,
      priority: 'urgent',
    });
    expect(t).toMatchObject({ requester: { id: requester.id }, teamId: rows[0]!.id, priority: 'urgent' });
    // The requester sees it as their own.
    const own = await app.inject({ method: 'GET', url: `/api/v1/tickets/${t.id}`, headers: requester.auth });
    expect(own.statusCode).toBe(200);
    const bad = await app.inject({
      method: 'POST',
      url: '/api/v1/tickets',
      headers: admin.auth,
      payload: { title: 'x', description: 'y', teamId: '00000000-0000-4000-8000-000000000000' },
    });
    expect(bad.statusCode).toBe(422);
    expect(bad.json().errors[0].path).toBe('body.teamId');
  });

  it('agent cannot open a ticket for a non-requester or unknown user (422)', async () => {
    for (const requesterId of [agent2.id, '00000000-0000-4000-8000-000000000000']) {
      const res = await app.inject({
        method: 'POST',
        url: '/api/v1/tickets',
        headers: agent.auth,
        payload: { title: 'x', description: 'y', requesterId },
      });
      expect(res.statusCode).toBe(422);
      expect(res.json().errors[0].path).toBe('body.requesterId');
    }
  });

  it('rejects unknown fields and bad values with 422', async () => {
    const res = await app.inject({
      method: 'POST',
      url: '/api/v1/tickets',
      headers: requester.auth,
      payload: { title: 'x', description: 'y', status: 'solved' },
    });
    expect(res.statusCode).toBe(422);
    const long = await app.inject({
      method: 'POST',
      url: '/api/v1/tickets',
      headers: requester.auth,
      payload: { title: 'x'.repeat(201), description: 'y' },
    });
    expect(long.statusCode).toBe(422);
  });

  it('BOLA: another requester gets 404 on read, patch, comments, comment post and events', async () => {
    const t = await createTicket(app, requester);
    const probes = [
      app.inject({ method: 'GET', url: `/api/v1/tickets/${t.id}`, headers: other.auth }),
      patchTicket(app, other, t.id, { title: 'mine now' }),
      app.inject({ method: 'GET', url: `/api/v1/tickets/${t.id}/comments`, headers: other.auth }),
      app.inject({
        method: 'POST',
        url: `/api/v1/tickets/${t.id}/comments`,
        headers: other.auth,
        payload: { body: 'hi' },
      }),
    ];
    for (const res of await Promise.all(probes)) {
      expect(res.statusCode).toBe(404);
      expect(res.json().code).toBe('TICKET_NOT_FOUND');
    }
    const list = await app.inject({ method: 'GET', url: `/api/v1/tickets?limit=100`, headers: other.auth });
    expect(list.json().data.map((x: { id: number }) => x.id)).not.toContain(t.id);
    const spoof = await app.inject({
      method: 'GET',
      url: `/api/v1/tickets?requesterId=${requester.id}`,
      headers: other.auth,
    });
    expect(spoof.json().data).toEqual([]);
    // Requesters never see events at all (403, whatever the ticket).
    const events = await app.inject({
      method: 'GET',
      url: `/api/v1/tickets/${t.id}/events`,
      headers: other.auth,
    });
    expect(events.statusCode).toBe(403);
    // Unknown ticket: the same 404 as someone else's.
    const missing = await app.inject({
      method: 'GET',
      url: '/api/v1/tickets/2147483000',
      headers: other.auth,
    });
    expect(missing.statusCode).toBe(404);
  });
});

describe('field permissions on PATCH', () => {
  it('requester edits title/description of own new ticket, not after it opened', async () => {
    const t = await createTicket(app, requester);
    const ok = await patchTicket(app, requester, t.id, { title: 'Printer really on fire' });
    expect(ok.statusCode).toBe(200);
    expect(ok.json()).toMatchObject({ title: 'Printer really on fire', version: 2 });
    expect(ok.headers.etag).toBe('"2"');
    await patchTicket(app, agent, t.id, { assigneeId: agent.id }).then((r) =>
      expect(r.json().status).toBe('open'),
    );
    const late = await patchTicket(app, requester, t.id, { description: 'more' });
    expect(late.statusCode).toBe(403);
  });

  it.each([
    ['priority', 'urgent'],
    ['type', 'problem'],
    ['tags', ['x']],
    ['teamId', null],
    ['assigneeId', null],
  ])('requester setting %s → 403, nothing changed', async (field, value) => {
    const t = await createTicket(app, requester);
    const res = await patchTicket(app, requester, t.id, { [field]: value });
    expect(res.statusCode).toBe(403);
    const after = await app.inject({
      method: 'GET',
      url: `/api/v1/tickets/${t.id}`,
      headers: requester.auth,
    });
    expect(after.json().version).toBe(1);
  });

  it('agent may take a ticket or unassign self, not assign others', async () => {
    const t = await createTicket(app, requester);
    expect((await patchTicket(app, agent, t.id, { assigneeId: agent2.id })).statusCode).toBe(403);
    const take = await patchTicket(app, agent, t.id, { assigneeId: agent.id });
    expect(take.json()).toMatchObject({ assignee: { id: agent.id, name: 'Alan Agent' }, status: 'open' });
    expect((await patchTicket(app, agent2, t.id, { assigneeId: null })).statusCode).toBe(403);
    const drop = await patchTicket(app, agent, t.id, { assigneeId: null });
    expect(drop.statusCode).toBe(200);
    expect(drop.json().assignee).toBeNull();
  });

  it('admin assigns anyone staff; a requester as assignee → 422', async () => {
    const t = await createTicket(app, requester);
    expect((await patchTicket(app, admin, t.id, { assigneeId: other.id })).statusCode).toBe(422);
    const res = await patchTicket(app, admin, t.id, {
      assigneeId: agent2.id,
      priority: 'urgent',
      tags: ['Billing'],
    });
    expect(res.json()).toMatchObject({
      assignee: { id: agent2.id },
      status: 'open',
      priority: 'urgent',
      tags: ['billing'],
    });
  });

  it('empty PATCH → 422', async () => {
    const t = await createTicket(app, requester);
    expect((await patchTicket(app, agent, t.id, {})).statusCode).toBe(422);
  });
});
