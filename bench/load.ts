import autocannon from 'autocannon';

/** One thing to measure: a request shape (path and body may vary per request). */
export interface Scenario {
  name: string;
  /**
   * What the row is compared with: list/get rows with the list floor, health (the liveness probe) with the
   * bare-Fastify hello floor.
   */
  kind: 'floor' | 'list' | 'get' | 'search' | 'write' | 'auth' | 'health';
  method: 'GET' | 'POST';
  path: () => string;
  headers?: Record<string, string>;
  body?: () => string;
  /** The status a correct answer has; anything else is counted as a failure. */
  expectStatus: number;
}

export interface LoadResult {
  name: string;
  kind: Scenario['kind'];
  requests: number;
  reqPerSec: number;
  latencyMs: { p50: number; p90: number; p95: number; p99: number; max: number; mean: number };
  /** Responses whose status was not the expected one, by status. */
  unexpected: Record<string, number>;
  errors: number;
  timeouts: number;
  durationS: number;
  connections: number;
}

function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1));
  return sorted[i]!;
}

function round(n: number, digits = 2): number {
  const f = 10 ** digits;
  return Math.round(n * f) / f;
}

async function fire(
  baseUrl: string,
  s: Scenario,
  connections: number,
  durationS: number,
  onResponse?: (status: number, ms: number) => void,
): Promise<autocannon.Result> {
  let finish!: (err: unknown, result: autocannon.Result) => void;
  const done = new Promise<autocannon.Result>((resolve, reject) => {
    finish = (err, result) => (err ? reject(err) : resolve(result));
  });
  const instance = autocannon(
    {
      url: baseUrl,
      connections,
      duration: durationS,
      pipelining: 1,
      timeout: 10, // seconds per request
      headers: { 'content-type': 'application/json', ...s.headers },
      method: s.method,
      requests: [
        {
          setupRequest: (req) => ({ ...req, method: s.method, path: s.path(), body: s.body?.() }),
        },
      ],
    },
    (err, result) => finish(err, result),
  );
  if (onResponse) {
    instance.on('response', (_client, statusCode, _bytes, responseTime) =>
      onResponse(statusCode, responseTime),
    );
  }
  return done;
}

/**
 * Warm-up (not measured), then `durationS` seconds at `connections` concurrent connections.
 * Percentiles come from every response's latency (exact, not bucketed); req/s counts correct answers only.
 */
export async function measure(
  baseUrl: string,
  s: Scenario,
  opts: { connections: number; durationS: number; warmupS: number; beforeMeasured?: () => Promise<void> },
): Promise<LoadResult> {
  if (opts.warmupS > 0) await fire(baseUrl, s, opts.connections, opts.warmupS);
  await opts.beforeMeasured?.();

  let latencies = new Float64Array(1 << 16);
  let n = 0;
  let ok = 0;
  const unexpected: Record<string, number> = {};
  const started = process.hrtime.bigint();
  const result = await fire(baseUrl, s, opts.connections, opts.durationS, (status, ms) => {
    if (n === latencies.length) {
      const bigger = new Float64Array(latencies.length * 2);
      bigger.set(latencies);
      latencies = bigger;
    }
    latencies[n++] = ms;
    if (status === s.expectStatus) ok++;
    else unexpected[status] = (unexpected[status] ?? 0) + 1;
  });
  const elapsedS = Number(process.hrtime.bigint() - started) / 1e9;
  const sorted = latencies.subarray(0, n).sort();
  let sum = 0;
  for (const v of sorted) sum += v;
  return {
    name: s.name,
    kind: s.kind,
    requests: n,
    reqPerSec: round(ok / Math.max(result.duration ?? elapsedS, 0.001), 1),
    latencyMs: {
      p50: round(percentile(sorted, 0.5)),
      p90: round(percentile(sorted, 0.9)),
      p95: round(percentile(sorted, 0.95)),
      p99: round(percentile(sorted, 0.99)),
      max: round(n ? sorted[n - 1]! : Number.NaN),
      mean: round(n ? sum / n : Number.NaN),
    },
    unexpected,
    errors: result.errors,
    timeouts: result.timeouts,
    durationS: round(result.duration ?? elapsedS),
    connections: opts.connections,
  };
}
