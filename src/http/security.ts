import type { IncomingMessage, ServerResponse } from 'node:http';
import cors from '@fastify/cors';
import type { FastifyInstance } from 'fastify';
import helmet, { type HelmetOptions } from 'helmet';
import type { Config } from '../config.js';

/** Response headers browser clients may read (API.md "Headers clients rely on"). */
export const EXPOSED_HEADERS = [
  'X-Request-Id',
  'ETag',
  'Link',
  'Location',
  'RateLimit-Limit',
  'RateLimit-Remaining',
  'RateLimit-Reset',
  'Retry-After',
  'Idempotent-Replayed',
];

const ALLOWED_HEADERS = ['Authorization', 'Content-Type', 'If-Match', 'Idempotency-Key', 'X-Request-Id'];

const HELMET_OPTIONS: Readonly<HelmetOptions> = {
  contentSecurityPolicy: {
    useDefaults: false,
    directives: {
      defaultSrc: ["'none'"],
      frameAncestors: ["'none'"],
      baseUri: ["'none'"],
      formAction: ["'none'"],
    },
  },
  // Lets a front-end on a sibling subdomain embed attachments; CORS (not CORP) governs API reads.
  crossOriginResourcePolicy: { policy: 'same-site' },
  referrerPolicy: { policy: 'no-referrer' },
};

/**
 * The headers helmet sets with these options, computed once: they depend on the options only, never on
 * the request (no CSP nonces), so there is no reason to rebuild them, CSP string included, per request.
 */
export function helmetHeaders(options: Readonly<HelmetOptions> = HELMET_OPTIONS): Record<string, string> {
  const headers: Record<string, string> = {};
  const res = {
    setHeader(name: string, value: string | number | readonly string[]) {
      headers[name.toLowerCase()] = Array.isArray(value) ? value.join(', ') : String(value);
    },
    removeHeader(name: string) {
      delete headers[name.toLowerCase()];
    },
  };
  let failed: unknown;
  helmet(options)({} as IncomingMessage, res as unknown as ServerResponse, (err?: unknown) => {
    failed = err;
  });
  if (failed) throw failed;
  return headers;
}

/**
 * CORS, security headers and no-store. Must be registered before the auth hook so a CORS preflight
 * (OPTIONS, never authenticated) is answered by @fastify/cors before authentication runs, and so
 * error responses (401, 429, ...) carry the CORS headers too.
 *
 * - CORS: only the CORS_ORIGINS origins (or any with "*"); none when the list is empty. Bearer tokens,
 *   not cookies, so no credentials.
 * - Helmet's headers (computed once, set on every response): the API serves JSON only, so its CSP forbids
 *   everything; the /docs page sets its own CSP (@fastify/swagger-ui staticCSP), which replaces this one on
 *   its responses.
 * - Cache-Control: no-store on every /api response and on every request that carried credentials:
 *   tickets, tokens and user data must never sit in a shared or browser cache.
 */
export async function registerSecurity(app: FastifyInstance, config: Pick<Config, 'corsOrigins'>) {
  const origins = config.corsOrigins;
  await app.register(cors, {
    origin: origins.includes('*') ? '*' : origins.length > 0 ? origins : false,
    methods: ['GET', 'HEAD', 'POST', 'PATCH', 'PUT', 'DELETE', 'OPTIONS'],
    allowedHeaders: ALLOWED_HEADERS,
    exposedHeaders: EXPOSED_HEADERS,
    credentials: false,
    maxAge: 600,
    strictPreflight: false,
  });

  const security = Object.entries(helmetHeaders());
  // Callback hooks: no promise per request. Set before the route runs, so a route (the /docs CSP) or an
  // error response can still replace any of them.
  app.addHook('onRequest', (_request, reply, done) => {
    for (const [name, value] of security) reply.header(name, value);
    done();
  });

  app.addHook('onSend', (request, reply, payload, done) => {
    if (
      !reply.hasHeader('cache-control') &&
      (request.url.startsWith('/api/') || request.headers.authorization || request.ctx?.actor)
    ) {
      reply.header('cache-control', 'no-store');
    }
    done(null, payload);
  });
}
