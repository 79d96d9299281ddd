/**
 * `npx tsx bench/create-cost.ts --db URL [options]`: what one POST /tickets costs, split by who pays it.
 *
 * Starts the production build in cluster mode (WEB_CONCURRENCY=2 by default: two HTTP workers, the job
 * runner in the primary), sends a fixed number of creates as a requester, waits until the job queue is
 * empty, and reports per create:
 * - CPU ms of the HTTP workers (the request) and of the primary (the jobs the create triggers: mail,
 *   webhooks), from /proc/<pid>/stat;
 * - CPU ms of the PostgreSQL backends serving this database (pg_stat_activity's pids, /proc/<pid>/stat):
 *   the statements' cost, whoever else uses the server;
 * - jobs created, mails delivered and transactions committed per create;
 * - closed-loop req/s and latency (these depend on the machine's load: the load average is printed beside).
 * A fixed number of requests (not a duration) keeps the CPU figures comparable across loads.
 *
 * `--jobs-later`: the server runs with ROLE=api (no job runner) and a separate `dist/src/worker.js` works the
 * queue off after each load, so the HTTP workers' figure is the request alone, without the jobs competing for
 * the same cores meanwhile (what the floor's create is measured as); "jobs" is then that worker's CPU.
 * With `--web-concurrency 1` the one server process is the request's whole cost ("server process").
 *
 * `--floor`: then the same number of creates, on as many connections, against the floor (bench/floor.ts, one
 * process: the same statements with bare Fastify + pg), and its CPU ms per create: the like-for-like ratio is
 * `--web-concurrency 1 --jobs-later --floor`.
 */

import { spawn } from 'node:child_process';
import { readdir, readFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import autocannon from 'autocannon';
import pg from 'pg';
import { type CpuProfile, formatTop, topFrames } from './cpuprofile-top.js';
import {
  createdTicketBodies,
  describeUsers,
  removeCreatedTickets,
  removeCreatedTicketsAndFloorJobs,
} from './database.js';
import {
  backendCpuMs,
  benchServerEnv,
  cpuDelta,
  procCpuMs,
  processTree,
  runBench,
  startFloor,
  startServer,
} from './proc.js';

const SEED_PASSWORD = process.env.BENCH_SEED_PASSWORD ?? 'bench-password-123';
const API = '/api/v1';

interface Options {
  db: string;
  port: number;
  requests: number;
  warmup: number;
  connections: number;
  webConcurrency: number;
  dist: string;
  profile: string | null;
  rounds: number;
  jobsLater: boolean;
  floor: boolean;
}

function parse(argv: string[]): Options {
  const o: Options = {
    db: '',
    port: 5401,
    requests: 3000,
    warmup: 500,
    connections: 20,
    webConcurrency: 2,
    dist: 'dist',
    profile: null,
    rounds: 1,
    jobsLater: false,
    floor: false,
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const v = () => argv[++i] ?? '';
    if (a === '--db') o.db = v();
    else if (a === '--port') o.port = Number(v());
    else if (a === '--requests') o.requests = Number(v());
    else if (a === '--warmup') o.warmup = Number(v());
    else if (a === '--connections') o.connections = Number(v());
    else if (a === '--web-concurrency') o.webConcurrency = Number(v());
    else if (a === '--dist') o.dist = v();
    else if (a === '--profile') o.profile = path.resolve(v());
    else if (a === '--rounds') o.rounds = Number(v());
    else if (a === '--jobs-later') o.jobsLater = true;
    else if (a === '--floor') o.floor = true;
    else throw new Error(`unknown option ${a}`);
  }
  if (!o.db) throw new Error('--db URL is required (a seeded bench database)');
  return o;
}

interface Snapshot {
  primary: number;
  workers: number;
  /** pid → CPU ms of this database's backends (other than the monitor's own). */
  backends: Map<number, number>;
  jobs: number;
  mails: number;
  commits: number;
}

async function snapshot(serverPid: number, monitor: pg.Client, dbName: string): Promise<Snapshot> {
  const kids = (await processTree(serverPid)).slice(1);
  const backends = await backendCpuMs(monitor, dbName, { exceptOwn: true });
  const { rows } = await monitor.query<{ jobs: string; mails: string; commits: string }>(
    `SELECT (SELECT last_value FROM graphile_worker.jobs_id_seq1)::text AS jobs,
            (SELECT count(*) FROM mail_deliveries)::text AS mails,
            (SELECT xact_commit FROM pg_stat_database WHERE datname = current_database())::text AS commits`,
  );
  return {
    primary: await procCpuMs(serverPid),
    // A worker gone since the tree was read counts nothing.
    workers: (await Promise.all(kids.map(procCpuMs)))
      .filter((ms) => !Number.isNaN(ms))
      .reduce((a, b) => a + b, 0),
    backends,
    jobs: Number(rows[0]!.jobs),
    mails: Number(rows[0]!.mails),
    commits: Number(rows[0]!.commits),
  };
}

async function pendingJobs(c: pg.Client): Promise<number> {
  const { rows } = await c.query<{ n: number }>(
    'SELECT count(*)::int AS n FROM graphile_worker.jobs WHERE attempts < max_attempts AND run_at <= now()',
  );
  return rows[0]?.n ?? 0;
}

async function drain(c: pg.Client): Promise<void> {
  const deadline = Date.now() + 300_000;
  while ((await pendingJobs(c)) > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
}

/** The --jobs-later job workers started (their profiles are labelled as such). */
const jobWorkerPids = new Set<number>();

/** --jobs-later: a job worker process drains the queue, then stops; returns its CPU ms. */
async function drainWithWorker(
  c: pg.Client,
  script: string,
  env: NodeJS.ProcessEnv,
  nodeArgs: string[],
): Promise<number> {
  const child = spawn(process.execPath, [...nodeArgs, script], {
    env: { ...env, ROLE: 'worker' },
    stdio: 'ignore',
  });
  jobWorkerPids.add(child.pid!);
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  await drain(c);
  const ms = await procCpuMs(child.pid!);
  child.kill('SIGTERM');
  await exited;
  return ms;
}

function fire(
  baseUrl: string,
  token: string | null,
  amount: number,
  connections: number,
  next: () => string,
  path = `${API}/tickets`,
): Promise<autocannon.Result> {
  return new Promise((resolve, reject) => {
    autocannon(
      {
        url: baseUrl,
        connections,
        amount,
        pipelining: 1,
        timeout: 30,
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          ...(token ? { authorization: `Bearer ${token}` } : {}),
        },
        requests: [{ setupRequest: (req) => ({ ...req, method: 'POST', path, body: next() }) }],
      },
      (err, result) => (err ? reject(err) : resolve(result)),
    );
  });
}

const r3 = (x: number) => Math.round(x * 1000) / 1000;
const fmtLoad = () =>
  os
    .loadavg()
    .map((x) => x.toFixed(2))
    .join(' ');

async function main() {
  const o = parse(process.argv.slice(2));
  const dbName = new URL(o.db).pathname.slice(1);
  await removeCreatedTickets(o.db);
  const users = await describeUsers(o.db);
  const requester = users.requesters[0];
  if (!requester) throw new Error('no seeded requester');

  const env = benchServerEnv({
    name: 'create-cost',
    port: o.port,
    databaseUrl: o.db,
    extra: { WEB_CONCURRENCY: String(o.webConcurrency), ...(o.jobsLater ? { ROLE: 'api' } : {}) },
  });
  const profileArgs = o.profile ? ['--cpu-prof', '--cpu-prof-dir', o.profile] : [];
  const workDrain = (c: pg.Client) =>
    o.jobsLater
      ? drainWithWorker(c, path.resolve(o.dist, 'src/server.js'), env, profileArgs)
      : drain(c).then(() => 0);
  const server = await startServer({
    name: 'API server',
    script: path.resolve(o.dist, 'src/server.js'),
    nodeArgs: profileArgs,
    env,
    port: o.port,
    readyPath: '/readyz',
    logFile: path.resolve('bench/results/create-cost-server.log'),
  });
  const windows: Array<{ from: number; to: number }> = [];
  const monitor = new pg.Client({ connectionString: o.db });
  await monitor.connect();
  try {
    const res = await fetch(`${server.baseUrl}${API}/auth/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ email: requester.email, password: SEED_PASSWORD }),
    });
    const { accessToken } = (await res.json()) as { accessToken: string };
    const body = createdTicketBodies();

    if (o.warmup > 0) {
      await fire(server.baseUrl, accessToken, o.warmup, o.connections, body);
      await workDrain(monitor);
    }
    for (let round = 0; round < o.rounds; round++) {
      const loadBefore = fmtLoad();
      const s0 = await snapshot(server.pid, monitor, dbName);
      const from = usNow();
      const r = await fire(server.baseUrl, accessToken, o.requests, o.connections, body);
      const s1 = await snapshot(server.pid, monitor, dbName);
      const jobWorkerMs = await workDrain(monitor);
      const s2 = await snapshot(server.pid, monitor, dbName);
      windows.push({ from, to: usNow() });
      const ok = r['2xx'];
      const per = (x: number) => r3(x / Math.max(ok, 1));
      const result = {
        requests: r.requests.total,
        ok,
        reqPerSec: Math.round((ok / r.duration) * 10) / 10,
        p50: r.latency.p50,
        p99: r.latency.p99,
        cpuMsPerCreate: {
          ...(o.webConcurrency > 1
            ? {
                httpWorkers: per(s2.workers - s0.workers),
                jobsPrimary: per(s2.primary - s0.primary),
                jobsPrimaryDuringLoad: per(s1.primary - s0.primary),
              }
            : // One process: the request, and the jobs too unless --jobs-later.
              { serverProcess: per(s2.primary - s0.primary) }),
          ...(o.jobsLater ? { jobsWorkerAfterLoad: per(jobWorkerMs) } : {}),
          node: per(s2.workers - s0.workers + s2.primary - s0.primary + jobWorkerMs),
          postgres: per(cpuDelta(s0.backends, s2.backends)),
          postgresDuringLoad: per(cpuDelta(s0.backends, s1.backends)),
        },
        jobsPerCreate: per(s2.jobs - s0.jobs),
        mailsPerCreate: per(s2.mails - s0.mails),
        commitsPerCreate: per(s2.commits - s0.commits),
        load: { before: loadBefore, after: fmtLoad() },
      };
      console.log(JSON.stringify(result, null, 2));
    }
  } finally {
    await monitor.end();
    await server.stop();
    await removeCreatedTickets(o.db).catch(() => {});
  }
  if (o.floor) await floorRun(o, dbName, requester.email);
  if (o.profile && windows.length > 0) {
    // One profile per process (the primary, each HTTP worker, each --jobs-later job worker); only the
    // measured rounds count.
    const files = (await readdir(o.profile)).filter((f) => f.endsWith('.cpuprofile')).sort();
    for (const f of files) {
      const profile = JSON.parse(await readFile(path.join(o.profile, f), 'utf8')) as CpuProfile;
      const pid = Number(f.split('.')[3]);
      const role = jobWorkerPids.has(pid)
        ? 'job worker'
        : pid === server.pid
          ? o.webConcurrency > 1
            ? 'primary (jobs)'
            : 'server'
          : 'HTTP worker';
      const top = topFrames(profile, { top: 15, from: windows[0]!.from, to: windows.at(-1)!.to });
      console.log(`\nTop 15 self time, ${role}, pid ${pid} (${f}):\n${formatTop(top)}`);
    }
  }
}

/** --floor: the same creates against bench/floor.ts; its process's and its backends' CPU per create. */
async function floorRun(o: Options, dbName: string, requesterEmail: string): Promise<void> {
  const monitor = new pg.Client({ connectionString: o.db });
  await monitor.connect();
  const { rows } = await monitor.query<{ id: string }>('SELECT id FROM users WHERE email = $1', [
    requesterEmail,
  ]);
  const requesterId = rows[0]!.id;
  const titles = createdTicketBodies();
  const body = () => JSON.stringify({ ...JSON.parse(titles()), requesterId, actorName: 'Requester' });
  const floor = await startFloor({
    dist: o.dist,
    port: o.port + 1,
    db: o.db,
    logFile: path.resolve('bench/results/create-cost-floor.log'),
  });
  try {
    if (o.warmup > 0) await fire(floor.baseUrl, null, o.warmup, o.connections, body, '/tickets');
    for (let round = 0; round < o.rounds; round++) {
      const cpu0 = await procCpuMs(floor.pid);
      const pg0 = await backendCpuMs(monitor, dbName, { exceptOwn: true });
      const r = await fire(floor.baseUrl, null, o.requests, o.connections, body, '/tickets');
      const cpu1 = await procCpuMs(floor.pid);
      const pg1 = await backendCpuMs(monitor, dbName, { exceptOwn: true });
      const ok = r['2xx'];
      const per = (x: number) => r3(x / Math.max(ok, 1));
      console.log(
        JSON.stringify(
          {
            floor: {
              requests: r.requests.total,
              ok,
              reqPerSec: Math.round((ok / r.duration) * 10) / 10,
              p50: r.latency.p50,
              p99: r.latency.p99,
              cpuMsPerCreate: { floorProcess: per(cpu1 - cpu0), postgres: per(cpuDelta(pg0, pg1)) },
              load: fmtLoad(),
            },
          },
          null,
          2,
        ),
      );
    }
  } finally {
    await monitor.end();
    await floor.stop();
    await removeCreatedTicketsAndFloorJobs(o.db).catch(() => {});
  }
}

const usNow = () => Number(process.hrtime.bigint() / 1000n);

runBench('create-cost', main);
