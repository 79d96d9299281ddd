import { timingSafeEqual } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import type pg from 'pg';
import { Counter, collectDefaultMetrics, Gauge, Registry } from 'prom-client';
import type { Config } from '../config.js';
import { UnauthenticatedError } from '../lib/errors.js';
import { clusterMetricsSource, inClusterWorker } from './cluster-metrics.js';

function sameToken(given: string, expected: string): boolean {
  const a = Buffer.from(given);
  const b = Buffer.from(expected);
  return a.length === b.length && timingSafeEqual(a, b);
}

const DURATION_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10] as const;

interface Series {
  labels: { method: string; route: string; status_code: string };
  /** Observations per bucket (not cumulative); the last slot counts those above the largest bound. */
  counts: number[];
  sum: number;
  count: number;
}

/**
 * http_request_duration_seconds, exposed exactly as a prom-client Histogram with the labels method, route and
 * status_code would be (same buckets, same text and JSON, so an AggregatorRegistry merges it too), but cheap
 * to observe on every request: prom-client validates, copies and hashes the label object on each observe,
 * while here a route's series is found through two small maps and updated in place.
 */
export class RequestDurationHistogram {
  readonly name = 'http_request_duration_seconds';
  readonly help = 'Time to answer HTTP requests, by method, route template and status code';
  readonly type = 'histogram';
  readonly aggregator = 'sum';
  private readonly byRoute = new Map<string, Map<string, Series>>();

  observe(method: string, route: string, statusCode: number, seconds: number): void {
    let byRoute = this.byRoute.get(route);
    if (!byRoute) {
      byRoute = new Map();
      this.byRoute.set(route, byRoute);
    }
    // Method and status are few per route; one short key keeps the lookup a single map access.
    const key = method + statusCode;
    let series = byRoute.get(key);
    if (!series) {
      series = {
        labels: { method, route, status_code: String(statusCode) },
        counts: new Array<number>(DURATION_BUCKETS.length + 1).fill(0),
        sum: 0,
        count: 0,
      };
      byRoute.set(key, series);
    }
    let i = 0;
    while (i < DURATION_BUCKETS.length && seconds > DURATION_BUCKETS[i]!) i++;
    series.counts[i]!++;
    series.sum += seconds;
    series.count++;
  }

  /** prom-client's Registry prints this (the layout of Histogram#getForPromString). */
  async getForPromString() {
    const values: Array<{
      labels: Record<string, string | number>;
      sharedLabels: Record<string, string>;
      value: number;
      metricName: string;
    }> = [];
    for (const byRoute of this.byRoute.values()) {
      for (const s of byRoute.values()) {
        let acc = 0;
        for (let i = 0; i < DURATION_BUCKETS.length; i++) {
          acc += s.counts[i]!;
          values.push({
            labels: { le: DURATION_BUCKETS[i]! },
            sharedLabels: s.labels,
            value: acc,
            metricName: `${this.name}_bucket`,
          });
        }
        values.push(
          {
            labels: { le: '+Inf' },
            sharedLabels: s.labels,
            value: s.count,
            metricName: `${this.name}_bucket`,
          },
          { labels: {}, sharedLabels: s.labels, value: s.sum, metricName: `${this.name}_sum` },
          { labels: {}, sharedLabels: s.labels, value: s.count, metricName: `${this.name}_count` },
        );
      }
    }
    return { name: this.name, help: this.help, type: this.type, values, aggregator: this.aggregator };
  }

  /** The JSON form (Registry#getMetricsAsJSON, cluster aggregation): labels and shared labels merged. */
  async get() {
    const data = await this.getForPromString();
    return {
      ...data,
      values: data.values.map(({ labels, sharedLabels, value, metricName }) => ({
        labels: { ...labels, ...sharedLabels },
        value,
        metricName,
      })),
    };
  }

  reset(): void {
    this.byRoute.clear();
  }
}

/**
 * Prometheus metrics on GET /metrics (text exposition format):
 * - http_request_duration_seconds{method,route,status_code}: histogram of every answered request, by route
 *   template (never the raw URL, so ids do not explode the label set);
 * - db_pool_connections{state="total|idle|waiting"} and db_pool_max: the pg pool;
 * - jobs_*: the job queue (src/modules/jobs/jobs.metrics.ts);
 * - the process metrics of prom-client (CPU, memory, event-loop lag, GC, handles), prefixed process_/nodejs_.
 * With METRICS_TOKEN set the endpoint requires `Authorization: Bearer <METRICS_TOKEN>`. In cluster mode the
 * answer merges every HTTP worker's registry (src/http/cluster-metrics.ts).
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

  const duration = new RequestDurationHistogram();
  registry.registerMetric(duration as unknown as Parameters<Registry['registerMetric']>[0]);
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

  // In cluster mode a scrape answers for every worker (merged by the primary), else for this process.
  const merged = inClusterWorker() ? clusterMetricsSource(registry) : null;

  // A callback hook: no promise per request.
  app.addHook('onResponse', (request, reply, done) => {
    const route = request.routeOptions.url ?? 'unmatched';
    if (route !== '/metrics') {
      duration.observe(request.method, route, reply.statusCode, reply.elapsedTime / 1000);
      if (reply.statusCode === 429) rateLimited.inc();
    }
    done();
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
      if (merged) {
        try {
          return await merged();
        } catch (err) {
          request.log.warn({ err }, 'cluster metrics not merged; answering for this worker only');
        }
      }
      return registry.metrics();
    },
  );
}
