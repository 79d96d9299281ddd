import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApp } from '../helpers/app.js';

describe('overload protection', () => {
  let app: FastifyInstance;
  beforeAll(async () => {
    // A heap ceiling of 1 KiB: the process is "under pressure" from the first sample on.
    app = await createTestApp({ OVERLOAD_MAX_HEAP_USED_BYTES: '1024' });
  });
  afterAll(() => app.close());

  it('sheds requests with 503 SERVICE_UNAVAILABLE + Retry-After while under pressure', async () => {
    await expect.poll(() => app.isUnderPressure(), { timeout: 5000 }).toBe(true);
    const res = await app.inject({ method: 'GET', url: '/readyz' });
    expect(res.statusCode).toBe(503);
    expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(res.json()).toMatchObject({ code: 'SERVICE_UNAVAILABLE', status: 503 });
    expect(Number(res.headers['retry-after'])).toBeGreaterThan(0);
  });

  it('still answers liveness and metrics while shedding', async () => {
    await expect.poll(() => app.isUnderPressure(), { timeout: 5000 }).toBe(true);
    expect((await app.inject({ method: 'GET', url: '/healthz' })).statusCode).toBe(200);
    expect((await app.inject({ method: 'GET', url: '/metrics' })).statusCode).toBe(200);
  });
});
