import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApp } from '../helpers/app.js';
import { createUser } from '../helpers/factory.js';

const me = (app: FastifyInstance, authorization: string) =>
  app.inject({ method: 'GET', url: '/api/v1/auth/me', headers: { authorization } });

describe('deactivation and demotion take effect within 5 seconds', () => {
  // Two instances of the API on one database and one secret, like two replicas behind a load balancer.
  const secret = 'x'.repeat(16) + Math.random().toString(36).repeat(4);
  let a: FastifyInstance;
  let b: FastifyInstance;
  beforeAll(async () => {
    a = await createTestApp({ JWT_SECRET: secret, RATE_LIMIT_MAX: '100000' });
    b = await createTestApp({ JWT_SECRET: secret, RATE_LIMIT_MAX: '100000' });
  });
  afterAll(async () => {
    await a.close();
    await b.close();
  });

  it('a deactivated user is refused at once on this instance: access token, refresh and login', async () => {
    const admin = await createUser(a, { role: 'admin' });
    const u = await createUser(a, { role: 'agent' });
    const pair = (
      await a.inject({
        method: 'POST',
        url: '/api/v1/auth/login',
        payload: { email: u.email, password: u.password },
      })
    ).json();
    const bearer = `Bearer ${pair.accessToken}`;
    expect((await me(a, bearer)).statusCode).toBe(200); // now cached as active

    const res = await a.inject({
      method: 'PATCH',
      url: `/api/v1/users/${u.id}`,
      headers: admin.auth,
      payload: { active: false },
    });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toMatchObject({ id: u.id, active: false });

    expect((await me(a, bearer)).statusCode).toBe(401);
    expect((await me(a, u.auth.authorization)).statusCode).toBe(401);
    const refresh = await a.inject({
      method: 'POST',
      url: '/api/v1/auth/refresh',
      payload: { refreshToken: pair.refreshToken },
    });
    expect(refresh.statusCode).toBe(401);
    const login = await a.inject({
      method: 'POST',
      url: '/api/v1/auth/login',
      payload: { email: u.email, password: u.password },
    });
    expect(login.statusCode).toBe(401);
    expect(login.json().code).toBe('INVALID_CREDENTIALS');
    const { rows } = await a.db.$client.query(
      'SELECT count(*)::int AS n FROM refresh_tokens WHERE user_id = $1 AND revoked_at IS NULL',
      [u.id],
    );
    expect(rows[0].n).toBe(0);
  });

  it('another instance that had the user cached refuses the access token within 5 s', async () => {
    const admin = await createUser(a, { role: 'admin' });
    const u = await createUser(a, { role: 'requester' });
    expect((await me(b, u.auth.authorization)).statusCode).toBe(200); // cached on b
    const deactivatedAt = Date.now();
    expect(
      (
        await a.inject({
          method: 'PATCH',
          url: `/api/v1/users/${u.id}`,
          headers: admin.auth,
          payload: { active: false },
        })
      ).statusCode,
    ).toBe(200);
    // Poll b until it refuses; the contract's bound is 5 s.
    let status = 200;
    while (status === 200 && Date.now() - deactivatedAt < 6000) {
      status = (await me(b, u.auth.authorization)).statusCode;
      if (status === 200) await new Promise((r) => setTimeout(r, 100));
    }
    expect(status).toBe(401);
    expect(Date.now() - deactivatedAt).toBeLessThan(5000);
  });

  it('a demoted agent loses agent rights at once (and within 5 s on other instances)', async () => {
    const admin = await createUser(a, { role: 'admin' });
    const agent = await createUser(a, { role: 'agent' });
    expect((await b.inject({ method: 'GET', url: '/api/v1/teams', headers: agent.auth })).statusCode).toBe(
      200,
    );
    const demotedAt = Date.now();
    const res = await a.inject({
      method: 'PATCH',
      url: `/api/v1/users/${agent.id}`,
      headers: admin.auth,
      payload: { role: 'requester' },
    });
    expect(res.json()).toMatchObject({ role: 'requester' });
    expect((await a.inject({ method: 'GET', url: '/api/v1/teams', headers: agent.auth })).statusCode).toBe(
      403,
    );
    let status = 200;
    while (status === 200 && Date.now() - demotedAt < 6000) {
      status = (await b.inject({ method: 'GET', url: '/api/v1/teams', headers: agent.auth })).statusCode;
      if (status === 200) await new Promise((r) => setTimeout(r, 100));
    }
    expect(status).toBe(403);
    expect(Date.now() - demotedAt).toBeLessThan(5000);
  });

  it('a reactivated user can sign in again', async () => {
    const admin = await createUser(a, { role: 'admin' });
    const u = await createUser(a, { active: false });
    const res = await a.inject({
      method: 'PATCH',
      url: `/api/v1/users/${u.id}`,
      headers: admin.auth,
      payload: { active: true },
    });
    expect(res.json()).toMatchObject({ active: true });
    const login = await a.inject({
      method: 'POST',
      url: '/api/v1/auth/login',
      payload: { email: u.email, password: u.password },
    });
    expect(login.statusCode).toBe(200);
  });
});
