/**
 * Postman collection generated from the OpenAPI document (npm run postman):
 *
 *   artifacts/postman/helpdesk.postman_collection.json   every operation, foldered by tag (openapi-to-postmanv2),
 *                                                        plus a "Contract: main flow" folder
 *   artifacts/postman/helpdesk.postman_environment.json  baseUrl and the admin credentials to fill in
 *
 * The main-flow folder is a runnable contract test (npm run test:contract runs it with newman against a live
 * server): each step names an operationId of the spec and asserts the status, the content type and that the
 * body validates against that operation's response schema taken from the spec — so a route whose behaviour
 * drifts from its documentation fails the run. A step whose operationId is missing from the spec fails here.
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import Converter from 'openapi-to-postmanv2';
import { ARTIFACTS } from './lib/harness.js';

// biome-ignore lint/suspicious/noExplicitAny: OpenAPI and Postman documents are plain JSON.
type Json = any;

export const POSTMAN_DIR = path.join(ARTIFACTS, 'postman');
export const COLLECTION = path.join(POSTMAN_DIR, 'helpdesk.postman_collection.json');
export const ENVIRONMENT = path.join(POSTMAN_DIR, 'helpdesk.postman_environment.json');
export const FLOW_FOLDER = 'Contract: main flow';

interface Step {
  name: string;
  operationId: string;
  /** Collection variable holding the bearer token; none = anonymous. */
  as?: 'adminToken' | 'agentToken' | 'requesterToken';
  status: number;
  pathParams?: Record<string, string>;
  query?: Record<string, string>;
  headers?: Record<string, string>;
  body?: unknown;
  /** Extra Postman test lines (pm.* API), run after the contract assertions. */
  tests?: string[];
  prerequest?: string[];
}

const PASSWORD = 'Contract-Flow-Pass-2026';

/** The flow a client runs first: sign in, arrange users, open and work a ticket, and the main refusals. */
export const MAIN_FLOW: Step[] = [
  {
    name: 'Admin signs in',
    operationId: 'login',
    status: 200,
    body: { email: '{{adminEmail}}', password: '{{adminPassword}}' },
    prerequest: [
      // One run id per run: the users this flow creates never collide with an earlier run's.
      "pm.collectionVariables.set('runId', Date.now().toString(36) + Math.random().toString(36).slice(2, 6));",
    ],
    tests: [
      "pm.collectionVariables.set('adminToken', json.accessToken);",
      "pm.test('token type is Bearer', () => pm.expect(json.tokenType).to.eql('Bearer'));",
      "pm.test('the user is the admin', () => pm.expect(json.user.role).to.eql('admin'));",
    ],
  },
  {
    name: 'Admin creates an agent',
    operationId: 'createUser',
    as: 'adminToken',
    status: 201,
    body: { email: 'agent-{{runId}}@example.test', name: 'Casey Agent', role: 'agent', password: PASSWORD },
    tests: [
      "pm.collectionVariables.set('agentId', json.id);",
      "pm.test('no password hash is exposed', () => pm.expect(Object.keys(json).join()).not.to.match(/password/i));",
    ],
  },
  {
    name: 'Admin creates a requester',
    operationId: 'createUser',
    as: 'adminToken',
    status: 201,
    body: {
      email: 'req-{{runId}}@example.test',
      name: 'Robin Requester',
      role: 'requester',
      password: PASSWORD,
    },
    tests: ["pm.collectionVariables.set('requesterId', json.id);"],
  },
  {
    name: 'Requester signs in',
    operationId: 'login',
    status: 200,
    body: { email: 'req-{{runId}}@example.test', password: PASSWORD },
    tests: [
      "pm.collectionVariables.set('requesterToken', json.accessToken);",
      "pm.collectionVariables.set('requesterRefresh', json.refreshToken);",
    ],
  },
  {
    name: 'Requester reads their profile',
    operationId: 'getMe',
    as: 'requesterToken',
    status: 200,
    tests: [
      "pm.test('it is the requester', () => pm.expect(json.id).to.eql(pm.collectionVariables.get('requesterId')));",
    ],
  },
  {
    name: 'Requester opens a ticket',
    operationId: 'createTicket',
    as: 'requesterToken',
    status: 201,
    headers: { 'Idempotency-Key': 'create-{{runId}}' },
    body: {
      title: 'Cannot print to the 3rd floor printer',
      description: 'It says "offline".',
      priority: 'high',
    },
    tests: [
      "pm.collectionVariables.set('ticketId', json.id);",
      "pm.test('Location names the new ticket', () => pm.expect(pm.response.headers.get('Location')).to.match(new RegExp('/api/v1/tickets/' + json.id + '$')));",
      "pm.test('a new ticket starts as new', () => pm.expect(json.status).to.eql('new'));",
      "pm.test('the requester may cancel it', () => pm.expect(json.allowedTransitions).to.include('cancelled'));",
    ],
  },
  {
    name: 'Same Idempotency-Key replays the first response',
    operationId: 'createTicket',
    as: 'requesterToken',
    status: 201,
    headers: { 'Idempotency-Key': 'create-{{runId}}' },
    body: {
      title: 'Cannot print to the 3rd floor printer',
      description: 'It says "offline".',
      priority: 'high',
    },
    tests: [
      "pm.test('same ticket', () => pm.expect(json.id).to.eql(Number(pm.collectionVariables.get('ticketId'))));",
      "pm.test('marked as replayed', () => pm.expect(pm.response.headers.get('Idempotent-Replayed')).to.eql('true'));",
    ],
  },
  {
    name: 'Requester reads the ticket',
    operationId: 'getTicket',
    as: 'requesterToken',
    status: 200,
    pathParams: { id: '{{ticketId}}' },
    tests: [
      "pm.test('ETag is the version', () => pm.expect(pm.response.headers.get('ETag')).to.eql('\"' + json.version + '\"'));",
    ],
  },
  {
    name: 'Requester lists their new tickets',
    operationId: 'listTickets',
    as: 'requesterToken',
    status: 200,
    query: { status: 'new', limit: '10' },
    tests: [
      "pm.test('the ticket is listed', () => pm.expect(json.data.map((t) => t.id)).to.include(Number(pm.collectionVariables.get('ticketId'))));",
      "pm.test('only new tickets', () => json.data.forEach((t) => pm.expect(t.status).to.eql('new')));",
    ],
  },
  {
    name: 'Requester adds a public comment',
    operationId: 'createComment',
    as: 'requesterToken',
    status: 201,
    pathParams: { id: '{{ticketId}}' },
    body: { body: 'It worked yesterday.' },
    tests: ["pm.test('public by default', () => pm.expect(json.visibility).to.eql('public'));"],
  },
  {
    name: 'Agent signs in',
    operationId: 'login',
    status: 200,
    body: { email: 'agent-{{runId}}@example.test', password: PASSWORD },
    tests: ["pm.collectionVariables.set('agentToken', json.accessToken);"],
  },
  {
    name: 'Agent takes the ticket',
    operationId: 'updateTicket',
    as: 'agentToken',
    status: 200,
    pathParams: { id: '{{ticketId}}' },
    body: { assigneeId: '{{agentId}}' },
    tests: [
      "pm.collectionVariables.set('version', json.version);",
      "pm.test('assigned to the agent', () => pm.expect(json.assignee.id).to.eql(pm.collectionVariables.get('agentId')));",
      "pm.test('assigning a new ticket opens it', () => pm.expect(json.status).to.eql('open'));",
    ],
  },
  {
    name: 'A stale If-Match is refused',
    operationId: 'updateTicket',
    as: 'agentToken',
    status: 412,
    pathParams: { id: '{{ticketId}}' },
    headers: { 'If-Match': '"1"' },
    body: { status: 'pending' },
    tests: ["pm.test('code VERSION_MISMATCH', () => pm.expect(json.code).to.eql('VERSION_MISMATCH'));"],
  },
  {
    name: 'Agent sets the ticket pending with the current version',
    operationId: 'updateTicket',
    as: 'agentToken',
    status: 200,
    pathParams: { id: '{{ticketId}}' },
    headers: { 'If-Match': '"{{version}}"' },
    body: { status: 'pending' },
    tests: [
      "pm.test('now pending', () => pm.expect(json.status).to.eql('pending'));",
      "pm.test('version bumped', () => pm.expect(json.version).to.be.above(Number(pm.collectionVariables.get('version'))));",
    ],
  },
  {
    name: 'An invalid transition is a 409',
    operationId: 'updateTicket',
    as: 'agentToken',
    status: 409,
    pathParams: { id: '{{ticketId}}' },
    body: { status: 'closed' },
    tests: ["pm.test('code INVALID_TRANSITION', () => pm.expect(json.code).to.eql('INVALID_TRANSITION'));"],
  },
  {
    name: 'Agent adds an internal note',
    operationId: 'createComment',
    as: 'agentToken',
    status: 201,
    pathParams: { id: '{{ticketId}}' },
    body: { body: 'Printer queue was paused.', visibility: 'internal' },
  },
  {
    name: 'Requester sees public comments only',
    operationId: 'listComments',
    as: 'requesterToken',
    status: 200,
    pathParams: { id: '{{ticketId}}' },
    tests: [
      "pm.test('no internal note', () => json.data.forEach((c) => pm.expect(c.visibility).to.eql('public')));",
      "pm.test('the requester comment is there', () => pm.expect(json.data.length).to.be.at.least(1));",
    ],
  },
  {
    name: 'Agent reads the ticket timeline',
    operationId: 'listTicketEvents',
    as: 'agentToken',
    status: 200,
    pathParams: { id: '{{ticketId}}' },
    tests: [
      "pm.test('creation is in the timeline', () => pm.expect(json.data.map((e) => e.action)).to.include('ticket.created'));",
    ],
  },
  {
    name: 'A ticket that does not exist is a 404',
    operationId: 'getTicket',
    as: 'requesterToken',
    status: 404,
    pathParams: { id: '999999999' },
  },
  {
    name: 'An invalid body is a 422 with field errors',
    operationId: 'createTicket',
    as: 'requesterToken',
    status: 422,
    body: { title: '', description: 'x', unknownField: true },
    tests: [
      "pm.test('field errors listed', () => pm.expect(json.errors).to.be.an('array').that.is.not.empty);",
    ],
  },
  {
    name: 'No token is a 401',
    operationId: 'listTickets',
    status: 401,
  },
  {
    name: 'Requester signs out',
    operationId: 'logout',
    as: 'requesterToken',
    status: 204,
    body: { refreshToken: '{{requesterRefresh}}' },
  },
];

/** Resolves local $refs so a schema stands alone inside a Postman test script (ajv there is draft-07). */
function inline(doc: Json, node: Json, seen: string[] = []): Json {
  if (Array.isArray(node)) return node.map((n) => inline(doc, n, seen));
  if (!node || typeof node !== 'object') return node;
  if (typeof node.$ref === 'string') {
    if (seen.includes(node.$ref)) return {}; // recursive schema: accept anything below this level
    const target = node.$ref
      .replace(/^#\//, '')
      .split('/')
      .reduce((acc: Json, key: string) => acc?.[key.replace(/~1/g, '/').replace(/~0/g, '~')], doc);
    if (!target) throw new Error(`unresolved $ref ${node.$ref}`);
    return inline(doc, target, [...seen, node.$ref]);
  }
  const out: Json = {};
  for (const [k, v] of Object.entries(node)) {
    if (k === 'example' || k === 'examples' || k === 'discriminator' || k === 'xml') continue;
    out[k] = inline(doc, v, seen);
  }
  return tupleToDraft07(out);
}

/** JSON Schema 2020-12 tuples (prefixItems, zod's z.tuple) in the draft-07 form that ajv 6 and the faker know. */
function tupleToDraft07(schema: Json): Json {
  if (!Array.isArray(schema.prefixItems)) return schema;
  const { prefixItems, items, ...rest } = schema;
  return { ...rest, items: prefixItems, additionalItems: items ?? true };
}

function downgradeTuples(node: Json): Json {
  if (Array.isArray(node)) return node.map(downgradeTuples);
  if (!node || typeof node !== 'object') return node;
  const out: Json = {};
  for (const [k, v] of Object.entries(node)) out[k] = downgradeTuples(v);
  return tupleToDraft07(out);
}

function findOperation(doc: Json, operationId: string): { method: string; path: string; op: Json } {
  for (const [p, item] of Object.entries<Json>(doc.paths))
    for (const [method, op] of Object.entries<Json>(item))
      if (op?.operationId === operationId) return { method: method.toUpperCase(), path: p, op };
  throw new Error(
    `operationId ${operationId} is not in the OpenAPI document (the main flow drifted from the API)`,
  );
}

function flowItem(doc: Json, step: Step): Json {
  const { method, path: p, op } = findOperation(doc, step.operationId);
  const response = op.responses?.[String(step.status)];
  if (!response)
    throw new Error(`${step.operationId} does not document a ${step.status} response (step "${step.name}")`);
  const [mediaType, media] = Object.entries<Json>(response.content ?? {})[0] ?? [];
  const schema = media?.schema ? inline(doc, media.schema) : null;

  const urlPath = p.replace(/\{(\w+)\}/g, (_m, name) => {
    const value = step.pathParams?.[name];
    if (value === undefined) throw new Error(`step "${step.name}" lacks path parameter ${name}`);
    return value;
  });
  const query = Object.entries(step.query ?? {}).map(([key, value]) => ({ key, value }));
  const raw = `{{baseUrl}}${urlPath}${query.length ? `?${query.map((q) => `${q.key}=${q.value}`).join('&')}` : ''}`;

  const exec = [
    `pm.test('status is ${step.status}', () => pm.response.to.have.status(${step.status}));`,
    ...(mediaType
      ? [
          `pm.test('content type is ${mediaType}', () => pm.expect(pm.response.headers.get('Content-Type') || '').to.include('${mediaType}'));`,
        ]
      : []),
    "pm.test('X-Request-Id is echoed', () => pm.expect(pm.response.headers.get('X-Request-Id')).to.be.a('string'));",
    'let json = null;',
    'try { json = pm.response.text() ? pm.response.json() : null; } catch (e) { json = null; }',
    ...(schema
      ? [
          `const schema = ${JSON.stringify(schema)};`,
          `pm.test('body matches the ${step.operationId} ${step.status} schema of the OpenAPI document', () => pm.response.to.have.jsonSchema(schema));`,
        ]
      : []),
    // The remaining checks read fields; skip them when the status is already wrong (its own failure says why).
    `if (pm.response.code === ${step.status} && json) {`,
    ...(step.tests ?? []).map((line) => `  ${line}`),
    '}',
  ];

  return {
    name: step.name,
    request: {
      method,
      description: `${op.summary} — \`${step.operationId}\`, expects ${step.status}.`,
      header: [
        ...(step.body !== undefined ? [{ key: 'Content-Type', value: 'application/json' }] : []),
        { key: 'Accept', value: 'application/json' },
        ...Object.entries(step.headers ?? {}).map(([key, value]) => ({ key, value })),
      ],
      url: { raw, host: ['{{baseUrl}}'], path: urlPath.split('/').filter(Boolean), query },
      auth: step.as
        ? { type: 'bearer', bearer: [{ key: 'token', value: `{{${step.as}}}`, type: 'string' }] }
        : { type: 'noauth' },
      ...(step.body !== undefined
        ? {
            body: {
              mode: 'raw',
              raw: JSON.stringify(step.body, null, 2),
              options: { raw: { language: 'json' } },
            },
          }
        : {}),
    },
    event: [
      { listen: 'test', script: { type: 'text/javascript', exec } },
      ...(step.prerequest
        ? [{ listen: 'prerequest', script: { type: 'text/javascript', exec: step.prerequest } }]
        : []),
    ],
  };
}

async function convert(doc: Json): Promise<Json> {
  return new Promise((resolve, reject) => {
    Converter.convertV2(
      { type: 'json', data: downgradeTuples(doc) },
      { folderStrategy: 'Tags', parametersResolution: 'Example', includeAuthInfoInExample: false },
      ((err: Error | null, result: Json) => {
        if (err) reject(err);
        else if (!result.result) reject(new Error(`openapi-to-postmanv2: ${result.reason}`));
        else resolve(result.output[0].data);
      }) as Parameters<typeof Converter.convertV2>[2],
    );
  });
}

export async function buildCollection(doc: Json): Promise<Json> {
  const collection = await convert(doc);
  collection.info.name = 'Helpdesk API';
  collection.info.description =
    `${doc.info.description}\n\nSet \`baseUrl\`, then run "${FLOW_FOLDER}" (admin credentials in the environment) ` +
    'or sign in with "auth / Sign in" and put the accessToken into the `accessToken` variable.';
  // Every generated request uses the bearer token in {{accessToken}} unless it says otherwise.
  collection.auth = { type: 'bearer', bearer: [{ key: 'token', value: '{{accessToken}}', type: 'string' }] };
  const vars = new Map<string, string>((collection.variable ?? []).map((v: Json) => [v.key, v.value]));
  vars.set('baseUrl', 'http://127.0.0.1:3000');
  for (const key of ['accessToken', 'adminToken', 'agentToken', 'requesterToken', 'runId'])
    if (!vars.has(key)) vars.set(key, '');
  collection.variable = [...vars].map(([key, value]) => ({ key, value, type: 'string' }));
  collection.item = [
    {
      name: FLOW_FOLDER,
      description:
        'Runnable contract test: each request asserts status, content type and the OpenAPI response schema. ' +
        'Needs adminEmail/adminPassword (environment) of a running server.',
      item: MAIN_FLOW.map((step) => flowItem(doc, step)),
    },
    ...collection.item,
  ];
  return collection;
}

export function buildEnvironment(
  baseUrl = 'http://127.0.0.1:3000',
  admin = { email: '', password: '' },
): Json {
  return {
    name: 'Helpdesk (local)',
    values: [
      { key: 'baseUrl', value: baseUrl, enabled: true },
      { key: 'adminEmail', value: admin.email, enabled: true },
      { key: 'adminPassword', value: admin.password, enabled: true, type: 'secret' },
    ],
  };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const specFile = path.resolve(process.argv[2] ?? path.join(ARTIFACTS, 'openapi', 'openapi.json'));
  (async () => {
    const doc = JSON.parse(await readFile(specFile, 'utf8'));
    const collection = await buildCollection(doc);
    await mkdir(POSTMAN_DIR, { recursive: true });
    await writeFile(COLLECTION, `${JSON.stringify(collection, null, 2)}\n`);
    await writeFile(ENVIRONMENT, `${JSON.stringify(buildEnvironment(), null, 2)}\n`);
    const count = (items: Json[]): number =>
      items.reduce((n: number, i: Json) => n + (i.item ? count(i.item) : 1), 0);
    console.log(
      `Postman collection (${count(collection.item)} requests, "${FLOW_FOLDER}" with ${MAIN_FLOW.length} steps) → ${path.relative(process.cwd(), COLLECTION)}`,
    );
    console.log(`Environment → ${path.relative(process.cwd(), ENVIRONMENT)}`);
  })().catch((err) => {
    console.error('postman failed:', err);
    process.exit(1);
  });
}
