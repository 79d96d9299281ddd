import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { readFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type pg from 'pg';
import { freePort } from '../scripts/lib/free-port.js';

export { freePort };

/** Runs a command to completion with inherited output; rejects on a non-zero exit. */
export function run(cmd: string, args: string[], env: NodeJS.ProcessEnv = process.env): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: 'inherit', env });
    child.once('error', reject);
    child.once('exit', (code, signal) =>
      code === 0 ? resolve() : reject(new Error(`${cmd} ${args.join(' ')} exited with ${code ?? signal}`)),
    );
  });
}

const children = new Set<ChildProcess>();

/** Kill every server this process started (on exit, Ctrl-C or a failure). */
export function killChildren(): void {
  for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
}

/**
 * A bench script's entry: runs `main`, and on Ctrl-C, SIGTERM or a failure kills the servers it started
 * before exiting (130, or 1 with the error).
 */
export function runBench(name: string, main: () => Promise<void>): void {
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.on(sig, () => {
      killChildren();
      process.exit(130);
    });
  }
  main().catch((err) => {
    killChildren();
    console.error(`${name} failed: ${err instanceof Error ? err.stack : String(err)}`);
    process.exit(1);
  });
}

export interface Server {
  pid: number;
  /** CPU time (user + system) the process and its children (cluster workers) have used so far, in ms. */
  cpuMs(): Promise<number>;
  baseUrl: string;
  /** Highest VmRSS of any one process of the server (itself or a child) since the last resetPeak(), in bytes. */
  peakRss(): number;
  /** Highest VmRSS of the server's processes together since the last resetPeak(), in bytes. */
  peakRssTotal(): number;
  /** The processes the sampler has seen (the server and its children). */
  processCount(): number;
  resetPeak(): void;
  /** VmHWM: the kernel's peak resident set size over the whole life of a process, the highest of them, in bytes. */
  highWaterMark(): Promise<number>;
  /** VmRSS now, in bytes. */
  rss(): Promise<number>;
  stop(): Promise<void>;
}

/** The process and its descendants (cluster workers; an embedded PostgreSQL would be counted too). */
export async function processTree(pid: number): Promise<number[]> {
  const out = [pid];
  for (let i = 0; i < out.length; i++) {
    const p = out[i]!;
    const children = await readFile(`/proc/${p}/task/${p}/children`, 'utf8').catch(() => '');
    for (const c of children.split(' ')) if (c.trim()) out.push(Number(c));
  }
  return out;
}

/** Clock ticks per second of /proc/<pid>/stat times (USER_HZ: 100 on every mainstream Linux). */
const USER_HZ = 100;

/** CPU time (user + system) the process has used, in ms, from /proc/<pid>/stat; NaN when it cannot be read. */
export async function procCpuMs(pid: number): Promise<number> {
  try {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
    // Fields after "(comm)": state is field 3, utime field 14, stime field 15.
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return ((Number(rest[11]) + Number(rest[12])) * 1000) / USER_HZ;
  } catch {
    return Number.NaN;
  }
}

/**
 * CPU ms each PostgreSQL backend serving `database` has used (pid → ms), read from /proc: only for a
 * PostgreSQL on this machine (an empty map otherwise); backends that are gone are left out. What the work
 * costs the server, whatever the machine's load makes it wait for a core or a lock.
 */
export async function backendCpuMs(
  client: Pick<pg.ClientBase, 'query'>,
  database: string,
  opts: { exceptOwn?: boolean } = {},
): Promise<Map<number, number>> {
  const { rows } = await client.query<{ pid: number }>(
    `SELECT pid FROM pg_stat_activity WHERE datname = $1${opts.exceptOwn ? ' AND pid <> pg_backend_pid()' : ''}`,
    [database],
  );
  const out = new Map<number, number>();
  for (const { pid } of rows) {
    const ms = await procCpuMs(pid);
    if (!Number.isNaN(ms)) out.set(pid, ms);
  }
  return out;
}

/** CPU ms the backends used between two backendCpuMs() readings (NaN when the second read none). */
export function cpuDelta(before: Map<number, number>, after: Map<number, number>): number {
  if (after.size === 0) return Number.NaN;
  let ms = 0;
  for (const [pid, t] of after) ms += t - (before.get(pid) ?? 0);
  return ms;
}

async function procStatusBytes(pid: number, field: 'VmRSS' | 'VmHWM'): Promise<number> {
  try {
    const status = await readFile(`/proc/${pid}/status`, 'utf8');
    const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status);
    return m ? Number(m[1]) * 1024 : 0;
  } catch {
    return 0; // not Linux, or the process is gone
  }
}

/**
 * Starts `node <script>` (the production build: no tsx in the measured process), waits until
 * `readyPath` answers 200, and samples its resident set size every 100 ms.
 */
export async function startServer(opts: {
  name: string;
  script: string;
  args?: string[];
  /** Options for node itself (before the script), e.g. --cpu-prof. */
  nodeArgs?: string[];
  env: NodeJS.ProcessEnv;
  port: number;
  readyPath: string;
  logFile: string;
  timeoutMs?: number;
}): Promise<Server> {
  const log = createWriteStream(opts.logFile);
  const child = spawn(process.execPath, [...(opts.nodeArgs ?? []), opts.script, ...(opts.args ?? [])], {
    env: opts.env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.add(child);
  child.stdout?.pipe(log);
  child.stderr?.pipe(log);
  const pid = child.pid!;
  const baseUrl = `http://127.0.0.1:${opts.port}`;

  let exited = false;
  child.once('exit', () => {
    exited = true;
    children.delete(child);
  });

  const deadline = Date.now() + (opts.timeoutMs ?? 120_000);
  for (;;) {
    if (exited) {
      const text = await readFile(opts.logFile, 'utf8').catch(() => '');
      throw new Error(`${opts.name} exited during start-up; last output:\n${text.slice(-3000)}`);
    }
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(
        `${opts.name} was not ready within ${(opts.timeoutMs ?? 120_000) / 1000}s (log: ${opts.logFile})`,
      );
    }
    try {
      const res = await fetch(baseUrl + opts.readyPath, { signal: AbortSignal.timeout(2000) });
      await res.arrayBuffer();
      if (res.ok) break;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 200));
  }

  let peak = 0;
  let peakTotal = 0;
  const seen = new Set<number>();
  const sampler = setInterval(() => {
    void processTree(pid).then(async (pids) => {
      const rss = await Promise.all(pids.map((p) => procStatusBytes(p, 'VmRSS')));
      let total = 0;
      for (const [i, r] of rss.entries()) {
        seen.add(pids[i]!);
        total += r;
        if (r > peak) peak = r;
      }
      if (total > peakTotal) peakTotal = total;
    });
  }, 100);
  sampler.unref();

  return {
    pid,
    cpuMs: async () => {
      const cpu = await Promise.all((await processTree(pid)).map(procCpuMs));
      return cpu.reduce((a, b) => a + b, 0);
    },
    baseUrl,
    peakRss: () => peak,
    peakRssTotal: () => peakTotal,
    processCount: () => seen.size,
    resetPeak: () => {
      peak = 0;
      peakTotal = 0;
    },
    highWaterMark: async () =>
      Math.max(...(await Promise.all((await processTree(pid)).map((p) => procStatusBytes(p, 'VmHWM'))))),
    rss: () => procStatusBytes(pid, 'VmRSS'),
    stop: async () => {
      clearInterval(sampler);
      if (exited) return;
      const gone = new Promise<void>((r) => child.once('exit', () => r()));
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
      await gone;
      clearTimeout(timer);
      log.end();
    },
  };
}

/** One JSON call to a bench server's API (`path` below /api/v1); throws with the status and body unless 2xx. */
export async function api<T = unknown>(
  baseUrl: string,
  method: string,
  path: string,
  token?: string,
  body?: unknown,
): Promise<T> {
  const res = await fetch(`${baseUrl}/api/v1${path}`, {
    method,
    headers: {
      ...(token ? { authorization: `Bearer ${token}` } : {}),
      ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`${method} ${path} answered ${res.status}: ${text}`);
  return (text ? JSON.parse(text) : null) as T;
}

/** Signs in; the access token. */
export async function login(baseUrl: string, creds: { email: string; password: string }): Promise<string> {
  const { accessToken } = await api<{ accessToken: string }>(
    baseUrl,
    'POST',
    '/auth/login',
    undefined,
    creds,
  );
  return accessToken;
}

/**
 * The environment of a benchmarked API server: production mode on loopback, a fresh JWT secret, a data
 * directory of its own, warnings only, and limits the load never reaches (a bench measures the work, not the
 * limiter's refusals). `extra` adds or overrides variables.
 */
/** The floor (bench/floor.ts) of the build in `dist`, on `port`, against `db`, with the API's pool size. */
export function startFloor(opts: {
  dist: string;
  port: number;
  db: string;
  logFile: string;
}): Promise<Server> {
  return startServer({
    name: 'floor',
    script: path.resolve(opts.dist, 'bench/floor.js'),
    args: ['--port', String(opts.port), '--db', opts.db, '--pool', '10'],
    env: { PATH: process.env.PATH, NODE_ENV: 'production' },
    port: opts.port,
    readyPath: '/readyz',
    logFile: opts.logFile,
  });
}

export function benchServerEnv(opts: {
  name: string;
  port: number;
  databaseUrl: string;
  extra?: NodeJS.ProcessEnv;
}): NodeJS.ProcessEnv {
  return {
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    NODE_ENV: 'production',
    HOST: '127.0.0.1',
    PORT: String(opts.port),
    DATABASE_URL: opts.databaseUrl,
    DATA_DIR: path.join(os.tmpdir(), `helpdesk-bench-${opts.name}-${process.pid}`),
    JWT_SECRET: randomBytes(48).toString('base64url'),
    ACCESS_TOKEN_TTL: '3600',
    LOG_LEVEL: 'warn',
    RATE_LIMIT_MAX: '1000000000',
    LOGIN_RATE_LIMIT_PER_IP: '1000000000',
    LOGIN_RATE_LIMIT_PER_ACCOUNT: '1000000000',
    ...opts.extra,
  };
}
