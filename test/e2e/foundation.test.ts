import type { FastifyInstance } from 'fastify';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { ConflictError } from '../../src/lib/errors.js';
import { createTestApp } from '../helpers/app.js';
import { createUser } from '../helpers/factory.js';
import { expectProblem } from '../helpers/http.js';

// Probe routes exercising the cross-cutting behaviour through real HTTP handling.
const probes: FastifyPluginAsyncZod = async (app) => {
  app.post(
    '/api/v1/_probe/echo',
    {
      schema: {
        body: z.strictObject({ title: z.string().min(1).max(10), count: z.number().int().optional() }),
      },
    },
    async (req) => ({ got: req.body }),
  );
  app.get('/api/v1/_probe/conflict', async () => {
    throw new ConflictError('INVALID_TRANSITION', 'Cannot go from closed to open.');
  });
  app.get('/api/v1/_probe/boom', async () => {
    throw new Error('secret internal detail: SELECT * FROM users');
  });
};

describe('HTTP conventions', () => {
  let app: FastifyInstance;
  beforeAll(async () => {
    // Probe routes are public only because they are not behind auth in this test: mark via header-less GET checks below.
    app = await createTestApp({}, { plugins: [probes] });
  });
  afterAll(() => app.close());

  it('GET /healthz answers ok', async () => {
    const res = await app.inject({ method: 'GET', url: '/healthz' });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ status: 'ok' });
  });

  it('GET /readyz answers 200 when the database answers', async () => {
    const res = await app.inject({ method: 'GET', url: '/readyz' });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ status: 'ok', database: 'up' });
  });

  it('unknown route is a 404 problem', async () => {
    const res = await app.inject({ method: 'GET', url: '/api/v1/nope?x=1' });
    expect(res.statusCode).toBe(404);
    const body = expectProblem(res, 404, 'NOT_FOUND');
    expect(body.instance).toBe('/api/v1/nope');
  });

  it('keeps a well-formed inbound X-Request-Id and echoes it', async () => {
    const res = await app.inject({
      method: 'GET',
      url: '/api/v1/nope',
      headers: { 'x-request-id': 'abc.DEF_123-x' },
    });
    expect(res.headers['x-request-id']).toBe('abc.DEF_123-x');
    expect(res.json().traceId).toBe('abc.DEF_123-x');
  });

  it('replaces a malformed inbound X-Request-Id with a generated one', async () => {
    const bad = 'has spaces and <script>';
    const res = await app.inject({ method: 'GET', url: '/healthz', headers: { 'x-request-id': bad } });
    expect(res.headers['x-request-id']).toMatch(/^[A-Za-z0-9._-]{1,128}$/);
    expect(res.headers['x-request-id']).not.toBe(bad);
    const tooLong = 'a'.repeat(129);
    const res2 = await app.inject({ method: 'GET', url: '/healthz', headers: { 'x-request-id': tooLong } });
    expect(res2.headers['x-request-id']).not.toBe(tooLong);
  });

  it('generates distinct request ids when none is sent', async () => {
    const [a, b] = await Promise.all([
      app.inject({ method: 'GET', url: '/healthz' }),
      app.inject({ method: 'GET', url: '/healthz' }),
    ]);
    expect(a.headers['x-request-id']).toBeTruthy();
    expect(a.headers['x-request-id']).not.toBe(b.headers['x-request-id']);
  });

  it('requires a bearer token on routes not listed as public', async () => {
    const res = await app.inject({ method: 'GET', url: '/api/v1/_probe/conflict' });
    expect(res.statusCode).toBe(401);
    expectProblem(res, 401, 'UNAUTHENTICATED');
    expect(res.headers['www-authenticate']).toBe('Bearer');
  });

  it('rejects a token that is not a valid JWT', async () => {
    const res = await app.inject({
      method: 'GET',
      url: '/api/v1/_probe/conflict',
      headers: { authorization: 'Bearer not.a.jwt' },
    });
    expectProblem(res, 401, 'UNAUTHENTICATED');
  });
});

describe('error shapes on authenticated routes', () => {
  let app: FastifyInstance;
  let auth: { authorization: string };
  beforeAll(async () => {
    app = await createTestApp({}, { plugins: [probes] });
    auth = (await createUser(app, { role: 'agent' })).auth;
  });
  afterAll(() => app.close());

  it('malformed JSON is 400 MALFORMED_REQUEST', async () => {
    const res = await app.inject({
      method: 'POST',
      url: '/api/v1/_probe/echo',
      headers: { ...auth, 'content-type': 'application/json' },
      payload: '{"title": "x",',
    });
    expect(res.statusCode).toBe(400);
    const body = expectProblem(res, 400, 'MALFORMED_REQUEST');
    expect(JSON.stringify(body)).not.toMatch(/at .*\.js|Unexpected token|stack/i);
  });

  it('wrong content type is 400 MALFORMED_REQUEST', async () => {
    const res = await app.inject({
      method: 'POST',
      url: '/api/v1/_probe/echo',
      headers: { ...auth, 'content-type': 'text/plain' },
      payload: 'title=x',
    });
    expectProblem(res, 400, 'MALFORMED_REQUEST');
  });

  it('schema failure is 422 VALIDATION_FAILED with errors[] naming the fields', async () => {
    const res = await app.inject({
      method: 'POST',
      url: '/api/v1/_probe/echo',
      headers: auth,
      payload: { title: '', count: 1.5 },
    });
    expect(res.statusCode).toBe(422);
    const body = expectProblem(res, 422, 'VALIDATION_FAILED');
    const paths = (body.errors as { path: string }[]).map((e) => e.path).sort();
    expect(paths).toEqual(['body.count', 'body.title']);
  });

  it('unknown body fields are rejected, not stripped', async () => {
    const res = await app.inject({
      method: 'POST',
      url: '/api/v1/_probe/echo',
      headers: auth,
      payload: { title: 'ok', role: 'admin' },
    });
    expect(res.statusCode).toBe(422);
    expect(JSON.stringify(res.json().errors)).toContain('role');
  });

  it('a valid body passes', async () => {
    const res = await app.inject({
      method: 'POST',
      url: '/api/v1/_probe/echo',
      headers: auth,
      payload: { title: 'ok' },
    });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ got: { title: 'ok' } });
  });

  it('body over the limit is 413 PAYLOAD_TOO_LARGE', async () => {
    const res = await app.inject({
      method: 'POST',
      url: '/api/v1/_probe/echo',
      headers: { ...auth, 'content-type': 'application/json' },
      payload: JSON.stringify({ title: 'x'.repeat(2 * 1024 * 1024) }),
    });
    expect(res.statusCode).toBe(413);
    expectProblem(res, 413, 'PAYLOAD_TOO_LARGE');
  });

  it('typed application errors keep their status and code', async () => {
    const res = await app.inject({ method: 'GET', url: '/api/v1/_probe/conflict', headers: auth });
    expect(res.statusCode).toBe(409);
    const body = expectProblem(res, 409, 'INVALID_TRANSITION');
    expect(body.detail).toBe('Cannot go from closed to open.');
  });

  it('unknown errors are a bare 500 without internals', async () => {
    const res = await app.inject({
      method: 'GET',
      url: '/api/v1/_probe/boom',
      headers: { ...auth, 'x-request-id': 'trace-500' },
    });
    expect(res.statusCode).toBe(500);
    const body = expectProblem(res, 500, 'INTERNAL_ERROR');
    expect(body.traceId).toBe('trace-500');
    expect(res.body).not.toContain('secret internal detail');
    expect(res.body).not.toContain('SELECT');
  });
});
