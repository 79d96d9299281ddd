import fastifyJwt from '@fastify/jwt';
import { createVerifier } from 'fast-jwt';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { ApiTokenScope } from '../db/schema/index.js';
import { UnauthenticatedError } from '../lib/errors.js';
import { TtlCache } from '../lib/ttl-cache.js';
import type { Actor, RequestContext } from '../modules/auth/actor.js';
import { API_TOKEN_PREFIX, hashApiToken } from '../modules/auth/api-token-secret.js';
import { AccessDeniedError } from '../modules/auth/permissions.js';
import {
  type AccessClaims,
  JWT_AUDIENCE,
  JWT_ISSUER,
  JWT_REQUIRED_CLAIMS,
} from '../modules/auth/token-signer.js';
import { problemSchema } from './problem.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** Actor (null on public routes), trace id, ip and user agent: what services receive. */
    ctx: RequestContext;
  }
  interface FastifyContextConfig {
    /**
     * The personal-API-token scope this route needs (`config: { scope: 'tickets:write' }`). A route
     * without one refuses API tokens (403 INSUFFICIENT_SCOPE); session access tokens are not affected.
     */
    scope?: ApiTokenScope;
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
 * A HEAD is public when its GET is: it answers like the GET, without the body.
 */
export const PUBLIC_ROUTES: readonly string[] = [
  'GET /healthz',
  'GET /readyz',
  'GET /openapi.json',
  'GET /metrics', // protected by METRICS_TOKEN when set (its own check), not by a user token
  'GET /docs*',
  'POST /api/v1/auth/register',
  'POST /api/v1/auth/login',
  'POST /api/v1/auth/refresh',
  'POST /api/v1/auth/password-reset',
  'POST /api/v1/auth/password-reset/confirm',
  // Authenticates itself with INBOUND_EMAIL_TOKEN (a mail server, not a user): src/modules/inbound.
  'POST /api/v1/inbound/email',
  // Authenticates itself: a bearer header, or a single-use ?token= for EventSource (src/modules/changes).
  'GET /api/v1/changes/stream',
];

export function isPublicRoute(method: string, url: string | undefined): boolean {
  if (url === undefined) return true; // no route matched: the not-found handler answers 404
  const key = `${method === 'HEAD' ? 'GET' : method} ${url}`;
  return PUBLIC_ROUTES.some((p) => (p.endsWith('*') ? key.startsWith(p.slice(0, -1)) : p === key));
}

/** A personal API token as the auth hook sees it (joined with its owner's current state). */
export interface ApiTokenCredential {
  id: string;
  scopes: readonly ApiTokenScope[];
  expiresAt: Date;
  revokedAt: Date | null;
  lastUsedAt: Date | null;
  /** The owner, or null when deactivated. */
  owner: Actor | null;
}

export interface AuthOptions {
  secret: string;
  accessTokenTtl: number;
  /** The current state of a user (cached briefly): null when missing or deactivated. */
  findActor(id: string): Promise<Actor | null>;
  /**
   * True while the session (the access token's `sid`) of this user is neither revoked nor expired
   * (cached briefly, like the actor; forgotten at once in this process when it ends).
   */
  isSessionLive(sessionId: string, userId: string): Promise<boolean>;
  /** The API token with this SHA-256 hash, or null. Read on every request: revocation bites at once. */
  findApiToken(hash: string): Promise<ApiTokenCredential | null>;
  /** Records a use of the token (called at most once a minute per token and process). */
  touchApiToken(id: string): Promise<void>;
  /**
   * Runs before a 401 is answered: the per-IP limiter for unauthenticated and bad-token requests
   * (throws the 429). Without it, a flood of bad tokens would never be limited.
   */
  limitRejected?(request: FastifyRequest, reply: FastifyReply): Promise<void>;
}

/** 403 for an API token used outside its scopes (audited as access.denied like every 403). */
export class InsufficientScopeError extends AccessDeniedError {
  constructor(required: ApiTokenScope | undefined, method: string, url: string) {
    super(
      required ? `token scope ${required}` : 'token scope (none accepted)',
      { type: 'route', id: `${method} ${url}` },
      required
        ? `This API token lacks the scope "${required}" that ${method} ${url} needs.`
        : `${method} ${url} cannot be called with an API token; sign in instead.`,
      'INSUFFICIENT_SCOPE',
    );
  }
}

const TOUCH_INTERVAL_MS = 60_000;

/**
 * Tokens already verified, keyed by the token itself, until they expire (never longer than 10 minutes): a
 * token seen again skips the HMAC and the claim checks. fast-jwt's own cache does the same but keys it by a
 * SHA-256 of the token, computed on every request (with the header decoded to pick the hash) — a few percent
 * of a list request's CPU. Only successes are kept, so a failure is always re-checked; the oldest entry goes
 * past 1,000.
 */
export class VerifiedTokenCache {
  private readonly entries = new Map<string, { payload: object; from: number; until: number }>();

  constructor(
    private readonly max = 1000,
    private readonly ttlMs = 600_000,
    private readonly now: () => number = Date.now,
  ) {}

  get(token: string): object | undefined {
    const e = this.entries.get(token);
    if (!e) return undefined;
    const now = this.now();
    if (now > e.until) this.entries.delete(token);
    else if (now >= e.from) return e.payload;
    return undefined;
  }

  /** Remembers a verified payload; its exp (and nbf) bound how long, as they bound the verification. */
  set(token: string, payload: { exp?: unknown; nbf?: unknown }): void {
    const now = this.now();
    const until =
      typeof payload.exp === 'number' ? Math.min(now + this.ttlMs, payload.exp * 1000) : now + this.ttlMs;
    const from = typeof payload.nbf === 'number' ? payload.nbf * 1000 : 0;
    this.entries.delete(token);
    this.entries.set(token, { payload, from, until });
    if (this.entries.size > this.max) {
      const oldest = this.entries.keys().next().value;
      if (oldest !== undefined) this.entries.delete(oldest);
    }
  }
}

/**
 * Registers @fastify/jwt with HS256, issuer and audience pinned and the registered claims required (tokens
 * are signed by modules/auth/token-signer.ts with the same settings), and the one auth hook that builds request.ctx. Two kinds of bearer credential:
 * - a session access token (JWT): verified, `typ` must be access, its session (`sid`) must be live and
 *   its user active (both re-read at most every 2 s);
 * - a personal API token (`hd_pat_…`): looked up by hash on every request (revocation and owner
 *   deactivation bite at once), and limited to the scope the route declares in `config.scope`.
 */
export async function registerAuth(
  app: FastifyInstance,
  opts: AuthOptions,
): Promise<{
  verifyAccessToken(token: string): Promise<Actor>;
  verifyAccessClaims(token: string): AccessClaims & { exp: number };
}> {
  const verifyOptions = {
    algorithms: ['HS256' as const],
    allowedIss: JWT_ISSUER,
    allowedAud: JWT_AUDIENCE,
    requiredClaims: [...JWT_REQUIRED_CLAIMS],
  };
  await app.register(fastifyJwt, {
    secret: opts.secret,
    sign: { algorithm: 'HS256', iss: JWT_ISSUER, aud: JWT_AUDIENCE, expiresIn: opts.accessTokenTtl },
    verify: verifyOptions,
  });
  // The request path verifies with one fast-jwt verifier built once (app.jwt.verify re-merges its options on
  // every call). Algorithm, issuer, audience and required claims are the same as for signing.
  const verifyToken = createVerifier({ key: opts.secret, ...verifyOptions });
  const verified = new VerifiedTokenCache();

  const lastTouched = new TtlCache<string, true>(TOUCH_INTERVAL_MS);

  app.decorateRequest('ctx', null as unknown as RequestContext);

  // The OpenAPI document says, per operation, which token scope it takes (or that tokens are refused),
  // and that an API token outside its scopes gets 403. Routes registered after this point.
  app.addHook('onRoute', (route) => {
    const methods = Array.isArray(route.method) ? route.method : [route.method];
    const schema = route.schema as
      | { hide?: boolean; description?: string; security?: unknown; response?: Record<string, unknown> }
      | undefined;
    // HEAD twins of GET routes share the GET's schema (and its documentation).
    if (!schema || schema.hide || methods.every((m) => m === 'HEAD' || isPublicRoute(m, route.url))) return;
    const scope = route.config?.scope;
    schema.security = scope ? [{ bearerAuth: [] }, { apiToken: [scope] }] : [{ bearerAuth: [] }];
    const note = scope
      ? `API tokens: needs scope \`${scope}\`.`
      : 'API tokens: not accepted (403 INSUFFICIENT_SCOPE); use a signed-in session.';
    schema.description = schema.description ? `${schema.description}\n\n${note}` : note;
    if (schema.response && !schema.response[403]) schema.response[403] = problemSchema;
  });

  /**
   * The signature, expiry and kind of a session access token (no database read): its claims, or a 401.
   * A live stream checks the session behind them itself, batched for all streams (src/modules/changes).
   */
  function verifyAccessClaims(token: string): AccessClaims & { exp: number } {
    let payload: FastifyRequest['user'] & { exp?: number };
    try {
      const known = verified.get(token) as (FastifyRequest['user'] & { exp?: number }) | undefined;
      payload = known ?? (verifyToken(token) as FastifyRequest['user'] & { exp?: number });
      if (!known) verified.set(token, payload);
    } catch (err) {
      const code = (err as { code?: string }).code;
      if (code === 'FST_JWT_AUTHORIZATION_TOKEN_EXPIRED' || code === 'FAST_JWT_EXPIRED') {
        throw new UnauthenticatedError('The access token has expired; refresh it.', 'TOKEN_EXPIRED');
      }
      throw new UnauthenticatedError('The access token is invalid.');
    }
    if (payload.typ !== 'access' || typeof payload.sub !== 'string' || typeof payload.sid !== 'string') {
      throw new UnauthenticatedError('The token is not an access token.');
    }
    return { ...payload, exp: Number(payload.exp) };
  }

  /** The check every session access token goes through. */
  async function verifyAccessToken(token: string): Promise<Actor> {
    const payload = verifyAccessClaims(token);
    if (!(await opts.isSessionLive(payload.sid, payload.sub))) {
      throw new UnauthenticatedError('The session has ended; sign in again.');
    }
    const actor = await opts.findActor(payload.sub);
    if (!actor) throw new UnauthenticatedError('The account is deactivated or no longer exists.');
    return actor;
  }

  async function authenticateApiToken(request: FastifyRequest, secret: string): Promise<Actor> {
    const token = await opts.findApiToken(hashApiToken(secret));
    if (!token || token.revokedAt) throw new UnauthenticatedError('The API token is invalid or revoked.');
    if (token.expiresAt.getTime() <= Date.now())
      throw new UnauthenticatedError('The API token has expired.', 'TOKEN_EXPIRED');
    if (!token.owner) throw new UnauthenticatedError('The account is deactivated or no longer exists.');
    const stale = !token.lastUsedAt || Date.now() - token.lastUsedAt.getTime() >= TOUCH_INTERVAL_MS;
    if (stale && !lastTouched.get(token.id)) {
      lastTouched.set(token.id, true);
      // Off the request path: a lost "last used" update must not fail the call.
      opts.touchApiToken(token.id).catch((err) => request.log.warn({ err }, 'could not record token use'));
    }
    return { ...token.owner, apiToken: { id: token.id, scopes: token.scopes } };
  }

  async function authenticate(request: FastifyRequest): Promise<Actor> {
    const header = request.headers.authorization;
    const match = header ? /^Bearer\s+(\S+)$/i.exec(header) : null;
    if (!match) {
      throw new UnauthenticatedError('Send an access token: Authorization: Bearer <accessToken>.');
    }
    const credential = match[1]!;
    return credential.startsWith(API_TOKEN_PREFIX)
      ? authenticateApiToken(request, credential)
      : verifyAccessToken(credential);
  }

  // Whether a route is public, per route (its config object is one per route and method) and method.
  const publicByRoute = new WeakMap<object, Map<string, boolean>>();
  function isPublic(method: string, url: string | undefined, config: object | undefined): boolean {
    if (!config) return isPublicRoute(method, url);
    let byMethod = publicByRoute.get(config);
    if (!byMethod) {
      byMethod = new Map();
      publicByRoute.set(config, byMethod);
    }
    let known = byMethod.get(method);
    if (known === undefined) {
      known = isPublicRoute(method, url);
      byMethod.set(method, known);
    }
    return known;
  }

  app.addHook('onRequest', async (request, reply) => {
    const ua = request.headers['user-agent'];
    request.ctx = {
      actor: null,
      traceId: request.id,
      ip: request.ip ?? null,
      userAgent: typeof ua === 'string' ? ua.slice(0, 512) : null,
    };
    const route = request.routeOptions;
    const url = route.url;
    if (isPublic(request.method, url, route.config)) return;
    let actor: Actor;
    try {
      actor = await authenticate(request);
    } catch (err) {
      if (err instanceof UnauthenticatedError && opts.limitRejected) await opts.limitRejected(request, reply);
      throw err;
    }
    request.ctx.actor = actor;
    if (actor.apiToken) {
      const required = route.config.scope;
      if (!required || !actor.apiToken.scopes.includes(required)) {
        throw new InsufficientScopeError(required, request.method, url ?? request.url);
      }
    }
  });
  return { verifyAccessToken, verifyAccessClaims };
}
