/**
 * `npm run bench:changes`: the change feed's costs, on loopback, bounded and self-stopping.
 *  1. commit → SSE delivery latency (p50/p99) with N open streams while changes are written at R/s;
 *  2. server RSS with 1,000 and 5,000 idle streams;
 *  3. write throughput of POST /tickets and POST /tickets/{id}/comments with the outbox, and on the code
 *     before it (BENCH_BASE_REF, default the commit before the change feed: exported with `git archive`).
 * Databases: throwaway ones on TEST_DATABASE_URL's server (or embedded). Results: bench/results/changes-*.json.
 * Options (env): BENCH_STREAMS (1000), BENCH_RATE (50/s), BENCH_SECONDS (10), BENCH_IDLE (1000,5000),
 * BENCH_WRITE_SECONDS (10), BENCH_CONNECTIONS (10), BENCH_BASE_REF (f553221; "none" skips the comparison).
 */
import { execSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, rm, symlink, writeFile } from 'node:fs/promises';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import autocannon from 'autocannon';
import { tempDatabase } from '../test/helpers/temp-database.js';
import { freePort, killChildren, type Server, startServer } from './proc.js';

const ROOT = path.resolve(import.meta.dirname, '..');
const env = (k: string, d: string) => process.env[k] ?? d;
const STREAMS = Number(env('BENCH_STREAMS', '1000'));
const RATE = Number(env('BENCH_RATE', '50'));
const SECONDS = Number(env('BENCH_SECONDS', '10'));
const IDLE = env('BENCH_IDLE', '1000,5000').split(',').map(Number);
const WRITE_SECONDS = Number(env('BENCH_WRITE_SECONDS', '10'));
const CONNECTIONS = Number(env('BENCH_CONNECTIONS', '10'));
const BASE_REF = env('BENCH_BASE_REF', 'f553221');
const ADMIN = { email: 'bench-admin@example.test', password: 'bench-admin-password-2026' };

const log = (m: string) => console.log(`[bench:changes ${new Date().toISOString().slice(11, 19)}] ${m}`);
const mb = (b: number) => Math.round(b / 1048576);
const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]! : Number.NaN;
};

async function rss(pid: number): Promise<number> {
  const { readFile } = await import('node:fs/promises');
  const m = /^VmRSS:\s+(\d+) kB/m.exec(await readFile(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) * 1024 : 0;
}

async function start(name: string, root: string, databaseUrl: string): Promise<Server> {
  const port = await freePort();
  return startServer({
    name,
    script: '--import',
    args: ['tsx', path.join(root, 'src/server.ts')],
    port,
    readyPath: '/readyz',
    logFile: path.join(os.tmpdir(), `bench-changes-${name}.log`),
    env: {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      NODE_ENV: 'production',
      HOST: '127.0.0.1',
      PORT: String(port),
      DATABASE_URL: databaseUrl,
      DATA_DIR: path.join(os.tmpdir(), `bench-changes-${name}-${process.pid}`),
      JWT_SECRET: randomBytes(48).toString('base64url'),
      ACCESS_TOKEN_TTL: '3600',
      LOG_LEVEL: 'warn',
      ADMIN_EMAIL: ADMIN.email,
      ADMIN_PASSWORD: ADMIN.password,
      RATE_LIMIT_MAX: '1000000000',
      LOGIN_RATE_LIMIT_PER_IP: '1000000000',
      LOGIN_RATE_LIMIT_PER_ACCOUNT: '1000000000',
      CHANGES_STREAMS_PER_USER: '100000',
      OVERLOAD_MAX_EVENT_LOOP_DELAY_MS: '0',
    },
  });
}

async function call(base: string, method: string, url: string, token?: string, body?: unknown) {
  const res = await fetch(`${base}/api/v1${url}`, {
    method,
    headers: {
      ...(token ? { authorization: `Bearer ${token}` } : {}),
      ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`${method} ${url} → ${res.status} ${text}`);
  return text ? JSON.parse(text) : null;
}

async function setup(base: string) {
  const admin = (await call(base, 'POST', '/auth/login', undefined, ADMIN)).accessToken as string;
  const password = 'bench-user-password-2026';
  const mk = async (role: string) => {
    const email = `${role}-${randomBytes(3).toString('hex')}@example.test`;
    await call(base, 'POST', '/users', admin, { email, name: `Bench ${role}`, role, password });
    return (await call(base, 'POST', '/auth/login', undefined, { email, password })).accessToken as string;
  };
  return { admin, agent: await mk('agent'), requester: await mk('requester') };
}

interface Streams {
  count: number;
  close(): void;
}

/** Opens n SSE connections; onChunk sees every chunk with its arrival time. */
async function openStreams(base: string, token: string, n: number, onChunk?: (s: string, t: number) => void) {
  const agent = new http.Agent({ keepAlive: false, maxSockets: Number.POSITIVE_INFINITY });
  const reqs: http.ClientRequest[] = [];
  const url = new URL(`${base}/api/v1/changes/stream`);
  let opened = 0;
  const one = () =>
    new Promise<void>((resolve, reject) => {
      const req = http.get(url, { agent, headers: { authorization: `Bearer ${token}` } }, (res) => {
        if (res.statusCode !== 200) return reject(new Error(`stream answered ${res.statusCode}`));
        opened++;
        res.setEncoding('utf8');
        res.on('data', (c: string) => onChunk?.(c, performance.now()));
        res.on('error', () => {});
        resolve();
      });
      req.on('error', reject);
      reqs.push(req);
    });
  for (let i = 0; i < n; i += 100) await Promise.all(Array.from({ length: Math.min(100, n - i) }, one));
  return {
    get count() {
      return opened;
    },
    close: () => {
      for (const r of reqs) r.destroy();
      agent.destroy();
    },
  } satisfies Streams;
}

async function latency(base: string, server: Server, users: Awaited<ReturnType<typeof setup>>) {
  const ticket = await call(base, 'POST', '/tickets', users.requester, {
    title: 'bench-0',
    description: 'd',
  });
  const sent = new Map<number, number>();
  const samples: number[] = [];
  const re = /"title":"bench-(\d+)"/g;
  const streams = await openStreams(base, users.agent, STREAMS, (chunk, t) => {
    for (const m of chunk.matchAll(re)) {
      const at = sent.get(Number(m[1]));
      if (at !== undefined) samples.push(t - at);
    }
  });
  log(`latency: ${streams.count} streams open, writing ${RATE} changes/s for ${SECONDS}s`);
  const total = RATE * SECONDS;
  const t0 = performance.now();
  const writes: Promise<unknown>[] = [];
  for (let i = 1; i <= total; i++) {
    const due = t0 + (i * 1000) / RATE;
    const wait = due - performance.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    writes.push(
      call(base, 'PATCH', `/tickets/${ticket.id}`, users.agent, { title: `bench-${i}` }).then(() => {
        // Commit time: the PATCH has answered, so its transaction has committed.
        sent.set(i, performance.now());
      }),
    );
  }
  await Promise.all(writes);
  const deadline = performance.now() + 10_000;
  while (samples.length < total * streams.count && performance.now() < deadline) {
    await new Promise((r) => setTimeout(r, 100));
  }
  const peak = await rss(server.pid);
  streams.close();
  // A frame can arrive before the PATCH response is read by this process: those count as 0 ms.
  const clipped = samples.map((x) => Math.max(0, x));
  return {
    streams: streams.count,
    changes: total,
    deliveries: samples.length,
    expected: total * streams.count,
    p50Ms: Math.round(pct(clipped, 50)),
    p99Ms: Math.round(pct(clipped, 99)),
    maxMs: Math.round(Math.max(...clipped)),
    serverRssMb: mb(peak),
  };
}

async function idle(base: string, server: Server, token: string) {
  const out: Array<{ streams: number; serverRssMb: number }> = [];
  const baseline = await rss(server.pid);
  for (const n of IDLE) {
    const streams = await openStreams(base, token, n);
    await new Promise((r) => setTimeout(r, 2000));
    out.push({ streams: streams.count, serverRssMb: mb(await rss(server.pid)) });
    log(`idle: ${streams.count} streams → server RSS ${mb(await rss(server.pid))} MB`);
    streams.close();
    await new Promise((r) => setTimeout(r, 2000));
  }
  return { baselineRssMb: mb(baseline), idle: out };
}

async function writes(base: string, users: Awaited<ReturnType<typeof setup>>) {
  const ticket = await call(base, 'POST', '/tickets', users.requester, {
    title: 'comment target',
    description: 'd',
  });
  const run = (title: string, opts: autocannon.Options) =>
    new Promise<number>((resolve, reject) => {
      autocannon({ ...opts, connections: CONNECTIONS, duration: WRITE_SECONDS }, (err, r) => {
        if (err) return reject(err);
        if (r.non2xx > 0) log(`${title}: ${r.non2xx} non-2xx answers`);
        resolve(Math.round(r.requests.average));
      });
    });
  const headers = { authorization: `Bearer ${users.agent}`, 'content-type': 'application/json' };
  const createTicket = await run('create ticket', {
    url: `${base}/api/v1/tickets`,
    method: 'POST',
    headers,
    body: JSON.stringify({ title: 'Printer on fire', description: 'It is on fire.' }),
  });
  const addComment = await run('add comment', {
    url: `${base}/api/v1/tickets/${ticket.id}/comments`,
    method: 'POST',
    headers,
    body: JSON.stringify({ body: 'Looking into it.', visibility: 'internal' }),
  });
  return { createTicketRps: createTicket, addCommentRps: addComment };
}

async function main() {
  const results: Record<string, unknown> = { at: new Date().toISOString(), cpus: os.cpus().length };
  const db = await tempDatabase('helpdesk_bench_changes');
  const servers: Server[] = [];
  const cleanups: Array<() => Promise<unknown>> = [db.drop];
  try {
    const server = await start('outbox', ROOT, db.url);
    servers.push(server);
    const users = await setup(server.baseUrl);
    results.latency = await latency(server.baseUrl, server, users);
    log(`latency: ${JSON.stringify(results.latency)}`);
    results.idle = await idle(server.baseUrl, server, users.agent);
    results.writesWithOutbox = await writes(server.baseUrl, users);
    log(`writes with the outbox: ${JSON.stringify(results.writesWithOutbox)}`);
    await server.stop();

    if (BASE_REF !== 'none') {
      // The code before the change feed, on its own database, same machine, same settings.
      const dir = path.join(os.tmpdir(), `helpdesk-bench-base-${process.pid}`);
      await mkdir(dir, { recursive: true });
      cleanups.push(() => rm(dir, { recursive: true, force: true }));
      execSync(`git archive ${BASE_REF} | tar -x -C ${dir}`, { cwd: ROOT, stdio: 'inherit' });
      await symlink(path.join(ROOT, 'node_modules'), path.join(dir, 'node_modules'));
      const baseDb = await tempDatabase('helpdesk_bench_base');
      cleanups.push(baseDb.drop);
      const before = await start('before', dir, baseDb.url);
      servers.push(before);
      results.writesBefore = await writes(before.baseUrl, await setup(before.baseUrl));
      log(`writes before the outbox: ${JSON.stringify(results.writesBefore)}`);
      await before.stop();
    }
  } finally {
    for (const s of servers) await s.stop().catch(() => {});
    killChildren();
    for (const c of cleanups.reverse()) await c().catch(() => {});
  }
  await mkdir(path.join(ROOT, 'bench/results'), { recursive: true });
  const file = path.join(ROOT, 'bench/results', `changes-${Date.now()}.json`);
  await writeFile(file, `${JSON.stringify(results, null, 2)}\n`);
  console.log(JSON.stringify(results, null, 2));
  log(`written to ${path.relative(ROOT, file)}`);
}

main().catch((err) => {
  killChildren();
  console.error(err);
  process.exit(1);
});
