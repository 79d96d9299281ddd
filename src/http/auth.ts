import fastifyJwt from '@fastify/jwt';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { UnauthenticatedError } from '../lib/errors.js';
import type { Actor, RequestContext } from '../modules/auth/actor.js';
import { type AccessClaims, JWT_AUDIENCE, JWT_ISSUER } from '../modules/auth/token-signer.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** Actor (null on public routes), trace id, ip and user agent: what services receive. */
    ctx: RequestContext;
  }
}

declare module '@fastify/jwt' {
  interface FastifyJWT {
    payload: AccessClaims;
    user: AccessClaims;
  }
}

/**
 * The only place that makes a route public. Everything else requires a valid access token
 * (deny by default). Entries are "METHOD url" as declared in the route, or a "prefix*" for docs assets.
 */
export const PUBLIC_ROUTES: readonly string[] = [
  'GET /healthz',
  'GET /readyz',
  'GET /openapi.json',
  'GET /metrics', // protected by METRICS_TOKEN when set (its own check), not by a user token
  'GET /docs*',
  'HEAD /docs*',
  'POST /api/v1/auth/register',
  'POST /api/v1/auth/login',
  'POST /api/v1/auth/refresh',
  // Authenticates itself: a bearer header, or a single-use ?token= for EventSource (src/modules/changes).
  'GET /api/v1/changes/stream',
];

export function isPublicRoute(method: string, url: string | undefined): boolean {
  if (url === undefined) return true; // no route matched: the not-found handler answers 404
  const key = `${method} ${url}`;
  return PUBLIC_ROUTES.some((p) => (p.endsWith('*') ? key.startsWith(p.slice(0, -1)) : p === key));
}

export interface AuthOptions {
  secret: string;
  accessTokenTtl: number;
  /** The current state of a user (cached briefly): null when missing or deactivated. */
  findActor(id: string): Promise<Actor | null>;
}

/**
 * Registers @fastify/jwt with HS256, issuer and audience pinned, and the one auth hook that builds
 * request.ctx. A token that verifies but is not an access token (typ) is rejected; so is the token
 * of a user who has since been deactivated (seen within the actor cache's lifetime). Tokens are
 * signed by modules/auth/token-signer.ts with the same settings.
 */
export async function registerAuth(
  app: FastifyInstance,
  opts: AuthOptions,
): Promise<{ verifyAccessToken(token: string): Promise<Actor> }> {
  await app.register(fastifyJwt, {
    secret: opts.secret,
    sign: { algorithm: 'HS256', iss: JWT_ISSUER, aud: JWT_AUDIENCE, expiresIn: opts.accessTokenTtl },
    verify: { algorithms: ['HS256'], allowedIss: JWT_ISSUER, allowedAud: JWT_AUDIENCE },
  });

  app.decorateRequest('ctx', null as unknown as RequestContext);

  async function authenticate(request: FastifyRequest): Promise<Actor> {
    const header = request.headers.authorization;
    if (!header || !/^Bearer\s+\S+$/i.test(header)) {
      throw new UnauthenticatedError('Send an access token: Authorization: Bearer <accessToken>.');
    }
    return verifyAccessToken(header.replace(/^Bearer\s+/i, ''));
  }

  /** The check every bearer token goes through; also used by a live stream to re-check its token. */
  async function verifyAccessToken(token: string): Promise<Actor> {
    let payload: FastifyRequest['user'];
    try {
      payload = app.jwt.verify<FastifyRequest['user']>(token);
    } catch (err) {
      const code = (err as { code?: string }).code;
      if (code === 'FST_JWT_AUTHORIZATION_TOKEN_EXPIRED' || code === 'FAST_JWT_EXPIRED') {
        throw new UnauthenticatedError('The access token has expired; refresh it.', 'TOKEN_EXPIRED');
      }
      throw new UnauthenticatedError('The access token is invalid.');
    }
    if (payload.typ !== 'access' || typeof payload.sub !== 'string') {
      throw new UnauthenticatedError('The token is not an access token.');
    }
    const actor = await opts.findActor(payload.sub);
    if (!actor) throw new UnauthenticatedError('The account is deactivated or no longer exists.');
    return actor;
  }

  app.addHook('onRequest', async (request) => {
    const ua = request.headers['user-agent'];
    request.ctx = {
      actor: null,
      traceId: request.id,
      ip: request.ip ?? null,
      userAgent: typeof ua === 'string' ? ua.slice(0, 512) : null,
    };
    if (isPublicRoute(request.method, request.routeOptions.url)) return;
    request.ctx.actor = await authenticate(request);
  });
  return { verifyAccessToken };
}
