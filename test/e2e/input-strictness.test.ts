import type { FastifyInstance, InjectOptions } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApp } from '../helpers/app.js';
import { createUser, type TestUser } from '../helpers/factory.js';
import { expectProblem } from '../helpers/http.js';

let app: FastifyInstance;
let requester: TestUser;
let agent: TestUser;
let admin: TestUser;
let ticketId: number;

const NUL = '\u0000';

beforeAll(async () => {
  app = await createTestApp();
  [requester, agent, admin] = await Promise.all([
    createUser(app, { role: 'requester' }),
    createUser(app, { role: 'agent' }),
    createUser(app, { role: 'admin' }),
  ]);
  const res = await app.inject({
    method: 'POST',
    url: '/api/v1/tickets',
    headers: requester.auth,
    payload: { title: 'Strict input', description: 'Arranged for the input tests.' },
  });
  expect(res.statusCode, res.body).toBe(201);
  ticketId = res.json().id;
});
afterAll(() => app.close());

describe('a NUL character is refused with 422 at validation, on every text input', () => {
  const q = encodeURIComponent(`a${NUL}b`);
  const cases: Array<[string, () => InjectOptions]> = [
    [
      'login.email (no login needed)',
      () => ({
        method: 'POST',
        url: '/api/v1/auth/login',
        payload: { email: `x${NUL}@example.com`, password: 'whatever it is' },
      }),
    ],
    [
      'login.password',
      () => ({
        method: 'POST',
        url: '/api/v1/auth/login',
        payload: { email: 'x@example.com', password: `pass${NUL}word` },
      }),
    ],
    [
      'register.name (no login needed)',
      () => ({
        method: 'POST',
        url: '/api/v1/auth/register',
        payload: { email: 'nul@example.com', password: 'a long enough passphrase', name: `Ri${NUL}ta` },
      }),
    ],
    [
      'refresh token',
      () => ({ method: 'POST', url: '/api/v1/auth/refresh', payload: { refreshToken: `rt_${NUL}` } }),
    ],
    [
      'ticket title',
      () => ({
        method: 'POST',
        url: '/api/v1/tickets',
        headers: requester.auth,
        payload: { title: `T${NUL}`, description: 'd' },
      }),
    ],
    [
      'ticket description in a PATCH',
      () => ({
        method: 'PATCH',
        url: `/api/v1/tickets/${ticketId}`,
        headers: agent.auth,
        payload: { description: `d${NUL}` },
      }),
    ],
    [
      'ticket tags',
      () => ({
        method: 'PATCH',
        url: `/api/v1/tickets/${ticketId}`,
        headers: agent.auth,
        payload: { tags: [`t${NUL}`] },
      }),
    ],
    [
      'comment body',
      () => ({
        method: 'POST',
        url: `/api/v1/tickets/${ticketId}/comments`,
        headers: requester.auth,
        payload: { body: `hello${NUL}` },
      }),
    ],
    ['ticket search q', () => ({ method: 'GET', url: `/api/v1/tickets?q=${q}`, headers: agent.auth })],
    ['ticket tag filter', () => ({ method: 'GET', url: `/api/v1/tickets?tag=${q}`, headers: agent.auth })],
    ['list cursor', () => ({ method: 'GET', url: `/api/v1/tickets?cursor=${q}`, headers: agent.auth })],
    ['users q', () => ({ method: 'GET', url: `/api/v1/users?q=${q}`, headers: admin.auth })],
    [
      'team name',
      () => ({ method: 'POST', url: '/api/v1/teams', headers: admin.auth, payload: { name: `N${NUL}` } }),
    ],
    [
      'user name (admin create)',
      () => ({
        method: 'POST',
        url: '/api/v1/users',
        headers: admin.auth,
        payload: {
          email: 'nul-agent@example.com',
          name: `A${NUL}`,
          role: 'agent',
          password: 'a long enough passphrase',
        },
      }),
    ],
    [
      'own name (PATCH /auth/me)',
      () => ({
        method: 'PATCH',
        url: '/api/v1/auth/me',
        headers: requester.auth,
        payload: { name: `R${NUL}` },
      }),
    ],
    [
      'audit action filter',
      () => ({ method: 'GET', url: `/api/v1/audit-events?action=${q}`, headers: admin.auth }),
    ],
    [
      'audit entityId filter',
      () => ({ method: 'GET', url: `/api/v1/audit-events?entityId=${q}`, headers: admin.auth }),
    ],
  ];
  it.each(cases)('%s', async (_name, request) => {
    const body = expectProblem(await app.inject(request()), 422, 'VALIDATION_FAILED');
    expect(JSON.stringify(body.errors)).toContain('NUL');
  });

  it('an enum filter with a NUL is a 422 too', async () => {
    const res = await app.inject({
      method: 'GET',
      url: `/api/v1/tickets?status=open${q}`,
      headers: agent.auth,
    });
    expectProblem(res, 422, 'VALIDATION_FAILED');
  });
});

describe('path and query integers are plain decimal digits', () => {
  it.each(['0x10', '1e1', '+1', '%201', '1%20', '1.0', '01x', '-1', '0', '2147483648'])(
    'GET /tickets/%s → 422',
    async (raw) => {
      const res = await app.inject({ method: 'GET', url: `/api/v1/tickets/${raw}`, headers: agent.auth });
      expectProblem(res, 422, 'VALIDATION_FAILED');
    },
  );

  it('DELETE /tickets/0x<id> deletes nothing', async () => {
    const res = await app.inject({
      method: 'DELETE',
      url: `/api/v1/tickets/0x${ticketId.toString(16)}`,
      headers: admin.auth,
    });
    expectProblem(res, 422, 'VALIDATION_FAILED');
    const still = await app.inject({
      method: 'GET',
      url: `/api/v1/tickets/${ticketId}`,
      headers: agent.auth,
    });
    expect(still.statusCode).toBe(200);
  });

  it('a plain decimal id still resolves', async () => {
    const res = await app.inject({ method: 'GET', url: `/api/v1/tickets/${ticketId}`, headers: agent.auth });
    expect(res.statusCode).toBe(200);
    expect(res.json().id).toBe(ticketId);
  });

  it.each([
    '/api/v1/tickets?limit=0x10',
    '/api/v1/tickets?limit=1e1',
    '/api/v1/tickets?limit=%2B1',
    '/api/v1/tickets?limit=%2010',
    '/api/v1/tickets?limit=1&limit=2',
    '/api/v1/users?limit=0x10',
    '/api/v1/teams?limit=1e1',
    '/api/v1/audit-events?limit=+5',
  ])('%s → 422', async (url) => {
    const user = url.includes('/tickets') ? agent : admin;
    expectProblem(await app.inject({ method: 'GET', url, headers: user.auth }), 422, 'VALIDATION_FAILED');
  });

  it('limit=16 is honoured', async () => {
    const res = await app.inject({ method: 'GET', url: '/api/v1/tickets?limit=16', headers: agent.auth });
    expect(res.statusCode).toBe(200);
  });
});

describe('unknown query parameters are refused with 422 on every route', () => {
  const routes: Array<[string, string, () => TestUser | null]> = [
    ['GET', '/healthz', () => null],
    ['GET', '/readyz', () => null],
    ['GET', '/api/v1/auth/me', () => requester],
    ['GET', '/api/v1/tickets/{id}', () => agent],
    ['GET', '/api/v1/attachments/3f2a1b0c-9d8e-4f7a-8b6c-5d4e3f2a1b0c', () => agent],
    ['GET', '/api/v1/tickets', () => agent],
    ['GET', '/api/v1/tickets/{id}/comments', () => agent],
    ['GET', '/api/v1/tickets/{id}/events', () => agent],
    ['GET', '/api/v1/users', () => admin],
    ['GET', '/api/v1/teams', () => admin],
    ['GET', '/api/v1/audit-events', () => admin],
  ];
  it.each(routes)('%s %s?bogus=1', async (method, path, who) => {
    const user = who();
    const res = await app.inject({
      method: method as 'GET',
      url: `${path.replace('{id}', String(ticketId))}?bogus=1`,
      headers: user ? user.auth : {},
    });
    const body = expectProblem(res, 422, 'VALIDATION_FAILED');
    expect(JSON.stringify(body.errors)).toContain('bogus');
  });

  it('POST /auth/login?bogus=1 is refused before any login attempt', async () => {
    const res = await app.inject({
      method: 'POST',
      url: '/api/v1/auth/login?bogus=1',
      payload: { email: requester.email, password: requester.password },
    });
    expectProblem(res, 422, 'VALIDATION_FAILED');
  });
});
