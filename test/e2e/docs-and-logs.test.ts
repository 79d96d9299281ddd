import { Writable } from 'node:stream';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApp } from '../helpers/app.js';

describe('OpenAPI and docs', () => {
  let app: FastifyInstance;
  beforeAll(async () => {
    app = await createTestApp();
  });
  afterAll(() => app.close());

  it('serves an OpenAPI 3.1 document with the bearer scheme, tags and operationIds', async () => {
    const res = await app.inject({ method: 'GET', url: '/openapi.json' });
    expect(res.statusCode).toBe(200);
    const doc = res.json();
    expect(doc.openapi).toBe('3.1.0');
    expect(doc.components.securitySchemes.bearerAuth).toMatchObject({ type: 'http', scheme: 'bearer' });
    expect(doc.components.schemas.Problem).toBeDefined();
    const readyz = doc.paths['/readyz'].get;
    expect(readyz.operationId).toBe('getReadiness');
    expect(readyz.tags).toEqual(['health']);
    expect(readyz.responses['503']).toBeDefined();
    expect(readyz.security).toEqual([]);
  });

  it('serves the interactive docs page without authentication', async () => {
    const res = await app.inject({ method: 'GET', url: '/docs' });
    const page =
      res.statusCode === 302 ? await app.inject({ method: 'GET', url: res.headers.location as string }) : res;
    expect(page.statusCode).toBe(200);
    expect(page.headers['content-type']).toMatch(/text\/html/);
    expect(page.body).toMatch(/swagger/i);
  });
});

describe('logs', () => {
  it('carries the request id as traceId on every line of a request', async () => {
    const lines: Record<string, unknown>[] = [];
    const stream = new Writable({
      write(chunk, _enc, cb) {
        for (const l of String(chunk).split('\n').filter(Boolean)) lines.push(JSON.parse(l));
        cb();
      },
    });
    const app = await createTestApp({}, { logger: { level: 'info', stream } });
    try {
      await app.inject({ method: 'GET', url: '/api/v1/missing', headers: { 'x-request-id': 'log-trace-1' } });
      const mine = lines.filter((l) => l.traceId === 'log-trace-1');
      expect(mine.length).toBeGreaterThanOrEqual(2); // incoming request + request completed
      expect(lines.filter((l) => 'req' in l || 'res' in l).every((l) => typeof l.traceId === 'string')).toBe(
        true,
      );
    } finally {
      await app.close();
    }
  });
});
