import cors from '@fastify/cors';
import helmet from '@fastify/helmet';
import type { FastifyInstance } from 'fastify';
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

/**
 * CORS, security headers and no-store. Must be registered before the auth hook so a CORS preflight
 * (OPTIONS, never authenticated) is answered by @fastify/cors before authentication runs, and so
 * error responses (401, 429, ...) carry the CORS headers too.
 *
 * - CORS: only the CORS_ORIGINS origins (or any with "*"); none when the list is empty. Bearer tokens,
 *   not cookies, so no credentials.
 * - Helmet: the API serves JSON only, so its CSP forbids everything; the /docs page sets its own CSP
 *   (@fastify/swagger-ui staticCSP), which replaces this one on its responses.
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

  await app.register(helmet, {
    global: true,
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
  });

  app.addHook('onSend', async (request, reply) => {
    if (reply.hasHeader('cache-control')) return;
    if (request.url.startsWith('/api/') || request.headers.authorization || request.ctx?.actor) {
      reply.header('cache-control', 'no-store');
    }
  });
}
