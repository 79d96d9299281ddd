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

/** Headers the app puts on its responses for browsers rendering a document; a probe's answer skips them. */
const DOCUMENT_HEADERS = ['content-security-policy', 'strict-transport-security', 'x-frame-options'];

describe('GET /healthz over real HTTP (answered before the app)', () => {
  it('is 200 {"status":"ok"} with a request id, nosniff and no-store, and nothing else to do', async () => {
    const res = await fetch(`${base}/healthz`, { headers: { 'x-request-id': 'probe-1' } });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('application/json; charset=utf-8');
    expect(await res.json()).toEqual({ status: 'ok' });
    expect(res.headers.get('x-request-id')).toBe('probe-1');
    expect(res.headers.get('x-content-type-options')).toBe('nosniff');
    expect(res.headers.get('cache-control')).toBe('no-store');
    for (const name of DOCUMENT_HEADERS) expect(res.headers.get(name), name).toBeNull();
  });

  it('a browser request (with an Origin) goes to the app: CORS and every security header as elsewhere', async () => {
    const res = await fetch(`${base}/healthz`, { headers: { origin: 'https://elsewhere.example' } });
    expect(res.status).toBe(200);
    const ready = await fetch(`${base}/readyz`, { headers: { origin: 'https://elsewhere.example' } });
    for (const name of DOCUMENT_HEADERS) {
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
