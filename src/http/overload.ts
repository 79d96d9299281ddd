import { getHeapStatistics } from 'node:v8';
import underPressure from '@fastify/under-pressure';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Config } from '../config.js';
import { ServiceUnavailableError } from '../lib/errors.js';

/** Liveness and metrics must answer even while requests are being shed (a probe is not load). */
const NEVER_SHED = new Set(['/healthz', '/metrics']);
const RETRY_AFTER_S = 5;
const SAMPLE_INTERVAL_MS = 500;

/**
 * Load shedding with @fastify/under-pressure: while the event loop lags more than
 * OVERLOAD_MAX_EVENT_LOOP_DELAY_MS, or the heap holds more than OVERLOAD_MAX_HEAP_USED_BYTES
 * (default 90 % of the V8 heap limit), new requests are answered 503 SERVICE_UNAVAILABLE with
 * Retry-After at once instead of queueing behind the ones already running.
 *
 * The event-loop delay counts only from the second sample after the app is ready: the samples before
 * span its own start-up (imports, schema compilation), which delayed no request. Without this a
 * freshly started or restarted process answered its first requests 503.
 */
export async function registerOverloadProtection(app: FastifyInstance, config: Pick<Config, 'overload'>) {
  const maxHeapUsedBytes =
    config.overload.maxHeapUsedBytes || Math.floor(getHeapStatistics().heap_size_limit * 0.9);
  let lastWarn = 0;
  let delayCountsFrom = Number.POSITIVE_INFINITY;
  app.addHook('onReady', async () => {
    delayCountsFrom = Date.now() + 2 * SAMPLE_INTERVAL_MS;
  });
  await app.register(underPressure, {
    maxEventLoopDelay: config.overload.maxEventLoopDelayMs,
    maxHeapUsedBytes,
    sampleInterval: SAMPLE_INTERVAL_MS,
    retryAfter: RETRY_AFTER_S,
    pressureHandler: async (request: FastifyRequest, _reply, type, value) => {
      if (NEVER_SHED.has(request.routeOptions.url ?? '')) return;
      if (type === 'eventLoopDelay' && Date.now() < delayCountsFrom) return;
      if (Date.now() - lastWarn > 5000) {
        lastWarn = Date.now();
        request.log.warn({ type, value }, 'under pressure: shedding requests with 503');
      }
      throw new ServiceUnavailableError('The server is overloaded; try again shortly.', RETRY_AFTER_S);
    },
  });
}
