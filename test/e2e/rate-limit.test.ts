import { randomBytes, randomUUID } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApp } from '../helpers/app.js';
import { createUser, type TestUser } from '../helpers/factory.js';

const probes: FastifyPluginAsyncZod = async (app) => {
  app.get('/api/v1/_probe/limited', async () => ({ ok: true }));
};

const MAX = 3;

describe('rate limits (in memory)', () => {
  let app: FastifyInstance;
  let alice: TestUser;
  let bob: TestUser;
  beforeAll(async () => {
    app = await createTestApp({ RATE_LIMIT_MAX: String(MAX) }, { plugins: [probes] });
    alice = await createUser(app);
    bob = await createUser(app);
  });
  afterAll(() => app.close());

  it('sends RateLimit-Limit/Remaining/Reset on every response of a limited route', async () => {
    const user = await createUser(app);
    const res = await app.inject({ method: 'GET', url: '/api/v1/_probe/limited', headers: user.auth });
    expect(res.statusCode).toBe(200);
    expect(res.headers['ratelimit-limit']).toBe(String(MAX));
    expect(res.headers['ratelimit-remaining']).toBe(String(MAX - 1));
    expect(Number(res.headers['ratelimit-reset'])).toBeGreaterThan(0);
    expect(Number(res.headers['ratelimit-reset'])).toBeLessThanOrEqual(60);
  });

  it('answers 429 problem+json RATE_LIMITED with Retry-After once the per-user budget is spent', async () => {
    const statuses: number[] = [];
    let last: Awaited<ReturnType<FastifyInstance['inject']>> | undefined;
    for (let i = 0; i < MAX + 1; i++) {
      last = await app.inject({ method: 'GET', url: '/api/v1/_probe/limited', headers: alice.auth });
      statuses.push(last.statusCode);
    }
    expect(statuses).toEqual([200, 200, 200, 429]);
    const res = last!;
    expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(res.json()).toMatchObject({ status: 429, code: 'RATE_LIMITED', type: '/problems/rate-limited' });
    expect(res.json().traceId).toBe(res.headers['x-request-id']);
    const retryAfter = Number(res.headers['retry-after']);
    expect(retryAfter).toBeGreaterThanOrEqual(1);
    expect(retryAfter).toBeLessThanOrEqual(60);
    expect(res.headers['ratelimit-limit']).toBe(String(MAX));
    expect(res.headers['ratelimit-remaining']).toBe('0');
  });

  it('keys the budget by user, not by IP: another user on the same address is not limited', async () => {
    for (let i = 0; i < MAX + 1; i++) {
      await app.inject({ method: 'GET', url: '/api/v1/_probe/limited', headers: alice.auth });
    }
    const res = await app.inject({ method: 'GET', url: '/api/v1/_probe/limited', headers: bob.auth });
    expect(res.statusCode).toBe(200);
  });

  it('never limits the health probes', async () => {
    const statuses = new Set<number>();
    for (let i = 0; i < MAX + 3; i++) {
      statuses.add((await app.inject({ method: 'GET', url: '/healthz' })).statusCode);
    }
    expect([...statuses]).toEqual([200]);
  });
});

describe('rate limits on the anonymous /auth routes', () => {
  const refresh = (app: FastifyInstance, headers: Record<string, string> = {}) =>
    app.inject({
      method: 'POST',
      url: '/api/v1/auth/refresh',
      headers,
      payload: { refreshToken: 'not-a-token' },
    });

  it('are tighter than the global budget and keyed by client IP', async () => {
    // RATE_LIMIT_MAX 30 → the anonymous auth routes allow a tenth: 3 per minute per IP.
    const app = await createTestApp({ RATE_LIMIT_MAX: '30' });
    try {
      const statuses: number[] = [];
      for (let i = 0; i < 4; i++) statuses.push((await refresh(app)).statusCode);
      expect(statuses.slice(0, 3).every((s) => s !== 429)).toBe(true);
      const limited = await refresh(app);
      expect(limited.statusCode).toBe(429);
      expect(limited.headers['ratelimit-limit']).toBe('3');
      expect(limited.json()).toMatchObject({ code: 'RATE_LIMITED' });
      // Another client address has its own budget.
      expect(
        (
          await app.inject({
            method: 'POST',
            url: '/api/v1/auth/refresh',
            remoteAddress: '10.0.0.9',
            payload: { refreshToken: 'x' },
          })
        ).statusCode,
      ).not.toBe(429);
    } finally {
      await app.close();
    }
  });

  it('login keeps its own per-IP limit (LOGIN_RATE_LIMIT_PER_IP), /auth/me the per-user budget', async () => {
    const app = await createTestApp({ RATE_LIMIT_MAX: '50', LOGIN_RATE_LIMIT_PER_IP: '7' });
    try {
      const login = await app.inject({
        method: 'POST',
        url: '/api/v1/auth/login',
        payload: { email: 'nobody@example.test', password: 'wrong password 123' },
      });
      expect(login.headers['ratelimit-limit']).toBe('7');
      const user = await createUser(app);
      const me = await app.inject({ method: 'GET', url: '/api/v1/auth/me', headers: user.auth });
      expect(me.statusCode).toBe(200);
      expect(me.headers['ratelimit-limit']).toBe('50');
    } finally {
      await app.close();
    }
  });

  it('with TRUST_PROXY the client IP comes from X-Forwarded-For; without it the header is ignored', async () => {
    const trusting = await createTestApp({ RATE_LIMIT_MAX: '10', TRUST_PROXY: 'true' });
    const direct = await createTestApp({ RATE_LIMIT_MAX: '10' });
    try {
      // Budget 1 per IP: the second request from the same client is limited.
      expect((await refresh(trusting, { 'x-forwarded-for': '203.0.113.1' })).statusCode).not.toBe(429);
      expect((await refresh(trusting, { 'x-forwarded-for': '203.0.113.1' })).statusCode).toBe(429);
      expect((await refresh(trusting, { 'x-forwarded-for': '203.0.113.2' })).statusCode).not.toBe(429);

      expect((await refresh(direct, { 'x-forwarded-for': '203.0.113.1' })).statusCode).not.toBe(429);
      expect((await refresh(direct, { 'x-forwarded-for': '203.0.113.2' })).statusCode).toBe(429);
    } finally {
      await trusting.close();
      await direct.close();
    }
  });
});

describe('rate limits shared through Redis', () => {
  const prefix = `helpdesk-test:${randomUUID()}:`;
  let a: FastifyInstance;
  let b: FastifyInstance;
  beforeAll(async () => {
    const env = {
      RATE_LIMIT_MAX: String(MAX),
      REDIS_URL: 'redis://127.0.0.1:6379',
      REDIS_KEY_PREFIX: prefix,
      JWT_SECRET: randomBytes(32).toString('hex'), // one secret: a token works on both instances
    };
    a = await createTestApp(env, { plugins: [probes] });
    b = await createTestApp(env, { plugins: [probes] });
  });
  afterAll(async () => {
    await a?.close();
    await b?.close();
  });

  it('two instances on one Redis share one budget per user', async () => {
    const user = await createUser(a);
    const statuses: number[] = [];
    for (let i = 0; i < MAX + 1; i++) {
      const app = i % 2 === 0 ? a : b;
      statuses.push(
        (await app.inject({ method: 'GET', url: '/api/v1/_probe/limited', headers: user.auth })).statusCode,
      );
    }
    expect(statuses).toEqual([200, 200, 200, 429]);
  });
});

describe('rate limits when Redis is unreachable', () => {
  let app: FastifyInstance;
  beforeAll(async () => {
    app = await createTestApp(
      { RATE_LIMIT_MAX: String(MAX), REDIS_URL: 'redis://127.0.0.1:1' },
      { plugins: [probes] },
    );
  });
  afterAll(() => app.close());

  it('lets requests through instead of failing the API', async () => {
    const user = await createUser(app);
    const res = await app.inject({ method: 'GET', url: '/api/v1/_probe/limited', headers: user.auth });
    expect(res.statusCode).toBe(200);
  });
});

describe('requests refused by authentication are limited per IP', () => {
  const tickets = (app: FastifyInstance, headers: Record<string, string>, remoteAddress = '127.0.0.1') =>
    app.inject({ method: 'GET', url: '/api/v1/tickets', headers, remoteAddress });

  it.each([
    ['no token', {}],
    ['a malformed token', { authorization: 'Bearer not-a-jwt' }],
    ['a bad API token', { authorization: `Bearer hd_pat_${randomBytes(32).toString('base64url')}` }],
  ])('%s: 401 until the per-IP budget is spent, then 429 with Retry-After', async (_name, headers) => {
    const app = await createTestApp({ RATE_LIMIT_MAX: String(MAX) });
    try {
      const statuses: number[] = [];
      let last: Awaited<ReturnType<FastifyInstance['inject']>> | undefined;
      for (let i = 0; i < MAX + 1; i++) {
        last = await tickets(app, headers as Record<string, string>);
        statuses.push(last.statusCode);
      }
      expect(statuses).toEqual([...Array(MAX).fill(401), 429]);
      expect(last!.json()).toMatchObject({ code: 'RATE_LIMITED' });
      expect(Number(last!.headers['retry-after'])).toBeGreaterThanOrEqual(1);
      // Another address has its own budget; a signed-in user on the limited address is not affected.
      expect((await tickets(app, headers as Record<string, string>, '10.0.0.7')).statusCode).toBe(401);
      const user = await createUser(app);
      expect((await tickets(app, user.auth)).statusCode).toBe(200);
    } finally {
      await app.close();
    }
  });
});
