import type { FastifyInstance } from 'fastify';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApp } from '../helpers/app.js';
import { createUser, type TestUser } from '../helpers/factory.js';

const probes: FastifyPluginAsyncZod = async (app) => {
  app.get('/api/v1/_probe/private', async () => ({ ok: true }));
};

const ALLOWED = 'https://desk.example.com';

describe('CORS', () => {
  let app: FastifyInstance;
  let user: TestUser;
  beforeAll(async () => {
    app = await createTestApp(
      { CORS_ORIGINS: `${ALLOWED},https://other.example.org` },
      { plugins: [probes] },
    );
    user = await createUser(app);
  });
  afterAll(() => app.close());

  it('allows a configured origin and exposes the contract headers', async () => {
    const res = await app.inject({
      method: 'GET',
      url: '/api/v1/_probe/private',
      headers: { ...user.auth, origin: ALLOWED },
    });
    expect(res.statusCode).toBe(200);
    expect(res.headers['access-control-allow-origin']).toBe(ALLOWED);
    const exposed = String(res.headers['access-control-expose-headers'])
      .split(',')
      .map((h) => h.trim().toLowerCase());
    for (const h of [
      'x-request-id',
      'etag',
      'link',
      'location',
      'ratelimit-limit',
      'ratelimit-remaining',
      'ratelimit-reset',
      'retry-after',
    ]) {
      expect(exposed).toContain(h);
    }
  });

  it('answers a preflight from an allowed origin without authentication', async () => {
    const res = await app.inject({
      method: 'OPTIONS',
      url: '/api/v1/_probe/private',
      headers: {
        origin: ALLOWED,
        'access-control-request-method': 'PATCH',
        'access-control-request-headers': 'authorization,content-type,if-match,idempotency-key',
      },
    });
    expect(res.statusCode).toBe(204);
    expect(res.headers['access-control-allow-origin']).toBe(ALLOWED);
    expect(String(res.headers['access-control-allow-methods'])).toContain('PATCH');
    const allowed = String(res.headers['access-control-allow-headers']).toLowerCase();
    for (const h of ['authorization', 'content-type', 'if-match', 'idempotency-key'])
      expect(allowed).toContain(h);
  });

  it('gives a denied origin no CORS headers, on simple requests and preflights', async () => {
    const simple = await app.inject({
      method: 'GET',
      url: '/api/v1/_probe/private',
      headers: { ...user.auth, origin: 'https://evil.example.net' },
    });
    expect(simple.headers['access-control-allow-origin']).toBeUndefined();
    const preflight = await app.inject({
      method: 'OPTIONS',
      url: '/api/v1/_probe/private',
      headers: { origin: 'https://evil.example.net', 'access-control-request-method': 'GET' },
    });
    expect(preflight.headers['access-control-allow-origin']).toBeUndefined();
  });

  it('puts the CORS headers on error responses too, so the browser can read the problem', async () => {
    const res = await app.inject({
      method: 'GET',
      url: '/api/v1/_probe/private',
      headers: { origin: ALLOWED },
    });
    expect(res.statusCode).toBe(401);
    expect(res.headers['access-control-allow-origin']).toBe(ALLOWED);
  });
});

describe('CORS with no configured origins', () => {
  let app: FastifyInstance;
  beforeAll(async () => {
    app = await createTestApp({ CORS_ORIGINS: '' });
  });
  afterAll(() => app.close());

  it('allows no cross-origin reads', async () => {
    const res = await app.inject({ method: 'GET', url: '/healthz', headers: { origin: ALLOWED } });
    expect(res.statusCode).toBe(200);
    expect(res.headers['access-control-allow-origin']).toBeUndefined();
  });
});

describe('security headers and caching', () => {
  let app: FastifyInstance;
  let user: TestUser;
  beforeAll(async () => {
    app = await createTestApp({}, { plugins: [probes] });
    user = await createUser(app);
  });
  afterAll(() => app.close());

  it('sends helmet security headers on API responses', async () => {
    const res = await app.inject({ method: 'GET', url: '/api/v1/_probe/private', headers: user.auth });
    expect(res.headers['x-content-type-options']).toBe('nosniff');
    expect(res.headers['x-frame-options']).toBe('SAMEORIGIN');
    expect(res.headers['strict-transport-security']).toMatch(/max-age=\d+/);
    expect(res.headers['referrer-policy']).toBe('no-referrer');
    expect(res.headers['content-security-policy']).toContain("default-src 'none'");
    expect(res.headers['content-security-policy']).toContain("frame-ancestors 'none'");
    expect(res.headers['x-powered-by']).toBeUndefined();
  });

  it('marks authenticated responses Cache-Control: no-store', async () => {
    const res = await app.inject({ method: 'GET', url: '/api/v1/_probe/private', headers: user.auth });
    expect(res.statusCode).toBe(200);
    expect(res.headers['cache-control']).toBe('no-store');
  });

  it('marks API error responses no-store as well', async () => {
    const res = await app.inject({ method: 'GET', url: '/api/v1/_probe/private' });
    expect(res.statusCode).toBe(401);
    expect(res.headers['cache-control']).toBe('no-store');
  });

  it('keeps the docs page working: it loads with a CSP that lets its own scripts run', async () => {
    const page = await app.inject({ method: 'GET', url: '/docs/' });
    expect(page.statusCode).toBe(200);
    expect(page.headers['content-type']).toMatch(/text\/html/);
    const csp = String(page.headers['content-security-policy']);
    expect(csp).toContain("script-src 'self'");
    expect(csp).not.toContain("default-src 'none'");
    const html = page.body;
    const script = /src="\.?\/?([^"]*swagger-ui-bundle\.js)"/.exec(html)?.[1];
    expect(script).toBeDefined();
    const asset = await app.inject({ method: 'GET', url: `/docs/${script!.replace(/^\/?docs\//, '')}` });
    expect(asset.statusCode).toBe(200);
    const spec = await app.inject({ method: 'GET', url: '/openapi.json' });
    expect(spec.statusCode).toBe(200);
  });
});
