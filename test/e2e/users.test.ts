import { randomUUID } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApp } from '../helpers/app.js';
import { createUser, type TestUser } from '../helpers/factory.js';
import { expectProblem } from '../helpers/http.js';

const STRONG = 'purple elephants dance quietly';

describe('users: the contract matrix ("manage users, roles" = admin; agents list agents)', () => {
  let app: FastifyInstance;
  let admin: TestUser;
  let agent: TestUser;
  let requester: TestUser;
  // A marker in names so list assertions only look at this file's rows (the database is shared).
  const tag = `utest${randomUUID().slice(0, 8)}`;

  beforeAll(async () => {
    app = await createTestApp({ RATE_LIMIT_MAX: '100000' });
    admin = await createUser(app, { role: 'admin', name: `${tag} Admin` });
    agent = await createUser(app, { role: 'agent', name: `${tag} Agent` });
    requester = await createUser(app, { role: 'requester', name: `${tag} Requester` });
    await createUser(app, { role: 'requester', name: `${tag} Inactive`, active: false });
  });
  afterAll(() => app.close());

  const list = (user: TestUser, query = '') =>
    app.inject({ method: 'GET', url: `/api/v1/users?q=${tag}${query}`, headers: user.auth });

  async function deniedAudited(user: TestUser, traceId: string, operation: string) {
    const { rows } = await app.db.$client.query(
      "SELECT actor_id, actor_role, metadata FROM audit_events WHERE action = 'access.denied' AND trace_id = $1",
      [traceId],
    );
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ actor_id: user.id, actor_role: user.role, metadata: { operation } });
  }

  describe('GET /users', () => {
    it('admin lists everyone, newest first, without password hashes', async () => {
      const res = await list(admin);
      expect(res.statusCode).toBe(200);
      const body = res.json();
      expect(body.nextCursor).toBeNull();
      expect(body.data.map((u: { name: string }) => u.name)).toEqual([
        `${tag} Inactive`,
        `${tag} Requester`,
        `${tag} Agent`,
        `${tag} Admin`,
      ]);
      expect(JSON.stringify(body)).not.toMatch(/passwordHash|argon2/);
    });

    it('admin filters by role and active', async () => {
      const requesters = (await list(admin, '&role=requester')).json().data;
      expect(requesters.map((u: { role: string }) => u.role)).toEqual(['requester', 'requester']);
      const inactive = (await list(admin, '&active=false')).json().data;
      expect(inactive.map((u: { name: string }) => u.name)).toEqual([`${tag} Inactive`]);
    });

    it('q matches email or name case-insensitively, and LIKE wildcards are literal', async () => {
      const byEmail = await app.inject({
        method: 'GET',
        url: `/api/v1/users?q=${encodeURIComponent(agent.email.toUpperCase())}`,
        headers: admin.auth,
      });
      expect(byEmail.json().data.map((u: { id: string }) => u.id)).toEqual([agent.id]);
      const wildcard = await app.inject({
        method: 'GET',
        url: `/api/v1/users?q=${tag}%25`,
        headers: admin.auth,
      });
      expect(wildcard.json().data).toEqual([]);
    });

    it('keyset pagination walks every row exactly once', async () => {
      const seen: string[] = [];
      let cursor: string | null = null;
      do {
        const res = await list(admin, `&limit=1${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`);
        expect(res.statusCode).toBe(200);
        const body = res.json();
        seen.push(...body.data.map((u: { name: string }) => u.name));
        cursor = body.nextCursor;
      } while (cursor);
      expect(seen).toEqual([`${tag} Inactive`, `${tag} Requester`, `${tag} Agent`, `${tag} Admin`]);
    });

    it('a forged cursor is refused with 422', async () => {
      const res = await list(admin, '&cursor=eyJ0IjoiMjAyNiJ9.AAAAAAAAAAAAAAAAAAAAAA');
      expectProblem(res, 422, 'VALIDATION_FAILED');
    });

    it('agent lists agents and admins only, even when asking for requesters', async () => {
      const res = await list(agent);
      expect(res.statusCode).toBe(200);
      expect(res.json().data.map((u: { role: string }) => u.role)).toEqual(['agent', 'admin']);
      expect((await list(agent, '&role=requester')).json().data).toEqual([]);
    });

    it('requester → 403 FORBIDDEN, audited as access.denied', async () => {
      const traceId = `deny-list-${randomUUID()}`;
      const res = await app.inject({
        method: 'GET',
        url: '/api/v1/users',
        headers: { ...requester.auth, 'x-request-id': traceId },
      });
      expectProblem(res, 403, 'FORBIDDEN');
      await deniedAudited(requester, traceId, 'user.list');
    });
  });

  describe('POST /users', () => {
    it('admin creates a user of any role: 201, Location, audited user.created', async () => {
      const email = `made-${randomUUID().slice(0, 8)}@example.test`;
      const res = await app.inject({
        method: 'POST',
        url: '/api/v1/users',
        headers: admin.auth,
        payload: { email, name: 'New Agent', role: 'agent', password: STRONG },
      });
      expect(res.statusCode).toBe(201);
      const user = res.json();
      expect(user).toEqual({
        id: expect.any(String),
        email,
        name: 'New Agent',
        role: 'agent',
        active: true,
        createdAt: expect.any(String),
      });
      expect(res.headers.location).toBe(`/api/v1/users/${user.id}`);
      const { rows } = await app.db.$client.query(
        "SELECT actor_id, changes, metadata FROM audit_events WHERE action = 'user.created' AND entity_id = $1",
        [user.id],
      );
      expect(rows).toEqual([
        {
          actor_id: admin.id,
          changes: { email: [null, email], name: [null, 'New Agent'], role: [null, 'agent'] },
          metadata: { source: 'admin' },
        },
      ]);
      const login = await app.inject({
        method: 'POST',
        url: '/api/v1/auth/login',
        payload: { email, password: STRONG },
      });
      expect(login.statusCode).toBe(200);
    });

    it('duplicate email in another case → 409 EMAIL_TAKEN; weak password → 422 WEAK_PASSWORD; unknown field → 422', async () => {
      const base = { name: 'X', role: 'agent', password: STRONG };
      expectProblem(
        await app.inject({
          method: 'POST',
          url: '/api/v1/users',
          headers: admin.auth,
          payload: { ...base, email: agent.email.toUpperCase() },
        }),
        409,
        'EMAIL_TAKEN',
      );
      expectProblem(
        await app.inject({
          method: 'POST',
          url: '/api/v1/users',
          headers: admin.auth,
          payload: { ...base, email: `w-${randomUUID()}@example.test`, password: 'iloveyou2024' },
        }),
        422,
        'WEAK_PASSWORD',
      );
      expectProblem(
        await app.inject({
          method: 'POST',
          url: '/api/v1/users',
          headers: admin.auth,
          payload: { ...base, email: `f-${randomUUID()}@example.test`, active: false },
        }),
        422,
        'VALIDATION_FAILED',
      );
    });

    it.each(['agent', 'requester'] as const)('%s → 403 FORBIDDEN and nothing is created', async (role) => {
      const user = role === 'agent' ? agent : requester;
      const email = `nope-${randomUUID().slice(0, 8)}@example.test`;
      const res = await app.inject({
        method: 'POST',
        url: '/api/v1/users',
        headers: user.auth,
        payload: { email, name: 'Sneaky', role: 'admin', password: STRONG },
      });
      expectProblem(res, 403, 'FORBIDDEN');
      const { rows } = await app.db.$client.query('SELECT 1 FROM users WHERE email = $1', [email]);
      expect(rows).toHaveLength(0);
    });
  });

  describe('GET /users/{id}', () => {
    it('admin reads any user; unknown id → 404 USER_NOT_FOUND', async () => {
      const res = await app.inject({
        method: 'GET',
        url: `/api/v1/users/${requester.id}`,
        headers: admin.auth,
      });
      expect(res.statusCode).toBe(200);
      expect(res.json()).toMatchObject({ id: requester.id, role: 'requester' });
      expectProblem(
        await app.inject({ method: 'GET', url: `/api/v1/users/${randomUUID()}`, headers: admin.auth }),
        404,
        'USER_NOT_FOUND',
      );
    });

    it.each(['agent', 'requester'] as const)('%s → 403 FORBIDDEN, even for themself', async (role) => {
      const user = role === 'agent' ? agent : requester;
      for (const id of [admin.id, user.id]) {
        expectProblem(
          await app.inject({ method: 'GET', url: `/api/v1/users/${id}`, headers: user.auth }),
          403,
          'FORBIDDEN',
        );
      }
    });
  });

  describe('PATCH /users/{id}', () => {
    it('admin changes a role: audited as user.role_changed with old and new values', async () => {
      const u = await createUser(app, { role: 'requester' });
      const res = await app.inject({
        method: 'PATCH',
        url: `/api/v1/users/${u.id}`,
        headers: admin.auth,
        payload: { role: 'agent', name: 'Promoted' },
      });
      expect(res.statusCode).toBe(200);
      expect(res.json()).toMatchObject({ id: u.id, role: 'agent', name: 'Promoted' });
      const { rows } = await app.db.$client.query(
        "SELECT action, actor_id, changes FROM audit_events WHERE entity_type = 'user' AND entity_id = $1 AND action LIKE 'user.%'",
        [u.id],
      );
      expect(rows).toEqual([
        {
          action: 'user.role_changed',
          actor_id: admin.id,
          changes: { role: ['requester', 'agent'], name: [u.name, 'Promoted'] },
        },
      ]);
    });

    it('admin renames: user.updated; deactivates: user.deactivated (no hard delete: the row stays)', async () => {
      const u = await createUser(app);
      await app.inject({
        method: 'PATCH',
        url: `/api/v1/users/${u.id}`,
        headers: admin.auth,
        payload: { name: 'Renamed' },
      });
      const res = await app.inject({
        method: 'PATCH',
        url: `/api/v1/users/${u.id}`,
        headers: admin.auth,
        payload: { active: false },
      });
      expect(res.json()).toMatchObject({ active: false });
      const { rows } = await app.db.$client.query(
        "SELECT action, changes FROM audit_events WHERE entity_id = $1 AND action LIKE 'user.%' ORDER BY seq",
        [u.id],
      );
      expect(rows).toEqual([
        { action: 'user.updated', changes: { name: [u.name, 'Renamed'] } },
        { action: 'user.deactivated', changes: { active: [true, false] } },
      ]);
      const get = await app.inject({ method: 'GET', url: `/api/v1/users/${u.id}`, headers: admin.auth });
      expect(get.json()).toMatchObject({ id: u.id, active: false });
    });

    it('an unchanged patch changes nothing and writes no audit event', async () => {
      const u = await createUser(app);
      const res = await app.inject({
        method: 'PATCH',
        url: `/api/v1/users/${u.id}`,
        headers: admin.auth,
        payload: { role: 'requester' },
      });
      expect(res.statusCode).toBe(200);
      const { rows } = await app.db.$client.query(
        "SELECT 1 FROM audit_events WHERE entity_id = $1 AND action LIKE 'user.%'",
        [u.id],
      );
      expect(rows).toHaveLength(0);
    });

    it('refuses fields that are not name/role/active (email, password) with 422', async () => {
      const u = await createUser(app);
      for (const payload of [{ email: 'x@example.test' }, { password: STRONG }, {}]) {
        expectProblem(
          await app.inject({ method: 'PATCH', url: `/api/v1/users/${u.id}`, headers: admin.auth, payload }),
          422,
          'VALIDATION_FAILED',
        );
      }
    });

    it('unknown id → 404 USER_NOT_FOUND', async () => {
      expectProblem(
        await app.inject({
          method: 'PATCH',
          url: `/api/v1/users/${randomUUID()}`,
          headers: admin.auth,
          payload: { name: 'x' },
        }),
        404,
        'USER_NOT_FOUND',
      );
    });

    it.each(['agent', 'requester'] as const)(
      '%s cannot change anyone, including their own role → 403, audited',
      async (role) => {
        const user = role === 'agent' ? agent : requester;
        const traceId = `deny-patch-${randomUUID()}`;
        const res = await app.inject({
          method: 'PATCH',
          url: `/api/v1/users/${user.id}`,
          headers: { ...user.auth, 'x-request-id': traceId },
          payload: { role: 'admin' },
        });
        expectProblem(res, 403, 'FORBIDDEN');
        await deniedAudited(user, traceId, 'user.manage');
        const me = await app.inject({ method: 'GET', url: '/api/v1/auth/me', headers: user.auth });
        expect(me.json().role).toBe(role);
      },
    );
  });

  it('every users endpoint needs a token (401)', async () => {
    for (const [method, url] of [
      ['GET', '/api/v1/users'],
      ['POST', '/api/v1/users'],
      ['GET', `/api/v1/users/${admin.id}`],
      ['PATCH', `/api/v1/users/${admin.id}`],
      ['GET', '/api/v1/auth/me'],
      ['PATCH', '/api/v1/auth/me'],
      ['POST', '/api/v1/auth/logout'],
    ] as const) {
      expectProblem(
        await app.inject({ method, url, payload: method === 'GET' ? undefined : {} }),
        401,
        'UNAUTHENTICATED',
      );
    }
  });
});
