import rateLimit from '@fastify/rate-limit';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { Redis } from 'ioredis';
import type { Config } from '../config.js';
import { isClusterWorker } from '../lib/cluster-worker.js';
import { RateLimitedError } from '../lib/errors.js';
import { isPublicRoute } from './auth.js';
import { ClusterRateLimitStore } from './cluster-rate-limit.js';

/** Probes, metrics and docs are never limited: a load balancer or scraper must always get through. */
const EXEMPT = ['/healthz', '/readyz', '/metrics', '/openapi.json', '/docs'];
const AUTH_PREFIX = '/api/v1/auth/';

export type RateLimitConfig = Pick<Config, 'rateLimitMax' | 'redisUrl' | 'redisKeyPrefix'>;

/**
 * Per API token when called with one, per user when signed in (the auth hook has run), else per client IP
 * (TRUST_PROXY decides which IP). A token has its own budget: a busy script does not starve its owner.
 */
export function rateLimitKey(request: FastifyRequest): string {
  const actor = request.ctx?.actor;
  if (actor?.apiToken) return `token:${actor.apiToken.id}`;
  return actor ? `user:${actor.id}` : `ip:${request.ip}`;
}

/** Counts a request the auth hook is about to refuse with 401; throws the 429 once the IP's budget is spent. */
export type RejectedRequestLimiter = (request: FastifyRequest, reply: FastifyReply) => Promise<void>;

const EXEMPT_URLS = new Set(EXEMPT);
const EXEMPT_PREFIXES = EXEMPT.map((p) => `${p}/`);

function isExemptUrl(url: string): boolean {
  return EXEMPT_URLS.has(url) || EXEMPT_PREFIXES.some((p) => url.startsWith(p));
}

/**
 * Registers @fastify/rate-limit for every route registered after it:
 * - a global budget of RATE_LIMIT_MAX requests per minute per user (or per IP when anonymous);
 * - the public /api/v1/auth/* routes (register, login, refresh) without their own `config.rateLimit` get a
 *   tighter per-IP budget (a tenth of the global one); a route's own `config: { rateLimit: {...} }` wins;
 * - RateLimit-Limit/Remaining/Reset on every limited response, Retry-After + problem+json RATE_LIMITED on 429;
 * - counters in Redis (shared by all instances) when REDIS_URL is set, else in memory: in this process, or
 *   in a cluster worker (WEB_CONCURRENCY > 1) in the primary's memory, one budget for all workers
 *   (src/http/cluster-rate-limit.ts). If Redis (or the primary) does not answer, requests are let through
 *   (skipOnError) rather than failing the API.
 *
 * - requests the auth hook refuses (no token, a bad, expired or revoked one) count per client IP against
 *   RATE_LIMIT_MAX per minute through the returned limiter, which the auth hook calls before its 401:
 *   the route's own limiter never runs for them (it runs after authentication).
 *
 * The limiter runs as a route-level onRequest hook, i.e. after the global auth hook built request.ctx.
 */
export async function registerRateLimit(
  app: FastifyInstance,
  config: RateLimitConfig,
): Promise<RejectedRequestLimiter> {
  let redis: Redis | undefined;
  if (config.redisUrl) {
    let lastWarn = 0;
    redis = new Redis(config.redisUrl, {
      connectTimeout: 1000,
      commandTimeout: 500,
      maxRetriesPerRequest: 1,
      // Fail fast while disconnected (skipOnError lets the request through) instead of queueing.
      enableOfflineQueue: false,
      retryStrategy: (times) => Math.min(times * 200, 2000),
    });
    redis.on('error', (err) => {
      if (Date.now() - lastWarn < 10_000) return;
      lastWarn = Date.now();
      app.log.warn({ err }, 'rate-limit Redis unavailable; requests are not limited meanwhile');
    });
    const client = redis;
    app.addHook('onClose', async () => {
      await client.quit().catch(() => client.disconnect());
    });
    // Start limited: wait (bounded) for the first connection so the first requests are counted too.
    const ready = await new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => resolve(false), 3000);
      client.once('ready', () => {
        clearTimeout(timer);
        resolve(true);
      });
      client.once('error', () => {
        clearTimeout(timer);
        resolve(client.status === 'ready');
      });
    });
    if (!ready)
      app.log.warn('rate-limit Redis not reachable at start-up; requests are not limited until it is');
  }

  const authMax = Math.max(1, Math.floor(config.rateLimitMax / 10));
  // Must be added before the plugin's own onRoute hook (hooks run in the order they are added).
  app.addHook('onRoute', (route) => {
    // Exempt routes get no limiter hook at all (rather than a hook that asks an allow-list on every request).
    if (isExemptUrl(route.url) && route.config?.rateLimit === undefined) {
      route.config = { ...route.config, rateLimit: false };
      return;
    }
    if (!route.url.startsWith(AUTH_PREFIX) || route.config?.rateLimit !== undefined) return;
    const methods = Array.isArray(route.method) ? route.method : [route.method];
    // Only the anonymous auth endpoints (register, login, refresh): /auth/me and friends keep the per-user budget.
    if (!methods.every((m) => isPublicRoute(m, route.url))) return;
    route.config = {
      ...route.config,
      rateLimit: { max: authMax, timeWindow: 60_000, keyGenerator: (req) => `ip:${req.ip}` },
    };
  });

  await app.register(rateLimit, {
    global: true,
    max: config.rateLimitMax,
    timeWindow: 60_000,
    hook: 'onRequest',
    enableDraftSpec: true,
    keyGenerator: rateLimitKey,
    ...(redis
      ? { redis, nameSpace: config.redisKeyPrefix }
      : isClusterWorker()
        ? { store: ClusterRateLimitStore }
        : {}),
    skipOnError: true,
    errorResponseBuilder: (_request, context) =>
      new RateLimitedError(context.ttl / 1000, `Too many requests; retry in ${context.after}.`),
  });

  // Its own counter (keyed by IP), so refused requests cannot spend a signed-in user's budget.
  const limiter = app.rateLimit({
    max: config.rateLimitMax,
    timeWindow: 60_000,
    keyGenerator: (req) => `rejected:${req.ip}`,
  });
  return async (request, reply) => {
    await limiter.call(app, request, reply);
  };
}
