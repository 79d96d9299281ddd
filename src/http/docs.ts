import fastifySwagger from '@fastify/swagger';
import fastifySwaggerUi from '@fastify/swagger-ui';
import type { FastifyInstance } from 'fastify';
import { jsonSchemaTransform, jsonSchemaTransformObject } from 'fastify-type-provider-zod';

export const API_DESCRIPTION = `Self-hosted helpdesk / ticketing API.

* Authenticate with \`POST /api/v1/auth/login\`, then send \`Authorization: Bearer <accessToken>\`.
* Scripts and assistants use a personal API token (\`POST /api/v1/auth/tokens\`): \`Authorization: Bearer hd_pat_…\`.
  It acts as its owner within its scopes; each operation names the scope it needs (\`apiToken\` security
  requirement), and a call outside them answers 403 INSUFFICIENT_SCOPE.
* Every error is RFC 9457 \`application/problem+json\` with a machine \`code\` and the request's \`traceId\`.
* Send \`X-Request-Id\` to correlate your logs with ours; it is echoed on every response.
* Unknown body fields and unknown query parameters are rejected (422 VALIDATION_FAILED) on every route, never
  silently ignored. Integers in paths and queries are plain decimal digits; no text may contain NUL (U+0000).`;

// biome-ignore lint/suspicious/noExplicitAny: the document is plain JSON walked structurally.
type OpenApiDoc = Record<string, any>;

const PROBLEM_EXAMPLES: Record<number, { code: string; title: string; detail: string }> = {
  400: { code: 'MALFORMED_REQUEST', title: 'Malformed request', detail: 'Body is not valid JSON.' },
  401: { code: 'UNAUTHENTICATED', title: 'Authentication required', detail: 'Missing or invalid token.' },
  403: { code: 'FORBIDDEN', title: 'Forbidden', detail: 'Your role may not do this.' },
  404: { code: 'NOT_FOUND', title: 'Not found', detail: 'It does not exist or is not visible to you.' },
  409: {
    code: 'INVALID_TRANSITION',
    title: 'Invalid transition',
    detail: 'Cannot move from closed; allowed: none.',
  },
  412: { code: 'VERSION_MISMATCH', title: 'Version mismatch', detail: 'If-Match "3" does not match "4".' },
  413: { code: 'PAYLOAD_TOO_LARGE', title: 'Payload too large', detail: 'Body exceeds 1048576 bytes.' },
  431: {
    code: 'HEADERS_TOO_LARGE',
    title: 'Request header fields too large',
    detail: 'The request headers are larger than the server accepts (16 KiB).',
  },
  415: { code: 'UNSUPPORTED_MEDIA_TYPE', title: 'Unsupported media type', detail: 'Type not allowed.' },
  422: { code: 'VALIDATION_FAILED', title: 'Validation failed', detail: 'The request is invalid.' },
  429: { code: 'RATE_LIMITED', title: 'Too many requests', detail: 'Retry after 30 seconds.' },
  500: { code: 'INTERNAL_ERROR', title: 'Internal server error', detail: 'Quote the traceId.' },
  503: { code: 'SERVICE_UNAVAILABLE', title: 'Service unavailable', detail: 'Retry later.' },
};

const STATUS_TEXT: Record<number, string> = {
  200: 'OK',
  201: 'Created',
  202: 'Accepted',
  204: 'No Content',
  304: 'Not Modified',
};

function problemExample(status: number) {
  const e = PROBLEM_EXAMPLES[status] ?? { code: 'ERROR', title: 'Error', detail: 'See code.' };
  return {
    type: `/problems/${e.code.toLowerCase().replace(/_/g, '-')}`,
    title: e.title,
    status,
    code: e.code,
    detail: e.detail,
    instance: '/api/v1/tickets/1042',
    traceId: '7f0c2b7e-3f55-4b8a-9d61-0c1f5f2d9e11',
    ...(status === 422
      ? { errors: [{ path: 'body.title', message: 'Too small: expected >= 1 chars' }] }
      : {}),
  };
}

const ALWAYS_POSSIBLE: Record<string, string> = {
  400: 'Malformed request (bad URL encoding, broken framing, unparseable JSON or wrong content type)',
  422: 'Validation failed (also: an unknown query parameter)',
  431: 'Request headers larger than 16 KiB',
};

function problemResponse(status: number, description: string): OpenApiDoc {
  return {
    description,
    content: {
      'application/problem+json': {
        schema: { $ref: '#/components/schemas/Problem' },
        example: problemExample(status),
      },
    },
  };
}

/**
 * Final touches on the generated document, docs only (validation and serialization are untouched):
 * error responses are documented as application/problem+json (what the error handler sends) with an
 * example, and component schemas nothing references (zod's unused input/output twins) are dropped.
 */
export function polishOpenApi(doc: OpenApiDoc): OpenApiDoc {
  for (const pathItem of Object.values<OpenApiDoc>(doc.paths ?? {})) {
    for (const op of Object.values<OpenApiDoc>(pathItem)) {
      if (!op || typeof op !== 'object' || !op.responses) continue;
      // Answers any request can get, whatever its route: a malformed URL or framing (400), an unknown query
      // parameter (422), headers over 16 KiB (431); and any body can be too large (413).
      for (const [status, description] of Object.entries(ALWAYS_POSSIBLE))
        op.responses[status] ??= problemResponse(Number(status), description);
      if (op.requestBody)
        op.responses['413'] ??= problemResponse(
          413,
          'Body larger than the server accepts (BODY_LIMIT_BYTES)',
        );
      for (const [status, response] of Object.entries<OpenApiDoc>(op.responses)) {
        const code = Number(status);
        // @fastify/swagger's placeholder for a response schema without a description of its own.
        if (response && (!response.description || response.description === 'Default Response'))
          response.description = STATUS_TEXT[code] ?? 'Response';
        if (!(code >= 400) || !response?.content) continue;
        const media = response.content['application/json'] ?? response.content['application/problem+json'];
        if (!media) continue;
        response.content = {
          'application/problem+json': { ...media, example: media.example ?? problemExample(code) },
        };
      }
    }
  }
  const schemas: OpenApiDoc | undefined = doc.components?.schemas;
  if (schemas) {
    const refs = (value: unknown): string[] => {
      const out = new Set<string>();
      const walk = (v: unknown) => {
        if (Array.isArray(v)) v.forEach(walk);
        else if (v && typeof v === 'object') {
          for (const [k, x] of Object.entries(v)) {
            if (k === '$ref' && typeof x === 'string' && x.startsWith('#/components/schemas/'))
              out.add(x.slice('#/components/schemas/'.length));
            else walk(x);
          }
        }
      };
      walk(value);
      return [...out];
    };
    const used = new Set<string>();
    const queue = refs({ ...doc, components: { ...doc.components, schemas: {} } });
    while (queue.length) {
      const name = queue.pop()!;
      if (used.has(name)) continue;
      used.add(name);
      queue.push(...refs(schemas[name]));
    }
    for (const name of Object.keys(schemas)) if (!used.has(name)) delete schemas[name];
  }
  return doc;
}

/**
 * OpenAPI 3.1 generated from the routes' zod schemas (fastify-type-provider-zod's transforms),
 * served at /openapi.json, with Swagger UI at /docs (assets bundled, no CDN).
 * Must be registered before the routes it documents.
 */
export async function registerDocs(app: FastifyInstance, version: string) {
  await app.register(fastifySwagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'Helpdesk API',
        version,
        description: API_DESCRIPTION,
        license: { name: 'MIT', identifier: 'MIT' },
      },
      servers: [{ url: '/' }],
      tags: [
        { name: 'auth', description: 'Login, tokens and the current user' },
        { name: 'tickets', description: 'Tickets, their lifecycle and timeline' },
        { name: 'comments', description: 'Public replies and internal notes' },
        { name: 'attachments', description: 'Files on tickets and comments' },
        { name: 'users', description: 'User management' },
        { name: 'teams', description: 'Teams of agents' },
        { name: 'audit', description: 'The audit trail' },
        { name: 'webhooks', description: 'Signed, retried deliveries of change events to other systems' },
        { name: 'reports', description: 'Support figures and CSV export' },
        { name: 'changes', description: 'Change feed and live stream (Server-Sent Events)' },
        { name: 'sla', description: 'SLA policies: response and resolution targets in business time' },
        { name: 'drafts', description: 'Proposed replies and changes that a person approves' },
        { name: 'health', description: 'Liveness, readiness and metrics' },
        { name: 'jobs', description: 'Background jobs' },
        { name: 'inbound', description: 'Email in: tickets and replies by mail' },
      ],
      components: {
        securitySchemes: {
          bearerAuth: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT' },
          apiToken: {
            type: 'http',
            scheme: 'bearer',
            bearerFormat: 'hd_pat_…',
            description:
              'Personal API token. Scopes: tickets:read, tickets:write, comments:write, drafts:write, ' +
              'users:read, admin. Each operation lists the one it needs; the owner’s role still applies.',
          },
          inboundToken: {
            type: 'http',
            scheme: 'bearer',
            description:
              'INBOUND_EMAIL_TOKEN: the shared secret of the mail server or forwarder (POST /inbound/email only).',
          },
        },
      },
      security: [{ bearerAuth: [] }],
    },
    transform: jsonSchemaTransform,
    transformObject: (input) => polishOpenApi(jsonSchemaTransformObject(input) as OpenApiDoc),
  });

  await app.register(fastifySwaggerUi, {
    routePrefix: '/docs',
    uiConfig: { docExpansion: 'list', deepLinking: true, persistAuthorization: true },
    staticCSP: true,
  });

  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());
}
