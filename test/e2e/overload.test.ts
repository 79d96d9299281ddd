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

/** Keeps the event loop busy for `ms` (start-up work, or a request hogging the CPU). */
function stall(ms: number) {
  const end = Date.now() + ms;
  while (Date.now() < end);
}

/** Stalls of `ms` one after the other for `totalMs`, letting timers run between them: a loop that lags. */
async function lag(ms: number, totalMs: number) {
  const end = Date.now() + totalMs;
  while (Date.now() < end) {
    stall(ms);
    await new Promise((r) => setImmediate(r));
  }
}

describe('overload protection and start-up', () => {
  let app: FastifyInstance;
  beforeAll(async () => {
    app = await createTestApp({ OVERLOAD_MAX_EVENT_LOOP_DELAY_MS: '200' });
  });
  afterAll(() => app.close());

  const delay = () => (app.memoryUsage() as { eventLoopDelay: number }).eventLoopDelay;

  it('does not shed the first requests for the stall of its own start-up', async () => {
    stall(700); // start-up work of a fresh process, before it serves anything
    await expect.poll(delay, { timeout: 5000, interval: 20 }).toBeGreaterThan(200);
    expect((await app.inject({ method: 'GET', url: '/readyz' })).statusCode).toBe(200);
  });

  it('sheds requests for a stall once it is serving', async () => {
    await expect.poll(delay, { timeout: 5000, interval: 50 }).toBeLessThan(200);
    await new Promise((r) => setTimeout(r, 1100)); // past the start-up samples
    await lag(400, 1500);
    expect(delay()).toBeGreaterThan(200);
    const res = await app.inject({ method: 'GET', url: '/readyz' });
    expect(res.statusCode).toBe(503);
    expect(res.json()).toMatchObject({ code: 'SERVICE_UNAVAILABLE' });
  });
});
