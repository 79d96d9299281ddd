import { mkdir, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import type { LoadResult } from './load.js';

export interface Row extends LoadResult {
  /** req/s of this row divided by the floor's req/s in the same run. */
  vsFloor: number | null;
  /** Highest VmRSS of the measured server process during this scenario (MB). */
  peakRssMb: number;
  /**
   * CPU time (user + system) the server process spent per answered request. Unlike req/s it hardly
   * depends on what else runs on the machine: the number to compare between noisy runs.
   */
  serverCpuMsPerReq: number;
}

export interface SuiteResult {
  tickets: number;
  rows: Row[];
  /** VmHWM of the API server at the end of the suite (MB): its peak over its whole life. */
  serverVmHwmMb: number;
  loadBefore: number[];
  loadAfter: number[];
}

export const TARGETS = {
  listVsFloor: 0.6,
  /** /healthz req/s against the bare-Fastify hello route of the floor, in the same run. */
  healthVsHello: 0.8,
  p99Ms: 25,
  growthAt1M: 1.5,
  commonSearchP95Ms: 150,
  rssMb: 200,
  /** p99 of list and get at a paced 250 req/s (bench/paced.ts). */
  pacedP99Ms: 10,
  pacedRate: 250,
};

export const mb = (bytes: number) => Math.round((bytes / 1024 / 1024) * 10) / 10;

function pad(s: string, n: number, right = false): string {
  return right ? s.padStart(n) : s.padEnd(n);
}

function table(headers: string[], rows: string[][], rightFrom = 1): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) =>
    `| ${cells.map((c, i) => pad(c, widths[i]!, i >= rightFrom)).join(' | ')} |`;
  const sep = `|${widths.map((w, i) => (i >= rightFrom ? `${'-'.repeat(w + 1)}:` : '-'.repeat(w + 2))).join('|')}|`;
  return [line(headers), sep, ...rows.map(line)].join('\n');
}

const fmt = (n: number, digits = 1) => (Number.isFinite(n) ? n.toFixed(digits) : '–');

function failures(r: LoadResult): string {
  const bad = Object.entries(r.unexpected).map(([status, n]) => `${n}×${status}`);
  if (r.errors) bad.push(`${r.errors} errors`);
  if (r.timeouts) bad.push(`${r.timeouts} timeouts`);
  return bad.length ? bad.join(', ') : '0';
}

function verdict(r: Row): string {
  const notes: string[] = [];
  if (r.kind === 'list' || r.kind === 'get') {
    if (r.vsFloor !== null) notes.push(r.vsFloor >= TARGETS.listVsFloor ? '≥0.6×✓' : '<0.6×✗');
    notes.push(r.latencyMs.p99 <= TARGETS.p99Ms ? 'p99✓' : 'p99✗');
  }
  if (r.kind === 'health' && r.vsFloor !== null)
    notes.push(r.vsFloor >= TARGETS.healthVsHello ? '≥0.8×hello✓' : '<0.8×hello✗');
  if (r.kind === 'search' || r.kind === 'write')
    notes.push(r.latencyMs.p99 <= TARGETS.p99Ms ? 'p99✓' : 'p99✗');
  return notes.join(' ');
}

/** The endpoint table: req/s, latency percentiles, ratio to the floor, failures, server RSS. */
export function endpointTable(suite: SuiteResult): string {
  return table(
    [
      'scenario',
      'req/s',
      'p50 ms',
      'p95 ms',
      'p99 ms',
      '× floor',
      'CPU ms/req',
      'non-expected',
      'RSS MB',
      'targets',
    ],
    suite.rows.map((r) => [
      r.name,
      fmt(r.reqPerSec, 0),
      fmt(r.latencyMs.p50, 2),
      fmt(r.latencyMs.p95, 2),
      fmt(r.latencyMs.p99, 2),
      r.kind === 'floor' ? '1.00' : r.vsFloor === null ? '–' : r.vsFloor.toFixed(2),
      fmt(r.serverCpuMsPerReq, 2),
      failures(r),
      fmt(r.peakRssMb, 0),
      verdict(r),
    ]),
  );
}

/** --scale: p50/p95/p99 of each list/search scenario per size, and growth relative to the smallest size. */
export function scaleTable(suites: SuiteResult[]): string {
  const sizes = suites.map((s) => s.tickets);
  const names = suites[0]?.rows.map((r) => r.name) ?? [];
  const short = (n: number) => (n >= 1e6 ? `${n / 1e6}M` : n >= 1e3 ? `${n / 1e3}k` : String(n));
  const first = suites[0];
  const headers = ['scenario', ...sizes.map((s) => `p50/p95/p99 @${short(s)}`)];
  if (suites.length > 1) headers.push(`p50 growth ${short(sizes.at(-1)!)}/${short(sizes[0]!)}`);
  headers.push(`req/s ${sizes.map(short).join(' → ')}`);
  const rows = names.map((name) => {
    const at = suites.map((s) => s.rows.find((r) => r.name === name));
    const cells = [
      name,
      ...at.map((r) =>
        r ? `${fmt(r.latencyMs.p50)} / ${fmt(r.latencyMs.p95)} / ${fmt(r.latencyMs.p99)}` : '–',
      ),
    ];
    if (suites.length > 1) {
      const a = first?.rows.find((r) => r.name === name);
      const b = at.at(-1);
      cells.push(a && b ? `${(b.latencyMs.p50 / a.latencyMs.p50).toFixed(2)}×` : '–');
    }
    cells.push(at.map((r) => (r ? fmt(r.reqPerSec, 0) : '–')).join(' → '));
    return cells;
  });
  return table(headers, rows);
}

export function machine() {
  const cpus = os.cpus();
  return {
    cpus: cpus.length,
    cpuModel: cpus[0]?.model ?? 'unknown',
    memoryMb: Math.round(os.totalmem() / 1024 / 1024),
    node: process.version,
    platform: `${os.platform()} ${os.release()}`,
  };
}

export async function writeJson(kind: string, payload: unknown): Promise<string> {
  const dir = path.resolve('bench/results');
  await mkdir(dir, { recursive: true });
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  const file = path.join(dir, `${stamp}-${kind}.json`);
  await writeFile(file, `${JSON.stringify(payload, null, 2)}\n`);
  return path.relative(process.cwd(), file);
}

/** A logger that writes nothing, for the services and job runner a bench builds in its own process. */
export const silentLogger = pino({ level: 'silent' });
