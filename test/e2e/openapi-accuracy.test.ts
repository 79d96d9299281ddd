import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkOpenApi } from '../../scripts/check-openapi.js';
import { createTestApp } from '../helpers/app.js';
import { multipart } from '../helpers/attachments-fixtures.js';
import { createUser } from '../helpers/factory.js';

let app: FastifyInstance;
// biome-ignore lint/suspicious/noExplicitAny: the document is plain JSON walked structurally.
let doc: any;

beforeAll(async () => {
  app = await createTestApp();
  doc = (await app.inject({ method: 'GET', url: '/openapi.json' })).json();
});
afterAll(() => app.close());

describe('the OpenAPI document matches the server', () => {
  it('passes the completeness checks of npm run lint:openapi', () => {
    expect(checkOpenApi(doc).errors).toEqual([]);
  });

  it('documents the Content-Type a download really has', async () => {
    const user = await createUser(app, { role: 'requester' });
    const ticket = await app.inject({
      method: 'POST',
      url: '/api/v1/tickets',
      headers: user.auth,
      payload: { title: 'Doc types', description: 'A file to download.' },
    });
    const upload = multipart([{ filename: 'notes.txt', content: Buffer.from('plain words\n') }]);
    const up = await app.inject({
      method: 'POST',
      url: `/api/v1/tickets/${ticket.json().id}/attachments`,
      headers: { ...user.auth, ...upload.headers },
      payload: upload.payload,
    });
    expect(up.statusCode, up.body).toBe(201);
    const down = await app.inject({
      method: 'GET',
      url: `/api/v1/attachments/${up.json().data[0].id}`,
      headers: user.auth,
    });
    expect(down.statusCode).toBe(200);
    const documented = Object.keys(doc.paths['/api/v1/attachments/{id}'].get.responses['200'].content);
    expect(documented).toContain(String(down.headers['content-type']).split(';')[0]);
    expect(documented).toContain('application/pdf');
    expect(documented).not.toEqual(['application/octet-stream']);
  });

  it('413 on body routes, 431 everywhere, with the Problem schema', () => {
    expect(doc.paths['/api/v1/tickets'].post.responses['413']).toBeDefined();
    expect(doc.paths['/api/v1/auth/login'].post.responses['413']).toBeDefined();
    expect(doc.paths['/healthz'].get.responses['431']).toBeDefined();
    expect(
      doc.paths['/api/v1/tickets/{id}'].get.responses['431'].content['application/problem+json'],
    ).toBeDefined();
  });

  it('format: email on emails clients send and read; not on login, which takes any string', () => {
    const reg = doc.paths['/api/v1/auth/register'].post.requestBody.content['application/json'].schema;
    const body = reg.$ref ? doc.components.schemas[reg.$ref.split('/').pop()] : reg;
    expect(body.properties.email.format).toBe('email');
    expect(doc.components.schemas.User.properties.email.format).toBe('email');
  });

  it('PATCH bodies that refuse {} say minProperties: 1', async () => {
    const patch = doc.paths['/api/v1/tickets/{id}'].patch.requestBody.content['application/json'].schema;
    expect(patch.minProperties).toBe(1);
    const user = await createUser(app, { role: 'agent' });
    const res = await app.inject({
      method: 'PATCH',
      url: '/api/v1/auth/me',
      headers: user.auth,
      payload: {},
    });
    expect(res.statusCode).toBe(422);
    expect(
      doc.paths['/api/v1/auth/me'].patch.requestBody.content['application/json'].schema.minProperties,
    ).toBe(1);
  });

  it('status, priority and type filters are enums', () => {
    const params = doc.paths['/api/v1/tickets'].get.parameters;
    for (const name of ['status', 'priority', 'type']) {
      const p = params.find((x: { name: string }) => x.name === name);
      expect(p.schema.items.enum.length, name).toBeGreaterThan(2);
    }
    expect(params.find((x: { name: string }) => x.name === 'status').schema.items.enum).toContain('on_hold');
  });

  it('AuditEvent.changes is a map of two-item arrays, without prefixItems', () => {
    const changes = doc.components.schemas.AuditEvent.properties.changes;
    expect(JSON.stringify(changes)).not.toContain('prefixItems');
    expect(changes.additionalProperties).toMatchObject({ type: 'array', minItems: 2, maxItems: 2 });
  });
});
