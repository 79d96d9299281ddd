import { randomUUID } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApp } from '../helpers/app.js';
import { createUser, type TestUser } from '../helpers/factory.js';

let app: FastifyInstance;
let requester: TestUser;
let agent: TestUser;
let admin: TestUser;

beforeAll(async () => {
  app = await createTestApp();
  [requester, agent, admin] = await Promise.all([
    createUser(app, { role: 'requester' }),
    createUser(app, { role: 'agent' }),
    createUser(app, { role: 'admin' }),
  ]);
});
afterAll(() => app.close());

const trace = () => `t-${randomUUID()}`;

async function send(user: TestUser, method: string, url: string, payload?: Record<string, unknown>) {
  const traceId = trace();
  const res = await app.inject({
    method: method as 'GET',
    url,
    headers: { ...user.auth, 'x-request-id': traceId },
    ...(payload ? { payload } : {}),
  });
  return { res, traceId };
}

async function eventsOfTrace(traceId: string) {
  const res = await app.inject({
    method: 'GET',
    url: `/api/v1/audit-events?traceId=${traceId}`,
    headers: admin.auth,
  });
  expect(res.statusCode).toBe(200);
  return res.json().data as Array<Record<string, unknown>>;
}

describe('one audit event per change, with the trace id', () => {
  it('create, patch, assign, status change, comment, delete, restore', async () => {
    const created = await send(requester, 'POST', '/api/v1/tickets', { title: 'Audit me', description: 'd' });
    const id = created.res.json().id as number;
    expect(await eventsOfTrace(created.traceId)).toEqual([
      expect.objectContaining({
        action: 'ticket.created',
        entityType: 'ticket',
        entityId: String(id),
        traceId: created.traceId,
        actor: { id: requester.id, role: 'requester' },
        changes: expect.objectContaining({ title: [null, 'Audit me'], status: [null, 'new'] }),
      }),
    ]);

    const edit = await send(agent, 'PATCH', `/api/v1/tickets/${id}`, { priority: 'high' });
    expect(await eventsOfTrace(edit.traceId)).toEqual([
      expect.objectContaining({ action: 'ticket.updated', changes: { priority: ['normal', 'high'] } }),
    ]);

    const take = await send(agent, 'PATCH', `/api/v1/tickets/${id}`, { assigneeId: agent.id });
    // Assigning a new ticket opens it: one event, the most specific action, both changes.
    expect(await eventsOfTrace(take.traceId)).toEqual([
      expect.objectContaining({
        action: 'ticket.status_changed',
        changes: { assigneeId: [null, agent.id], status: ['new', 'open'] },
      }),
    ]);

    const both = await send(agent, 'PATCH', `/api/v1/tickets/${id}`, {
      status: 'pending',
      title: 'Audit me 2',
    });
    const bothEvents = await eventsOfTrace(both.traceId);
    expect(bothEvents).toHaveLength(1);
    expect(bothEvents[0]).toMatchObject({
      action: 'ticket.status_changed',
      changes: { status: ['open', 'pending'], title: ['Audit me', 'Audit me 2'] },
    });

    const reassign = await send(admin, 'PATCH', `/api/v1/tickets/${id}`, { assigneeId: admin.id });
    expect(await eventsOfTrace(reassign.traceId)).toEqual([
      expect.objectContaining({ action: 'ticket.assigned', changes: { assigneeId: [agent.id, admin.id] } }),
    ]);

    // A requester reply on a pending ticket: the comment and the ticket each get one event.
    const reply = await send(requester, 'POST', `/api/v1/tickets/${id}/comments`, { body: 'More info' });
    const replyEvents = await eventsOfTrace(reply.traceId);
    expect(replyEvents.map((e) => e.action).sort()).toEqual(['comment.created', 'ticket.status_changed']);

    // A PATCH that changes nothing bumps nothing and writes no event.
    const before = (
      await app.inject({ method: 'GET', url: `/api/v1/tickets/${id}`, headers: admin.auth })
    ).json();
    const noop = await send(admin, 'PATCH', `/api/v1/tickets/${id}`, { priority: 'high' });
    expect(noop.res.statusCode).toBe(200);
    expect(noop.res.json().version).toBe(before.version);
    expect(await eventsOfTrace(noop.traceId)).toEqual([]);

    const del = await send(admin, 'DELETE', `/api/v1/tickets/${id}`);
    expect(del.res.statusCode).toBe(204);
    expect(await eventsOfTrace(del.traceId)).toEqual([expect.objectContaining({ action: 'ticket.deleted' })]);
    const restore = await send(admin, 'POST', `/api/v1/tickets/${id}/restore`);
    expect(restore.res.statusCode).toBe(200);
    expect(await eventsOfTrace(restore.traceId)).toEqual([
      expect.objectContaining({ action: 'ticket.restored' }),
    ]);

    // The ticket timeline holds all of them, oldest first.
    const timeline = await app.inject({
      method: 'GET',
      url: `/api/v1/tickets/${id}/events`,
      headers: agent.auth,
    });
    expect(timeline.statusCode).toBe(200);
    expect(timeline.json().data.map((e: { action: string }) => e.action)).toEqual([
      'ticket.created',
      'ticket.updated',
      'ticket.status_changed',
      'ticket.status_changed',
      'ticket.assigned',
      'comment.created',
      'ticket.status_changed',
      'ticket.deleted',
      'ticket.restored',
    ]);
  });

  it('timeline pages with a cursor; events are for agents/admins only', async () => {
    const { res } = await send(requester, 'POST', '/api/v1/tickets', { title: 'Paged', description: 'd' });
    const id = res.json().id as number;
    for (const p of ['low', 'high', 'urgent'])
      await send(agent, 'PATCH', `/api/v1/tickets/${id}`, { priority: p });
    const seen: string[] = [];
    let url: string | null = `/api/v1/tickets/${id}/events?limit=1`;
    while (url) {
      const page: { json(): unknown; headers: Record<string, unknown> } = await app.inject({
        method: 'GET',
        url,
        headers: admin.auth,
      });
      const body = page.json() as { data: Array<{ id: string }>; nextCursor: string | null };
      seen.push(...body.data.map((e: { id: string }) => e.id));
      url = body.nextCursor ? /<([^>]+)>/.exec(String(page.headers.link))![1]! : null;
    }
    expect(new Set(seen).size).toBe(4);
    expect(seen).toHaveLength(4);

    const asRequester = await app.inject({
      method: 'GET',
      url: `/api/v1/tickets/${id}/events`,
      headers: requester.auth,
    });
    expect(asRequester.statusCode).toBe(403);
    const missing = await app.inject({
      method: 'GET',
      url: '/api/v1/tickets/2147483001/events',
      headers: agent.auth,
    });
    expect(missing.statusCode).toBe(404);
  });

  it('GET /audit-events is admin-only and filters by action, entity, actor and time', async () => {
    for (const user of [requester, agent]) {
      const res = await app.inject({ method: 'GET', url: '/api/v1/audit-events', headers: user.auth });
      expect(res.statusCode).toBe(403);
    }
    const { res } = await send(agent, 'POST', '/api/v1/tickets', {
      title: 'Filter me',
      description: 'd',
      requesterId: requester.id,
    });
    const id = String(res.json().id);
    const q = async (query: string) =>
      (await app.inject({ method: 'GET', url: `/api/v1/audit-events?${query}`, headers: admin.auth })).json()
        .data as Array<Record<string, unknown>>;
    const byEntity = await q(`entityType=ticket&entityId=${id}`);
    expect(byEntity.map((e) => e.action)).toEqual(['ticket.created']);
    const byActor = await q(`actorId=${agent.id}&action=ticket.created&limit=100`);
    expect(byActor.some((e) => e.entityId === id)).toBe(true);
    expect(byActor.every((e) => (e.actor as { id: string }).id === agent.id)).toBe(true);
    expect(await q(`entityId=${id}&to=2000-01-01T00:00:00Z`)).toEqual([]);
    expect((await q(`entityId=${id}&from=2000-01-01T00:00:00Z`)).length).toBe(1);
    // A refusal names the ticket only as its entity (no metadata.ticketId): it is found beside the
    // ticket's own rows, newest first.
    const denied = await app.inject({
      method: 'GET',
      url: `/api/v1/tickets/${id}/events`,
      headers: requester.auth,
    });
    expect(denied.statusCode).toBe(403);
    expect((await q(`entityType=ticket&entityId=${id}`)).map((e) => e.action)).toEqual([
      'access.denied',
      'ticket.created',
    ]);
    expect((await q(`entityType=ticket&entityId=${id}&action=access.denied`)).length).toBe(1);
    expect(await q(`entityType=user&entityId=${id}`)).toEqual([]);
    const bad = await app.inject({
      method: 'GET',
      url: '/api/v1/audit-events?cursor=nope',
      headers: admin.auth,
    });
    expect(bad.statusCode).toBe(422);
  });

  it('internal-note events never reach a requester (events are 403 for them; notes not in their comments)', async () => {
    const { res } = await send(requester, 'POST', '/api/v1/tickets', { title: 'Notes', description: 'd' });
    const id = res.json().id as number;
    await send(agent, 'POST', `/api/v1/tickets/${id}/comments`, {
      body: 'internal only',
      visibility: 'internal',
    });
    const timeline = await app.inject({
      method: 'GET',
      url: `/api/v1/tickets/${id}/events`,
      headers: agent.auth,
    });
    expect(timeline.json().data.map((e: { action: string }) => e.action)).toEqual([
      'ticket.created',
      'comment.created',
    ]);
    for (const url of [`/api/v1/tickets/${id}/events`, '/api/v1/audit-events']) {
      expect((await app.inject({ method: 'GET', url, headers: requester.auth })).statusCode).toBe(403);
    }
    const comments = await app.inject({
      method: 'GET',
      url: `/api/v1/tickets/${id}/comments`,
      headers: requester.auth,
    });
    expect(comments.json().data).toEqual([]);
  });
});

describe('a failed audit write rolls the change back', () => {
  it('create, patch and comment leave nothing behind when the audit insert fails', async () => {
    // PostgreSQL refuses the audit rows of one trace id: the audit INSERT itself fails, wherever it is sent.
    const failing = trace();
    const fn = `fail_audit_${randomUUID().replaceAll('-', '')}`;
    await app.db.$client.query(
      `CREATE FUNCTION ${fn}() RETURNS trigger LANGUAGE plpgsql AS $$
       BEGIN
         IF NEW.trace_id = '${failing}' THEN RAISE EXCEPTION 'audit store unavailable'; END IF;
         RETURN NEW;
       END $$`,
    );
    await app.db.$client.query(
      `CREATE TRIGGER ${fn} BEFORE INSERT ON audit_events FOR EACH ROW EXECUTE FUNCTION ${fn}()`,
    );
    const as = (user: TestUser, extra: Record<string, string> = {}) => ({
      ...user.auth,
      'x-request-id': failing,
      ...extra,
    });
    const count = async (text: string, values: unknown[]) =>
      (await app.db.$client.query(text, values)).rowCount;
    try {
      const title = `rollback ${randomUUID()}`;
      const create = await app.inject({
        method: 'POST',
        url: '/api/v1/tickets',
        headers: as(agent, { 'idempotency-key': title }),
        payload: { title, description: 'd', requesterId: requester.id },
      });
      expect(create.statusCode).toBe(500);
      expect(await count('SELECT 1 FROM tickets WHERE title = $1', [title])).toBe(0);
      // The idempotency claim was released too: nothing stored for the key.
      expect(
        await count('SELECT 1 FROM idempotency_keys WHERE user_id = $1 AND key = $2', [agent.id, title]),
      ).toBe(0);

      const { res } = await send(requester, 'POST', '/api/v1/tickets', {
        title: 'Keep me',
        description: 'd',
      });
      const id = res.json().id as number;
      const patch = await app.inject({
        method: 'PATCH',
        url: `/api/v1/tickets/${id}`,
        headers: as(agent),
        payload: { title: 'Changed' },
      });
      expect(patch.statusCode).toBe(500);
      const comment = await app.inject({
        method: 'POST',
        url: `/api/v1/tickets/${id}/comments`,
        headers: as(agent),
        payload: { body: 'Not kept', visibility: 'public' },
      });
      expect(comment.statusCode).toBe(500);

      const after = await app.inject({ method: 'GET', url: `/api/v1/tickets/${id}`, headers: agent.auth });
      expect(after.json()).toMatchObject({ title: 'Keep me', version: 1 });
      expect(await count('SELECT 1 FROM comments WHERE ticket_id = $1', [id])).toBe(0);
      // Nor did any change event of those writes reach the feed.
      expect(await count('SELECT 1 FROM change_events WHERE trace_id = $1', [failing])).toBe(0);
    } finally {
      await app.db.$client.query(`DROP TRIGGER ${fn} ON audit_events`);
      await app.db.$client.query(`DROP FUNCTION ${fn}()`);
    }
  });
});

describe('soft delete and restore', () => {
  it('admin deletes: the ticket disappears for everyone else; admin can read and restore it', async () => {
    const { res } = await send(requester, 'POST', '/api/v1/tickets', {
      title: 'Delete me',
      description: 'd',
    });
    const id = res.json().id as number;
    for (const user of [requester, agent]) {
      const denied = await app.inject({ method: 'DELETE', url: `/api/v1/tickets/${id}`, headers: user.auth });
      expect(denied.statusCode).toBe(403);
    }
    expect(
      (await app.inject({ method: 'DELETE', url: `/api/v1/tickets/${id}`, headers: admin.auth })).statusCode,
    ).toBe(204);

    for (const user of [requester, agent]) {
      expect(
        (await app.inject({ method: 'GET', url: `/api/v1/tickets/${id}`, headers: user.auth })).statusCode,
      ).toBe(404);
      const list = await app.inject({ method: 'GET', url: '/api/v1/tickets?q=Delete', headers: user.auth });
      expect(list.json().data.map((t: { id: number }) => t.id)).not.toContain(id);
      const c = await app.inject({
        method: 'POST',
        url: `/api/v1/tickets/${id}/comments`,
        headers: user.auth,
        payload: { body: 'x' },
      });
      expect(c.statusCode).toBe(404);
    }
    const adminView = await app.inject({ method: 'GET', url: `/api/v1/tickets/${id}`, headers: admin.auth });
    expect(adminView.statusCode).toBe(200);
    expect(adminView.json().deletedAt).not.toBeNull();
    expect(adminView.json().allowedTransitions).toEqual([]);
    const adminList = await app.inject({
      method: 'GET',
      url: '/api/v1/tickets?limit=100&q=Delete',
      headers: admin.auth,
    });
    expect(adminList.json().data.map((t: { id: number }) => t.id)).not.toContain(id);
    const patch = await app.inject({
      method: 'PATCH',
      url: `/api/v1/tickets/${id}`,
      headers: admin.auth,
      payload: { title: 'x' },
    });
    expect(patch.statusCode).toBe(409);
    expect(
      (await app.inject({ method: 'DELETE', url: `/api/v1/tickets/${id}`, headers: admin.auth })).statusCode,
    ).toBe(409);

    expect(
      (await app.inject({ method: 'POST', url: `/api/v1/tickets/${id}/restore`, headers: agent.auth }))
        .statusCode,
    ).toBe(403);
    const restored = await app.inject({
      method: 'POST',
      url: `/api/v1/tickets/${id}/restore`,
      headers: admin.auth,
    });
    expect(restored.statusCode).toBe(200);
    expect(restored.json()).toMatchObject({ deletedAt: null, title: 'Delete me' });
    expect(
      (await app.inject({ method: 'GET', url: `/api/v1/tickets/${id}`, headers: requester.auth })).statusCode,
    ).toBe(200);
    const again = await app.inject({
      method: 'POST',
      url: `/api/v1/tickets/${id}/restore`,
      headers: admin.auth,
    });
    expect(again.statusCode).toBe(409);
  });
});
