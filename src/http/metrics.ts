import { timingSafeEqual } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import type pg from 'pg';
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';
import type { Config } from '../config.js';
import { UnauthenticatedError } from '../lib/errors.js';

function sameToken(given: string, expected: string): boolean {
  const a = Buffer.from(given);
  const b = Buffer.from(expected);
  return a.length === b.length && timingSafeEqual(a, b);
}

/**
 * Prometheus metrics on GET /metrics (text exposition format):
 * - http_request_duration_seconds{method,route,status_code}: histogram of every answered request, by route
 *   template (never the raw URL, so ids do not explode the label set);
 * - db_pool_connections{state="total|idle|waiting"} and db_pool_max: the pg pool;
 * - jobs_*: the job queue (src/modules/jobs/jobs.metrics.ts);
 * - the process metrics of prom-client (CPU, memory, event-loop lag, GC, handles), prefixed process_/nodejs_.
 * With METRICS_TOKEN set the endpoint requires `Authorization: Bearer <METRICS_TOKEN>`.
 * One registry per app instance, so several apps in one process (tests) do not collide.
 */
export async function registerMetrics(
  app: FastifyInstance,
  config: Pick<Config, 'metricsToken' | 'db'>,
  pool: pg.Pool,
  /** More metrics from modules (e.g. the job queue), registered on this app's registry. */
  extra: ReadonlyArray<(registry: Registry) => void> = [],
) {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  for (const add of extra) add(registry);

  const duration = new Histogram({
    name: 'http_request_duration_seconds',
    help: 'Time to answer HTTP requests, by method, route template and status code',
    labelNames: ['method', 'route', 'status_code'] as const,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [registry],
  });
  const rateLimited = new Counter({
    name: 'http_requests_rate_limited_total',
    help: 'Requests answered 429 by the rate limiter',
    registers: [registry],
  });
  new Gauge({
    name: 'db_pool_connections',
    help: 'PostgreSQL pool connections by state',
    labelNames: ['state'] as const,
    registers: [registry],
    collect() {
      this.set({ state: 'total' }, pool.totalCount);
      this.set({ state: 'idle' }, pool.idleCount);
      this.set({ state: 'waiting' }, pool.waitingCount);
    },
  });
  new Gauge({
    name: 'db_pool_max',
    help: 'Maximum size of the PostgreSQL pool',
    registers: [registry],
    collect() {
      this.set(config.db.poolMax);
    },
  });

  app.addHook('onResponse', async (request, reply) => {
    const route = request.routeOptions.url ?? 'unmatched';
    if (route === '/metrics') return;
    duration.observe(
      { method: request.method, route, status_code: String(reply.statusCode) },
      reply.elapsedTime / 1000,
    );
    if (reply.statusCode === 429) rateLimited.inc();
  });

  app.get(
    '/metrics',
    {
      schema: {
        operationId: 'getMetrics',
        tags: ['health'],
        summary: 'Prometheus metrics',
        description:
          'Prometheus text exposition format: request durations by route and status, pool usage, process metrics. ' +
          'Requires `Authorization: Bearer <METRICS_TOKEN>` when the server has a METRICS_TOKEN.',
        security: [],
      },
    },
    async (request, reply) => {
      if (config.metricsToken) {
        const match = /^Bearer\s+(\S+)$/i.exec(request.headers.authorization ?? '');
        if (!match || !sameToken(match[1]!, config.metricsToken)) {
          throw new UnauthenticatedError('Send the metrics token: Authorization: Bearer <METRICS_TOKEN>.');
        }
      }
      reply.header('cache-control', 'no-store').type(registry.contentType);
      return registry.metrics();
    },
  );
}
