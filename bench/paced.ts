/**
 * Open-loop load at a fixed rate, paced evenly: request i is due at t0 + i / rate, whether or not earlier
 * answers came back, and its latency is measured from that due time (not from when the client got round
 * to sending it), so a stalled server or client is charged for the whole wait: no coordinated omission.
 *
 * Why not autocannon -R: it gives each connection its per-second quota and sends it in one burst at the
 * start of every second, so "250 req/s" arrives as bursts of 250 and p99 measures the burst's queue.
 * No maintained Node tool offers a true open-loop mode (wrk2 is C and unmaintained); this is ~100 lines
 * on node:http with a keep-alive agent (sockets opened as needed, so a slow answer never delays the
 * next send).
 */
import { fork } from 'node:child_process';
import http from 'node:http';
import { fileURLToPath } from 'node:url';
import type { Scenario } from './load.js';

export interface PacedResult {
  name: string;
  kind: Scenario['kind'];
  /** Requests per second asked for. */
  rate: number;
  /** Requests per second actually sent (due times kept) and answered over the run. */
  sentPerSec: number;
  answeredPerSec: number;
  requests: number;
  /** From the due time to the last byte of the answer. */
  latencyMs: { p50: number; p90: number; p99: number; max: number };
  /** How late the client itself sent (a busy bench process): p99 of send time − due time. */
  sendLagP99Ms: number;
  unexpected: Record<string, number>;
  errors: number;
  /** Sockets the agent opened: concurrency the rate needed. */
  sockets: number;
  durationS: number;
}

function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1))]!;
}

const round = (n: number) => Math.round(n * 100) / 100;

interface Sample {
  latencyMs: number;
  lagMs: number;
  status: number | null;
}

async function runAt(
  baseUrl: string,
  s: Scenario,
  rate: number,
  durationS: number,
): Promise<{ samples: Sample[]; sockets: number; elapsedS: number }> {
  const url = new URL(baseUrl);
  const agent = new http.Agent({ keepAlive: true, maxSockets: 512 });
  let sockets = 0;
  const countSocket = () => {
    sockets++;
  };
  const headers = { 'content-type': 'application/json', ...s.headers };
  const total = Math.round(rate * durationS);
  const intervalMs = 1000 / rate;
  const samples: Sample[] = [];
  const pending = new Set<Promise<void>>();

  const send = (dueAt: number) => {
    const sentAt = performance.now();
    const body = s.body?.();
    const p = new Promise<void>((resolve) => {
      const done = (status: number | null) => {
        samples.push({ latencyMs: performance.now() - dueAt, lagMs: sentAt - dueAt, status });
        resolve();
      };
      const req = http.request(
        {
          host: url.hostname,
          port: url.port,
          method: s.method,
          path: s.path(),
          headers: body === undefined ? headers : { ...headers, 'content-length': Buffer.byteLength(body) },
          agent,
          timeout: 10_000,
        },
        (res) => {
          res.resume();
          res.on('end', () => done(res.statusCode ?? null));
          res.on('error', () => done(null));
        },
      );
      req.on('socket', (socket) => {
        if (!(socket as { counted?: boolean }).counted) {
          (socket as { counted?: boolean }).counted = true;
          countSocket();
        }
      });
      req.on('timeout', () => req.destroy(new Error('timeout')));
      req.on('error', () => done(null));
      req.end(body);
    });
    pending.add(p);
    void p.then(() => pending.delete(p));
  };

  const t0 = performance.now() + 5;
  let next = 0;
  await new Promise<void>((resolve) => {
    const tick = () => {
      const now = performance.now();
      // Everything due by now goes out now (a late timer sends its backlog at once, each still timed from its due time).
      while (next < total && t0 + next * intervalMs <= now) {
        send(t0 + next * intervalMs);
        next++;
      }
      if (next >= total) return resolve();
      setTimeout(tick, Math.max(0, t0 + next * intervalMs - performance.now()));
    };
    setTimeout(tick, 5);
  });
  await Promise.all(pending);
  const elapsedS = (performance.now() - t0) / 1000;
  agent.destroy();
  return { samples, sockets, elapsedS };
}

/** Warm-up at the same rate (not measured), then `durationS` seconds at `rate` requests per second. */
export async function paced(
  baseUrl: string,
  s: Scenario,
  opts: { rate: number; durationS: number; warmupS: number },
): Promise<PacedResult> {
  if (opts.warmupS > 0) await runAt(baseUrl, s, opts.rate, opts.warmupS);
  const { samples, sockets, elapsedS } = await runAt(baseUrl, s, opts.rate, opts.durationS);
  const latencies = Float64Array.from(samples, (x) => x.latencyMs).sort();
  const lags = Float64Array.from(samples, (x) => x.lagMs).sort();
  const unexpected: Record<string, number> = {};
  let errors = 0;
  let ok = 0;
  for (const x of samples) {
    if (x.status === null) errors++;
    else if (x.status === s.expectStatus) ok++;
    else unexpected[x.status] = (unexpected[x.status] ?? 0) + 1;
  }
  return {
    name: s.name,
    kind: s.kind,
    rate: opts.rate,
    sentPerSec: round(samples.length / opts.durationS),
    answeredPerSec: round(ok / elapsedS),
    requests: samples.length,
    latencyMs: {
      p50: round(percentile(latencies, 0.5)),
      p90: round(percentile(latencies, 0.9)),
      p99: round(percentile(latencies, 0.99)),
      max: round(latencies.length ? latencies[latencies.length - 1]! : Number.NaN),
    },
    sendLagP99Ms: round(percentile(lags, 0.99)),
    unexpected,
    errors,
    sockets,
    durationS: round(elapsedS),
  };
}

/** What bench/paced-child.ts is sent: a scenario as data. */
export interface PacedJob {
  baseUrl: string;
  scenario: Omit<Scenario, 'path' | 'body'>;
  paths: string[];
  bodies?: string[];
  opts: { rate: number; durationS: number; warmupS: number };
}

/**
 * paced() in a fresh child process (bench/paced-child.ts), the way wrk2 runs apart from what drives it: in the
 * bench process, after the load runs, the client's own pauses showed up as the server's latency (send lag p99
 * 3.5–5.5 ms against 1.1–2 ms from a fresh process, same server).
 */
export async function pacedInFreshProcess(
  baseUrl: string,
  s: Scenario,
  opts: { rate: number; durationS: number; warmupS: number },
): Promise<PacedResult> {
  const n = Math.ceil(opts.rate * (opts.durationS + opts.warmupS)) + 1;
  const { path, body, ...scenario } = s;
  const job: PacedJob = {
    baseUrl,
    scenario,
    paths: Array.from({ length: n }, () => path()),
    bodies: body ? Array.from({ length: n }, () => body()) : undefined,
    opts,
  };
  // The child beside this module: paced-child.ts under tsx, paced-child.js in a build.
  const ext = import.meta.url.endsWith('.ts') ? 'ts' : 'js';
  const child = fork(fileURLToPath(new URL(`./paced-child.${ext}`, import.meta.url)), [], {
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  return new Promise<PacedResult>((resolve, reject) => {
    let result: PacedResult | undefined;
    child.once('message', (m) => {
      result = m as PacedResult;
    });
    child.once('error', reject);
    child.once('exit', (code) =>
      result ? resolve(result) : reject(new Error(`paced run ended without a result (exit ${code})`)),
    );
    child.send(job);
  });
}

/** The paced runs as a table: one row per scenario and rate. */
export function pacedTable(results: PacedResult[], targetP99Ms: number, targetRate: number): string {
  const headers = [
    'scenario (paced, open loop)',
    'rate',
    'answered/s',
    'p50 ms',
    'p90 ms',
    'p99 ms',
    'max ms',
    'send lag p99',
    'sockets',
    'non-expected',
    'target',
  ];
  const rows = results.map((r) => {
    const bad = Object.entries(r.unexpected).map(([status, n]) => `${n}×${status}`);
    if (r.errors) bad.push(`${r.errors} errors`);
    const target =
      r.rate === targetRate
        ? r.latencyMs.p99 <= targetP99Ms
          ? `p99 ≤ ${targetP99Ms} ✓`
          : `p99 ≤ ${targetP99Ms} ✗`
        : '';
    return [
      r.name,
      String(r.rate),
      r.answeredPerSec.toFixed(1),
      r.latencyMs.p50.toFixed(2),
      r.latencyMs.p90.toFixed(2),
      r.latencyMs.p99.toFixed(2),
      r.latencyMs.max.toFixed(1),
      r.sendLagP99Ms.toFixed(2),
      String(r.sockets),
      bad.length ? bad.join(', ') : '0',
      target,
    ];
  });
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i]!.length)));
  const line = (cells: string[]) =>
    `| ${cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join(' | ')} |`;
  const sep = `|${widths.map((w, i) => (i === 0 ? '-'.repeat(w + 2) : `${'-'.repeat(w + 1)}:`)).join('|')}|`;
  return [line(headers), sep, ...rows.map(line)].join('\n');
}
