import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApp } from '../helpers/app.js';
import { createUser } from '../helpers/factory.js';
import { expectProblem } from '../helpers/http.js';

let app: FastifyInstance;

beforeAll(async () => {
  app = await createTestApp();
});
afterAll(() => app.close());

describe('public routes answer HEAD like GET', () => {
  it.each(['/healthz', '/readyz', '/openapi.json'])(
    'HEAD %s → 200, the GET headers, no body',
    async (url) => {
      const [head, get] = await Promise.all([
        app.inject({ method: 'HEAD', url }),
        app.inject({ method: 'GET', url }),
      ]);
      expect(get.statusCode).toBe(200);
      expect(head.statusCode).toBe(200);
      expect(head.body).toBe('');
      expect(head.headers['content-type']).toBe(get.headers['content-type']);
      expect(head.headers['content-length']).toBe(get.headers['content-length']);
      expect(head.headers['x-request-id']).toBeTruthy();
    },
  );

  it('HEAD of a private route still needs a token', async () => {
    const res = await app.inject({ method: 'HEAD', url: '/api/v1/tickets' });
    expect(res.statusCode).toBe(401);
    const user = await createUser(app, { role: 'agent' });
    const ok = await app.inject({ method: 'HEAD', url: '/api/v1/tickets', headers: user.auth });
    expect(ok.statusCode).toBe(200);
  });

  it('HEAD refuses unknown query parameters like GET', async () => {
    const get = await app.inject({ method: 'GET', url: '/healthz?bogus=1' });
    expectProblem(get, 422, 'VALIDATION_FAILED');
    const head = await app.inject({ method: 'HEAD', url: '/healthz?bogus=1' });
    expect(head.statusCode).toBe(422);
  });
});
