import fastifyJwt from '@fastify/jwt';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { UnauthenticatedError } from '../lib/errors.js';
import { TtlCache } from '../lib/ttl-cache.js';
import type { Actor, RequestContext } from '../modules/auth/actor.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** Actor (null on public routes), trace id, ip and user agent: what services receive. */
    ctx: RequestContext;
  }
}

declare module '@fastify/jwt' {
  interface FastifyJWT {
    payload: { sub: string; role: Actor['role']; typ: 'access' };
    user: { sub: string; role: Actor['role']; typ: 'access' };
  }
}

export const JWT_ISSUER = 'helpdesk-api';
export const JWT_AUDIENCE = 'helpdesk-api';

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
  'POST /api/v1/auth/password-reset',
  'POST /api/v1/auth/password-reset/confirm',
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
  /** Loads the current state of a user: null when missing or deactivated. */
  loadActor(id: string): Promise<Actor | null>;
  /** How long a loaded actor may be reused; deactivation/demotion must bite within 5 s. */
  actorCacheMs?: number;
}

export interface TokenSigner {
  signAccess(actor: Pick<Actor, 'id' | 'role'>): string;
  /** Forget cached actor state (after role change or deactivation in this process). */
  forget(userId: string): void;
  /**
   * The check every request's bearer token goes through, for callers outside the request hook (a live
   * stream re-checks its token with it until the token would be refused).
   */
  verifyAccessToken(token: string): Promise<Actor>;
}

/**
 * Registers @fastify/jwt with HS256, issuer and audience pinned, and the one auth hook that builds
 * request.ctx. A token that verifies but is not an access token (typ) is rejected; so is the token
 * of a user who has since been deactivated (seen within actorCacheMs).
 */
export async function registerAuth(app: FastifyInstance, opts: AuthOptions): Promise<TokenSigner> {
  await app.register(fastifyJwt, {
    secret: opts.secret,
    sign: { algorithm: 'HS256', iss: JWT_ISSUER, aud: JWT_AUDIENCE, expiresIn: opts.accessTokenTtl },
    verify: { algorithms: ['HS256'], allowedIss: JWT_ISSUER, allowedAud: JWT_AUDIENCE },
  });

  const cache = new TtlCache<string, Actor | null>(opts.actorCacheMs ?? 2000);

  app.decorateRequest('ctx', null as unknown as RequestContext);

  async function authenticate(request: FastifyRequest): Promise<Actor> {
    const header = request.headers.authorization;
    if (!header || !/^Bearer\s+\S+$/i.test(header)) {
      throw new UnauthenticatedError('Send an access token: Authorization: Bearer <accessToken>.');
    }
    return verifyAccessToken(header.replace(/^Bearer\s+/i, ''));
  }

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
    let actor = cache.get(payload.sub);
    if (actor === undefined) {
      actor = await opts.loadActor(payload.sub);
      cache.set(payload.sub, actor);
    }
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

  return {
    signAccess: (actor) => app.jwt.sign({ sub: actor.id, role: actor.role, typ: 'access' }),
    forget: (userId) => cache.delete(userId),
    verifyAccessToken,
  };
}
