import { createHash } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ApiTokenScope } from '../../src/db/schema/index.js';
import { createTestApp } from '../helpers/app.js';
import { createUser, type TestUser } from '../helpers/factory.js';
import { expectProblem } from '../helpers/http.js';

// A probe route that declares no scope (every real route declares one).
const probes: FastifyPluginAsyncZod = async (app) => {
  app.get('/api/v1/_probe/unscoped', async () => ({ ok: true }));
};

type Inject = Awaited<ReturnType<FastifyInstance['inject']>>;

describe('personal API tokens', () => {
  let app: FastifyInstance;
  let admin: TestUser;
  let agent: TestUser;
  let requester: TestUser;
  let ticketId: number;

  beforeAll(async () => {
    app = await createTestApp({ RATE_LIMIT_MAX: '100000' }, { plugins: [probes] });
    admin = await createUser(app, { role: 'admin' });
    agent = await createUser(app, { role: 'agent' });
    requester = await createUser(app, { role: 'requester' });
    const res = await app.inject({
      method: 'POST',
      url: '/api/v1/tickets',
      headers: admin.auth,
      payload: { title: 'Token target', description: 'for scope tests' },
    });
    expect(res.statusCode).toBe(201);
    ticketId = res.json().id;
  });
  afterAll(() => app.close());

  async function mint(
    owner: TestUser,
    scopes: ApiTokenScope[],
    extra: Record<string, unknown> = {},
  ): Promise<{ id: string; token: string; auth: { authorization: string } }> {
    const res = await app.inject({
      method: 'POST',
      url: '/api/v1/auth/tokens',
      headers: owner.auth,
      payload: { name: `test ${scopes.join(' ')}`, scopes, ...extra },
    });
    expect(res.statusCode).toBe(201);
    const body = res.json();
    return { id: body.id, token: body.token, auth: { authorization: `Bearer ${body.token}` } };
  }

  it('creates a token: hd_pat_ secret shown once, stored only as its SHA-256, audited without it', async () => {
    const res = await app.inject({
      method: 'POST',
      url: '/api/v1/auth/tokens',
      headers: { ...agent.auth, 'x-request-id': `pat-create-${agent.id}` },
      payload: { name: 'triage script', scopes: ['tickets:read', 'tickets:read'], expiresInDays: 7 },
    });
    expect(res.statusCode).toBe(201);
    const body = res.json();
    expect(body).toMatchObject({ name: 'triage script', scopes: ['tickets:read'], lastUsedAt: null });
    expect(body.token).toMatch(/^hd_pat_[A-Za-z0-9_-]{43}$/);
    const days = (Date.parse(body.expiresAt) - Date.parse(body.createdAt)) / 86_400_000;
    expect(days).toBeCloseTo(7, 2);

    const { rows } = await app.db.$client.query('SELECT * FROM api_tokens WHERE id = $1', [body.id]);
    expect(rows[0].token_hash).toBe(createHash('sha256').update(body.token).digest('hex'));
    expect(JSON.stringify(rows)).not.toContain(body.token.slice('hd_pat_'.length));

    const list = await app.inject({ method: 'GET', url: '/api/v1/auth/tokens', headers: agent.auth });
    expect(list.statusCode).toBe(200);
    const listed = list.json().data.find((t: { id: string }) => t.id === body.id);
    expect(listed).toMatchObject({ id: body.id, name: 'triage script', scopes: ['tickets:read'] });
    expect(listed.token).toBeUndefined();
    expect(list.body).not.toContain(body.token);

    const { rows: audit } = await app.db.$client.query(
      'SELECT action, actor_id, entity_type, entity_id, changes, metadata FROM audit_events WHERE trace_id = $1',
      [`pat-create-${agent.id}`],
    );
    expect(audit).toEqual([
      expect.objectContaining({
        action: 'api_token.created',
        actor_id: agent.id,
        entity_type: 'api_token',
        entity_id: body.id,
      }),
    ]);
    expect(JSON.stringify(audit)).not.toContain(body.token);
  });

  it('refuses bad bodies: no scopes, unknown scope, expiresInDays outside 1..365, unknown fields', async () => {
    for (const payload of [
      { name: 'x', scopes: [] },
      { name: 'x', scopes: ['tickets:delete'] },
      { name: 'x', scopes: ['tickets:read'], expiresInDays: 0 },
      { name: 'x', scopes: ['tickets:read'], expiresInDays: 366 },
      { name: 'x', scopes: ['tickets:read'], role: 'admin' },
      { name: '', scopes: ['tickets:read'] },
    ]) {
      const res = await app.inject({
        method: 'POST',
        url: '/api/v1/auth/tokens',
        headers: agent.auth,
        payload,
      });
      expectProblem(res, 422, 'VALIDATION_FAILED');
    }
  });

  // Every scope × a representative route of each scope: allowed only with the matching scope.
  const ROUTES: Record<ApiTokenScope, (auth: { authorization: string }) => Promise<Inject>> = {
    'tickets:read': (auth) => app.inject({ method: 'GET', url: '/api/v1/tickets', headers: auth }),
    'tickets:write': (auth) =>
      app.inject({
        method: 'POST',
        url: '/api/v1/tickets',
        headers: auth,
        payload: { title: 'By token', description: 'created with an API token' },
      }),
    'comments:write': (auth) =>
      app.inject({
        method: 'POST',
        url: `/api/v1/tickets/${ticketId}/comments`,
        headers: auth,
        payload: { body: 'a reply by token' },
      }),
    'drafts:write': (auth) =>
      app.inject({
        method: 'POST',
        url: `/api/v1/tickets/${ticketId}/drafts`,
        headers: auth,
        payload: { body: 'a proposed reply', changes: { priority: 'high' }, note: 'by token' },
      }),
    'users:read': (auth) => app.inject({ method: 'GET', url: '/api/v1/users', headers: auth }),
    admin: (auth) => app.inject({ method: 'GET', url: '/api/v1/audit-events', headers: auth }),
  };
  const SCOPES = Object.keys(ROUTES) as ApiTokenScope[];

  it.each(SCOPES)(
    'a token with only %s reaches its route and gets 403 INSUFFICIENT_SCOPE elsewhere',
    async (scope) => {
      const { auth } = await mint(admin, [scope]);
      for (const routeScope of SCOPES) {
        const res = await ROUTES[routeScope](auth);
        if (routeScope === scope) {
          expect(res.statusCode, `${scope} on its own route`).toBeLessThan(300);
        } else {
          expectProblem(res, 403, 'INSUFFICIENT_SCOPE');
        }
      }
    },
  );

  it('a route that declares no scope refuses every token (deny by default), audited as access.denied', async () => {
    const { auth, id } = await mint(admin, [...SCOPES]);
    const res = await app.inject({
      method: 'GET',
      url: '/api/v1/_probe/unscoped',
      headers: { ...auth, 'x-request-id': `pat-unscoped-${id}` },
    });
    expectProblem(res, 403, 'INSUFFICIENT_SCOPE');
    const { rows } = await app.db.$client.query(
      'SELECT action, actor_id, metadata FROM audit_events WHERE trace_id = $1',
      [`pat-unscoped-${id}`],
    );
    expect(rows).toEqual([expect.objectContaining({ action: 'access.denied', actor_id: admin.id })]);
    // Session tokens are not affected by scopes.
    expect(
      (await app.inject({ method: 'GET', url: '/api/v1/_probe/unscoped', headers: admin.auth })).statusCode,
    ).toBe(200);
  });

  it('a token never exceeds its owner: the owner’s role still applies', async () => {
    const { auth } = await mint(requester, ['users:read', 'tickets:read']);
    expectProblem(await ROUTES['users:read'](auth), 403, 'FORBIDDEN'); // requesters cannot list users
    const other = await app.inject({ method: 'GET', url: `/api/v1/tickets/${ticketId}`, headers: auth });
    expectProblem(other, 404, 'TICKET_NOT_FOUND'); // not their ticket
    // And the admin scope is for admins only.
    const res = await app.inject({
      method: 'POST',
      url: '/api/v1/auth/tokens',
      headers: agent.auth,
      payload: { name: 'x', scopes: ['admin'] },
    });
    expectProblem(res, 422, 'VALIDATION_FAILED');
  });

  it('a token cannot create, list or revoke tokens', async () => {
    const { auth, id } = await mint(admin, [...SCOPES]);
    const calls = [
      app.inject({
        method: 'POST',
        url: '/api/v1/auth/tokens',
        headers: auth,
        payload: { name: 'escalate', scopes: ['admin'] },
      }),
      app.inject({ method: 'GET', url: '/api/v1/auth/tokens', headers: auth }),
      app.inject({ method: 'DELETE', url: `/api/v1/auth/tokens/${id}`, headers: auth }),
    ];
    for (const res of await Promise.all(calls)) expectProblem(res, 403, 'INSUFFICIENT_SCOPE');
  });

  it('revocation bites on the very next request; audited; someone else’s token → 404', async () => {
    const { auth, id } = await mint(agent, ['tickets:read']);
    expect((await ROUTES['tickets:read'](auth)).statusCode).toBe(200);
    const notYours = await app.inject({
      method: 'DELETE',
      url: `/api/v1/auth/tokens/${id}`,
      headers: admin.auth,
    });
    expectProblem(notYours, 404, 'TOKEN_NOT_FOUND');
    const del = await app.inject({
      method: 'DELETE',
      url: `/api/v1/auth/tokens/${id}`,
      headers: { ...agent.auth, 'x-request-id': `pat-revoke-${id}` },
    });
    expect(del.statusCode).toBe(204);
    expectProblem(await ROUTES['tickets:read'](auth), 401, 'UNAUTHENTICATED');
    const again = await app.inject({
      method: 'DELETE',
      url: `/api/v1/auth/tokens/${id}`,
      headers: agent.auth,
    });
    expectProblem(again, 404, 'TOKEN_NOT_FOUND');
    const list = await app.inject({ method: 'GET', url: '/api/v1/auth/tokens', headers: agent.auth });
    expect(list.json().data.map((t: { id: string }) => t.id)).not.toContain(id);
    const { rows } = await app.db.$client.query(
      'SELECT action, entity_id FROM audit_events WHERE trace_id = $1',
      [`pat-revoke-${id}`],
    );
    expect(rows).toEqual([{ action: 'api_token.revoked', entity_id: id }]);
  });

  it('deactivating the owner stops the token at once', async () => {
    const owner = await createUser(app, { role: 'agent' });
    const { auth } = await mint(owner, ['tickets:read']);
    expect((await ROUTES['tickets:read'](auth)).statusCode).toBe(200);
    const res = await app.inject({
      method: 'PATCH',
      url: `/api/v1/users/${owner.id}`,
      headers: admin.auth,
      payload: { active: false },
    });
    expect(res.statusCode).toBe(200);
    expectProblem(await ROUTES['tickets:read'](auth), 401, 'UNAUTHENTICATED');
  });

  it('an expired token → 401 TOKEN_EXPIRED; an unknown hd_pat_ → 401', async () => {
    const { auth, id } = await mint(agent, ['tickets:read'], { expiresInDays: 1 });
    await app.db.$client.query(
      "UPDATE api_tokens SET expires_at = now() - interval '1 second' WHERE id = $1",
      [id],
    );
    expectProblem(await ROUTES['tickets:read'](auth), 401, 'TOKEN_EXPIRED');
    expectProblem(
      await ROUTES['tickets:read']({ authorization: 'Bearer hd_pat_not-a-real-token' }),
      401,
      'UNAUTHENTICATED',
    );
  });

  it('keeps the last-used time', async () => {
    const { auth, id } = await mint(agent, ['tickets:read']);
    expect((await ROUTES['tickets:read'](auth)).statusCode).toBe(200);
    // Recorded off the request path: wait (bounded) for the write to land.
    let lastUsedAt: string | null = null;
    for (let i = 0; i < 50 && !lastUsedAt; i++) {
      const list = await app.inject({ method: 'GET', url: '/api/v1/auth/tokens', headers: agent.auth });
      lastUsedAt = list.json().data.find((t: { id: string }) => t.id === id).lastUsedAt;
      if (!lastUsedAt) await new Promise((r) => setTimeout(r, 20));
    }
    expect(lastUsedAt).not.toBeNull();
    expect(Date.now() - Date.parse(lastUsedAt!)).toBeLessThan(60_000);
  });
});

describe('API token rate limits', () => {
  it('count per token: a spent token does not limit its owner or the owner’s other tokens', async () => {
    const app = await createTestApp({ RATE_LIMIT_MAX: '3' });
    try {
      const owner = await createUser(app, { role: 'agent' });
      const mint = async () => {
        const res = await app.inject({
          method: 'POST',
          url: '/api/v1/auth/tokens',
          headers: owner.auth,
          payload: { name: 'limited', scopes: ['tickets:read'] },
        });
        expect(res.statusCode).toBe(201);
        return { authorization: `Bearer ${res.json().token}` };
      };
      const one = await mint();
      const two = await mint();
      const list = (headers: { authorization: string }) =>
        app.inject({ method: 'GET', url: '/api/v1/tickets', headers });
      const statuses: number[] = [];
      for (let i = 0; i < 4; i++) statuses.push((await list(one)).statusCode);
      expect(statuses).toEqual([200, 200, 200, 429]);
      expect((await list(two)).statusCode).toBe(200);
      // The owner has spent 2 of 3 on minting; their own budget is separate from the tokens'.
      expect((await list(owner.auth)).statusCode).toBe(200);
    } finally {
      await app.close();
    }
  });
});
