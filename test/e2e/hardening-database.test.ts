import { randomUUID } from 'node:crypto';
import net from 'node:net';
import { sql } from 'drizzle-orm';
import type { FastifyInstance } from 'fastify';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApp } from '../helpers/app.js';
import { createUser } from '../helpers/factory.js';

const probes: FastifyPluginAsyncZod = async (app) => {
  app.get('/api/v1/_probe/slow', async () => {
    await app.db.execute(sql`select pg_sleep(2)`);
    return { ok: true };
  });
};

function expectUnavailable(res: { statusCode: number; headers: Record<string, unknown>; json(): unknown }) {
  expect(res.statusCode).toBe(503);
  expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
  expect(res.json()).toMatchObject({ status: 503, code: 'SERVICE_UNAVAILABLE' });
  expect(Number(res.headers['retry-after'])).toBeGreaterThan(0);
}

describe('a statement that exceeds statement_timeout', () => {
  let app: FastifyInstance;
  beforeAll(async () => {
    app = await createTestApp({ DB_STATEMENT_TIMEOUT_MS: '200' }, { plugins: [probes] });
  });
  afterAll(() => app.close());

  it('is answered 503 SERVICE_UNAVAILABLE with Retry-After', async () => {
    const user = await createUser(app);
    const res = await app.inject({ method: 'GET', url: '/api/v1/_probe/slow', headers: user.auth });
    expectUnavailable(res);
  });
});

describe('database refusing connections', () => {
  let app: FastifyInstance;
  beforeAll(async () => {
    app = await createTestApp({
      DATABASE_URL: 'postgres://postgres@127.0.0.1:1/none',
      DB_CONNECTION_TIMEOUT_MS: '500',
    });
  });
  afterAll(() => app.close());

  it('/readyz says 503, /healthz still 200', async () => {
    expectUnavailable(await app.inject({ method: 'GET', url: '/readyz' }));
    expect((await app.inject({ method: 'GET', url: '/healthz' })).statusCode).toBe(200);
  });

  it('an authenticated request is answered 503 (not 500, not a crash)', async () => {
    const token = app.jwt.sign({ sub: randomUUID(), role: 'requester', typ: 'access', sid: randomUUID() });
    const res = await app.inject({
      method: 'GET',
      url: '/api/v1/tickets',
      headers: { authorization: `Bearer ${token}` },
    });
    expectUnavailable(res);
  });
});

describe('database accepting TCP but never answering', () => {
  let app: FastifyInstance;
  let blackHole: net.Server;
  const sockets = new Set<net.Socket>();
  beforeAll(async () => {
    blackHole = net.createServer((s) => {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
    });
    await new Promise<void>((r) => blackHole.listen(0, '127.0.0.1', r));
    const { port } = blackHole.address() as net.AddressInfo;
    app = await createTestApp({
      DATABASE_URL: `postgres://postgres@127.0.0.1:${port}/none`,
      DB_CONNECTION_TIMEOUT_MS: '500',
    });
  });
  afterAll(async () => {
    await app.close();
    for (const s of sockets) s.destroy();
    await new Promise((r) => blackHole.close(r));
  });

  it('answers 503 after the connection timeout instead of hanging', async () => {
    const started = Date.now();
    const res = await app.inject({ method: 'GET', url: '/readyz' });
    expectUnavailable(res);
    // Bounded by DB_CONNECTION_TIMEOUT_MS (500 ms), with generous slack for a busy machine.
    expect(Date.now() - started).toBeLessThan(10_000);
  });
});
