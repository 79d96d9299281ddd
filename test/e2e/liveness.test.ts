import type net from 'node:net';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApp } from '../helpers/app.js';

let app: FastifyInstance;
let base: string;

beforeAll(async () => {
  app = await createTestApp();
  await app.listen({ port: 0, host: '127.0.0.1' });
  base = `http://127.0.0.1:${(app.server.address() as net.AddressInfo).port}`;
});
afterAll(() => app.close());

/** Response headers every answer carries, whoever produced it. */
const COMMON = [
  'content-security-policy',
  'strict-transport-security',
  'x-content-type-options',
  'x-frame-options',
  'referrer-policy',
  'cross-origin-opener-policy',
];

describe('GET /healthz over real HTTP (answered before the app)', () => {
  it('is 200 {"status":"ok"} with the headers every response carries', async () => {
    const res = await fetch(`${base}/healthz`, { headers: { 'x-request-id': 'probe-1' } });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('application/json; charset=utf-8');
    expect(await res.json()).toEqual({ status: 'ok' });
    expect(res.headers.get('x-request-id')).toBe('probe-1');
    // The same security headers as a response the app itself makes.
    const ready = await fetch(`${base}/readyz`);
    for (const name of COMMON) {
      expect(res.headers.get(name), name).toBeTruthy();
      expect(res.headers.get(name), name).toBe(ready.headers.get(name));
    }
  });

  it('makes a request id when the inbound one is malformed', async () => {
    const res = await fetch(`${base}/healthz`, { headers: { 'x-request-id': 'no spaces allowed' } });
    expect(res.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/);
  });

  it('HEAD answers the headers without a body', async () => {
    const res = await fetch(`${base}/healthz`, { method: 'HEAD' });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-length')).toBe('15');
    expect(await res.text()).toBe('');
  });

  it('anything else goes to the app: a query parameter is refused as everywhere', async () => {
    const res = await fetch(`${base}/healthz?verbose=1`);
    expect(res.status).toBe(422);
    expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    const post = await fetch(`${base}/healthz`, { method: 'POST' });
    expect(post.status).toBe(404);
  });

  it('says Connection: close while the server drains', async () => {
    const before = await fetch(`${base}/healthz`);
    expect(before.headers.get('connection')).not.toBe('close');
    app.startDraining();
    const res = await fetch(`${base}/healthz`);
    expect(res.status).toBe(200);
    expect(res.headers.get('connection')).toBe('close');
  });
});
