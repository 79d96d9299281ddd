import fc from 'fast-check';
import type { FastifyInstance, InjectOptions } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApp } from '../helpers/app.js';
import { createUser, type TestUser } from '../helpers/factory.js';

/**
 * Generated requests over every operation of the OpenAPI document (fixed seed, bounded): valid-looking and
 * hostile values for the documented parameters and body fields, unknown fields, NULs, odd numbers, no token.
 * Whatever is sent, the answer is never a 5xx, and every error is problem+json with a code and the traceId.
 */
const RUNS = 2000;
const SEED = 20261130;

// biome-ignore lint/suspicious/noExplicitAny: the document is plain JSON walked structurally.
type Json = any;

let app: FastifyInstance;
let admin: TestUser;
let agent: TestUser;
let requester: TestUser;
let doc: Json;
const ticketIds: number[] = [];

beforeAll(async () => {
  app = await createTestApp({ RATE_LIMIT_MAX: '100000', LOGIN_RATE_LIMIT_PER_IP: '100000' });
  [admin, agent, requester] = await Promise.all([
    createUser(app, { role: 'admin' }),
    createUser(app, { role: 'agent' }),
    createUser(app, { role: 'requester' }),
  ]);
  doc = (await app.inject({ method: 'GET', url: '/openapi.json' })).json();
  for (let i = 0; i < 3; i++) {
    const res = await app.inject({
      method: 'POST',
      url: '/api/v1/tickets',
      headers: requester.auth,
      payload: { title: `Fuzz target ${i}`, description: 'Arranged for the fuzz run.' },
    });
    ticketIds.push(res.json().id);
  }
});
afterAll(() => app.close());

const hostileString = fc.oneof(
  fc.string({ maxLength: 40 }),
  fc.string({ unit: 'binary', maxLength: 40 }),
  fc.constantFrom(
    '\u0000',
    'a\u0000b',
    '0x10',
    '1e1',
    '+1',
    ' 1',
    '-1',
    '',
    '%zz',
    '../../etc',
    "' OR 1=1 --",
  ),
  fc.constantFrom('open', 'pending', 'high', 'incident', 'relevance', '-updatedAt', 'me', 'none', 'true'),
  fc.string({ minLength: 300, maxLength: 3000 }),
);

function refOf(schema: Json): Json {
  let s = schema;
  for (let i = 0; i < 5 && s?.$ref; i++) s = doc.components.schemas[String(s.$ref).split('/').pop()!];
  return s ?? {};
}

function valueFor(schema: Json, depth = 0): fc.Arbitrary<unknown> {
  const s = refOf(schema);
  const junk = fc.oneof(hostileString, fc.integer(), fc.double(), fc.boolean(), fc.constant(null));
  const options: fc.Arbitrary<unknown>[] = [junk];
  if (Array.isArray(s.enum)) options.push(fc.constantFrom(...s.enum));
  if (s.type === 'string' && s.format === 'uuid')
    options.push(fc.constantFrom(agent.id, requester.id, '00000000-0000-4000-8000-000000000000'), fc.uuid());
  if (s.type === 'string' && s.format === 'email') options.push(fc.emailAddress());
  if (s.type === 'string') options.push(fc.string({ minLength: 1, maxLength: 60 }));
  if (s.type === 'integer') options.push(fc.integer({ min: -5, max: 200 }), fc.constantFrom(...ticketIds));
  if (s.type === 'array' && depth < 3)
    options.push(fc.array(valueFor(s.items ?? {}, depth + 1), { maxLength: 4 }));
  if ((s.type === 'object' || s.properties) && depth < 3) options.push(objectFor(s, depth + 1));
  return fc.oneof(...options);
}

function objectFor(schema: Json, depth = 0): fc.Arbitrary<Record<string, unknown>> {
  const props: Record<string, Json> = refOf(schema).properties ?? {};
  const known = fc.record(
    Object.fromEntries(Object.entries(props).map(([k, v]) => [k, valueFor(v, depth)])),
    { requiredKeys: [] },
  );
  return fc.oneof(
    { weight: 4, arbitrary: known },
    {
      weight: 1,
      arbitrary: fc
        .tuple(known, fc.dictionary(fc.string({ maxLength: 10 }), fc.jsonValue()))
        .map(([a, b]) => ({ ...b, ...a })),
    },
  );
}

interface Operation {
  method: string;
  path: string;
  params: Json[];
  body: Json | undefined;
  multipart: boolean;
}

function operations(): Operation[] {
  const out: Operation[] = [];
  for (const [path, item] of Object.entries<Json>(doc.paths))
    for (const [method, op] of Object.entries<Json>(item)) {
      if (!op?.responses) continue;
      // A live stream answers forever by design; its errors are covered by the stream's own tests.
      if (Object.values<Json>(op.responses).some((r) => r?.content?.['text/event-stream'])) continue;
      const content = op.requestBody?.content ?? {};
      out.push({
        method: method.toUpperCase(),
        path,
        params: (op.parameters ?? []).map(refOf),
        body: content['application/json']?.schema,
        multipart: Boolean(content['multipart/form-data']),
      });
    }
  return out;
}

function requestFor(op: Operation): fc.Arbitrary<InjectOptions> {
  const pathParams = op.params.filter((p) => p.in === 'path');
  const queryParams = op.params.filter((p) => p.in === 'query');
  const pathArb = fc.record(
    Object.fromEntries(
      pathParams.map((p) => [p.name, valueFor(p.schema).map((v) => encodeURIComponent(String(v)))]),
    ),
  );
  const queryArb = fc.tuple(
    fc.record(Object.fromEntries(queryParams.map((p) => [p.name, valueFor(p.schema)])), { requiredKeys: [] }),
    fc.option(
      fc.dictionary(fc.string({ minLength: 1, maxLength: 8 }), fc.string({ maxLength: 8 }), { maxKeys: 2 }),
      { freq: 5 },
    ),
  );
  const bodyArb = op.body
    ? fc.oneof({ weight: 5, arbitrary: objectFor(op.body) }, { weight: 1, arbitrary: fc.jsonValue() })
    : fc.constant(undefined);
  const who = fc.constantFrom<TestUser | null>(admin, admin, agent, requester, null);
  return fc.tuple(pathArb, queryArb, bodyArb, who).map(([pathValues, [query, extra], body, user]) => {
    const url = op.path.replace(/\{(\w+)\}/g, (_m, name: string) =>
      String((pathValues as Record<string, unknown>)[name]),
    );
    const search = new URLSearchParams();
    for (const [k, v] of Object.entries<unknown>({ ...query, ...(extra ?? {}) }))
      for (const item of Array.isArray(v) ? v : [v])
        search.append(k, typeof item === 'string' ? item : JSON.stringify(item));
    const qs = search.toString();
    const headers: Record<string, string> = { 'x-request-id': `fuzz-${Math.random().toString(36).slice(2)}` };
    if (user) headers.authorization = user.auth.authorization;
    const options: InjectOptions = {
      method: op.method as InjectOptions['method'],
      url: qs ? `${url}?${qs}` : url,
      headers,
    };
    if (op.multipart) {
      headers['content-type'] = 'multipart/form-data; boundary=fuzz';
      options.payload = `--fuzz\r\nContent-Disposition: form-data; name="file"; filename="a.txt"\r\n\r\n${JSON.stringify(body ?? '')}\r\n--fuzz--\r\n`;
    } else if (body !== undefined) {
      options.payload = JSON.stringify(body);
      headers['content-type'] = 'application/json';
    }
    return options;
  });
}

describe('fuzzing every OpenAPI operation', () => {
  it(`${RUNS} generated requests: no 5xx, every error is problem+json with code and traceId`, async () => {
    const ops = operations();
    expect(ops.length).toBeGreaterThan(20);
    const byStatus = new Map<number, number>();
    const failures: string[] = [];
    await fc.assert(
      fc.asyncProperty(fc.oneof(...ops.map(requestFor)), async (request) => {
        const res = await app.inject(request);
        byStatus.set(res.statusCode, (byStatus.get(res.statusCode) ?? 0) + 1);
        const where = `${request.method} ${request.url} → ${res.statusCode}`;
        if (res.statusCode >= 500) failures.push(`${where} ${res.body.slice(0, 200)}`);
        if (res.statusCode >= 400) {
          const problem = String(res.headers['content-type']).startsWith('application/problem+json');
          const body = problem ? res.json() : {};
          if (!problem || typeof body.code !== 'string' || body.traceId !== res.headers['x-request-id'])
            failures.push(`${where}: not a problem+json with code and traceId`);
        }
        return true;
      }),
      { seed: SEED, numRuns: RUNS, endOnFailure: true },
    );
    const figures = [...byStatus.entries()]
      .sort(([a], [b]) => a - b)
      .map(([s, n]) => `${s}×${n}`)
      .join(' ');
    console.log(`fuzz: ${RUNS} requests over ${ops.length} operations (seed ${SEED}): ${figures}`);
    expect(failures.slice(0, 20)).toEqual([]);
  }, 600_000);
});
