import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApp } from '../helpers/app.js';
import { createUser, type TestUser } from '../helpers/factory.js';
import { createTicket } from '../helpers/tickets.js';

let app: FastifyInstance;
let requester: TestUser;
let agent: TestUser;

beforeAll(async () => {
  app = await createTestApp();
  [requester, agent] = await Promise.all([
    createUser(app, { role: 'requester' }),
    createUser(app, { role: 'agent' }),
  ]);
});
afterAll(() => app.close());

describe('ETag / If-Match', () => {
  it('GET and PATCH answer the version as ETag; matching If-Match applies', async () => {
    const t = await createTicket(app, agent, {
      title: 'Concurrency',
      description: 'Race me',
      requesterId: requester.id,
    });
    const get = await app.inject({ method: 'GET', url: `/api/v1/tickets/${t.id}`, headers: agent.auth });
    expect(get.headers.etag).toBe('"1"');
    const res = await app.inject({
      method: 'PATCH',
      url: `/api/v1/tickets/${t.id}`,
      headers: { ...agent.auth, 'if-match': '"1"' },
      payload: { priority: 'high' },
    });
    expect(res.statusCode).toBe(200);
    expect(res.headers.etag).toBe('"2"');
    expect(res.json().version).toBe(2);
  });

  it('stale If-Match → 412 VERSION_MISMATCH and nothing changes (no audit event either)', async () => {
    const t = await createTicket(app, agent, {
      title: 'Concurrency',
      description: 'Race me',
      requesterId: requester.id,
    });
    await app.inject({
      method: 'PATCH',
      url: `/api/v1/tickets/${t.id}`,
      headers: agent.auth,
      payload: { priority: 'high' },
    });
    const stale = await app.inject({
      method: 'PATCH',
      url: `/api/v1/tickets/${t.id}`,
      headers: { ...agent.auth, 'if-match': '"1"', 'x-request-id': `stale-${t.id}` },
      payload: { title: 'lost update' },
    });
    expect(stale.statusCode).toBe(412);
    expect(stale.json().code).toBe('VERSION_MISMATCH');
    const now = (
      await app.inject({ method: 'GET', url: `/api/v1/tickets/${t.id}`, headers: agent.auth })
    ).json();
    expect(now).toMatchObject({ title: 'Concurrency', version: 2 });
    const { rowCount } = await app.db.$client.query('SELECT 1 FROM audit_events WHERE trace_id = $1', [
      `stale-${t.id}`,
    ]);
    expect(rowCount).toBe(0);
  });

  it('parallel PATCHes with the same If-Match: exactly one wins, the others get 412', async () => {
    const t = await createTicket(app, agent, {
      title: 'Concurrency',
      description: 'Race me',
      requesterId: requester.id,
    });
    const results = await Promise.all(
      ['low', 'high', 'urgent', 'normal', 'high'].map((priority, i) =>
        app.inject({
          method: 'PATCH',
          url: `/api/v1/tickets/${t.id}`,
          headers: { ...agent.auth, 'if-match': '"1"' },
          payload: { priority, title: `writer ${i}` },
        }),
      ),
    );
    const codes = results.map((r) => r.statusCode).sort();
    expect(codes).toEqual([200, 412, 412, 412, 412]);
  });
});

describe('parallel PATCHes never lose an update', () => {
  it('10 concurrent PATCHes setting different fields all land; version counts every one', async () => {
    const t = await createTicket(app, agent, {
      title: 'Concurrency',
      description: 'Race me',
      requesterId: requester.id,
    });
    // Each request writes its own values: every write must be applied in turn (one version and one audit
    // event each) and the final state is the last writer's.
    const tagsOf = (i: number) => [`t${i}`];
    const results = await Promise.all(
      Array.from({ length: 10 }, (_, i) =>
        app.inject({
          method: 'PATCH',
          url: `/api/v1/tickets/${t.id}`,
          headers: agent.auth,
          payload: { tags: tagsOf(i), title: `title ${i}` },
        }),
      ),
    );
    for (const r of results) expect(r.statusCode, r.body).toBe(200);
    // Serialized: each response saw a distinct version, 2..11.
    expect(results.map((r) => r.json().version).sort((a, b) => a - b)).toEqual(
      Array.from({ length: 10 }, (_, i) => i + 2),
    );
    const final = (
      await app.inject({ method: 'GET', url: `/api/v1/tickets/${t.id}`, headers: agent.auth })
    ).json();
    expect(final.version).toBe(11);
    // The last writer (highest version) is the final state.
    const last = results.map((r) => r.json()).sort((a, b) => b.version - a.version)[0];
    expect(final.title).toBe(last.title);
    expect(final.tags).toEqual(last.tags);
    const { rows } = await app.db.$client.query(
      `SELECT count(*)::int AS n FROM audit_events WHERE entity_type = 'ticket' AND entity_id = $1 AND action = 'ticket.updated'`,
      [String(t.id)],
    );
    expect(rows[0].n).toBe(10);
  });

  it('parallel PATCHes of different fields keep all of them (no read-modify-write loss)', async () => {
    const t = await createTicket(app, agent, {
      title: 'Concurrency',
      description: 'Race me',
      requesterId: requester.id,
    });
    const changes = [
      { priority: 'urgent' },
      { type: 'incident' },
      { tags: ['network'] },
      { title: 'New title' },
      { description: 'New description' },
      { assigneeId: agent.id },
    ];
    const results = await Promise.all(
      changes.map((payload) =>
        app.inject({ method: 'PATCH', url: `/api/v1/tickets/${t.id}`, headers: agent.auth, payload }),
      ),
    );
    for (const r of results) expect(r.statusCode, r.body).toBe(200);
    const final = (
      await app.inject({ method: 'GET', url: `/api/v1/tickets/${t.id}`, headers: agent.auth })
    ).json();
    expect(final).toMatchObject({
      priority: 'urgent',
      type: 'incident',
      tags: ['network'],
      title: 'New title',
      description: 'New description',
      assignee: { id: agent.id },
      status: 'open',
      version: 1 + changes.length,
    });
  });
});
