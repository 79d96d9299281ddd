/**
 * `npm run bench:changes`: the change feed's costs, on loopback, bounded and self-stopping.
 *  1. commit → SSE delivery latency (p50/p99) with N open streams while changes are written at R/s (PATCHes
 *     spread over 50 tickets), and whether any request (write or stream opening) was refused meanwhile;
 *  2. server RSS with 1,000 and 5,000 idle streams;
 *  3. write throughput of POST /tickets and POST /tickets/{id}/comments (over 50 tickets) with the outbox, against the same
 *     build on a database where the outbox costs nothing: `change_events` is a view whose INSTEAD OF trigger
 *     hands the row back without storing it, and the announcements that wake the live streams do nothing (a
 *     `pg_notify` of the database's own that drops the change_events channel).
 * The server is the production build (`npm run build` first unless BENCH_SKIP_BUILD=1) with the production
 * settings (NODE_ENV=production, default pool and load shedding), ROLE=api; only rate limits and the per-user stream
 * cap are lifted, because every stream here belongs to one agent.
 * Databases: fresh ones on BENCH_PG_URL (default the local server), dropped afterwards.
 * Results: bench/results/changes-*.json. Ports BENCH_PORT.. BENCH_PORT+2 (default 4400).
 * Options (env): BENCH_STREAMS (1000, of which BENCH_WATCHED (50) are decoded and timed), BENCH_RATE (50/s), BENCH_SECONDS (10), BENCH_IDLE (1000,5000),
 * BENCH_WRITE_SECONDS (20 per endpoint and server, in BENCH_WRITE_ROUNDS (4) interleaved rounds),
 * BENCH_CONNECTIONS (10), BENCH_COMMENT_TICKETS (50), BENCH_PHASES (idle,latency,writes), BENCH_DB_PREFIX,
 * BENCH_GLIBC_TUNABLES (the Dockerfile's; empty to run without), BENCH_SERVER_SCRIPT (another build's server.js),
 * BENCH_NODE_ARGS (e.g. --cpu-prof). Besides latency, the delivery run counts missing and duplicate deliveries
 * per watched stream and why the server ended any stream; the write runs add PostgreSQL backend CPU per request.
 */
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import autocannon from 'autocannon';
import pg from 'pg';
import { freshDatabase, openBenchServer } from './database.js';
import {
  api,
  backendCpuMs,
  benchServerEnv,
  cpuDelta,
  killChildren,
  login,
  run,
  type Server,
  startServer,
} from './proc.js';
import { writeJson } from './report.js';

const ROOT = path.resolve(import.meta.dirname, '..');
const env = (k: string, d: string) => process.env[k] ?? d;
const STREAMS = Number(env('BENCH_STREAMS', '1000'));
const RATE = Number(env('BENCH_RATE', '50'));
const SECONDS = Number(env('BENCH_SECONDS', '10'));
const IDLE = env('BENCH_IDLE', '1000,5000').split(',').map(Number);
const WRITE_SECONDS = Number(env('BENCH_WRITE_SECONDS', '20'));
const CONNECTIONS = Number(env('BENCH_CONNECTIONS', '10'));
const SKIP_BUILD = env('BENCH_SKIP_BUILD', '') === '1';
const ROUNDS = Number(env('BENCH_WRITE_ROUNDS', '4'));
const WATCHED = Number(env('BENCH_WATCHED', '50'));
const COMMENT_TICKETS = Number(env('BENCH_COMMENT_TICKETS', '50'));
const PORT = Number(env('BENCH_PORT', '4400'));
/** Which parts to run (all by default): idle, latency, writes. */
/** The bench databases' names start with it (dropped afterwards). */
const DB_PREFIX = env('BENCH_DB_PREFIX', 'helpdesk_bench_changes');
const PHASES = new Set(env('BENCH_PHASES', 'idle,latency,writes').split(','));
/** The production image's malloc setting (Dockerfile); BENCH_GLIBC_TUNABLES= (empty) measures without it. */
const GLIBC_TUNABLES = env('BENCH_GLIBC_TUNABLES', 'glibc.malloc.mmap_threshold=1048576');
const PG = env(
  'BENCH_PG_URL',
  process.env.TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres',
);
const ADMIN = { email: 'bench-admin@example.test', password: 'bench-admin-password-2026' };

const log = (m: string) => console.log(`[bench:changes ${new Date().toISOString().slice(11, 19)}] ${m}`);
const mb = (b: number) => Math.round(b / 1048576);
const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]! : Number.NaN;
};

function start(name: string, databaseUrl: string, port: number): Promise<Server> {
  return startServer({
    name,
    // Another build (e.g. an older commit's dist, for an A/B run): BENCH_SERVER_SCRIPT.
    script: process.env.BENCH_SERVER_SCRIPT ?? path.join(ROOT, 'dist/src/server.js'),
    port,
    // e.g. BENCH_NODE_ARGS="--cpu-prof --cpu-prof-dir=/tmp/prof" to profile the servers.
    nodeArgs: process.env.BENCH_NODE_ARGS?.split(' ').filter(Boolean),
    readyPath: '/readyz',
    logFile: path.join(os.tmpdir(), `bench-changes-${name}.log`),
    env: benchServerEnv({
      name: `changes-${name}`,
      port,
      databaseUrl,
      extra: {
        // The API alone: the jobs changes cause (notifications, webhooks) are enqueued, not run, so a worker
        // sending mail does not take CPU from what is measured.
        ROLE: 'api',
        // One process: the footprint and fan-out measured are a process's (production forks one per core).
        WEB_CONCURRENCY: '1',
        ADMIN_EMAIL: ADMIN.email,
        ADMIN_PASSWORD: ADMIN.password,
        CHANGES_STREAMS_PER_USER: '10000',
        ...(GLIBC_TUNABLES ? { GLIBC_TUNABLES } : {}),
      },
    }),
  });
}

async function setup(base: string) {
  const admin = await login(base, ADMIN);
  const password = 'bench-user-password-2026';
  const mk = async (role: string) => {
    const email = `${role}-${randomBytes(3).toString('hex')}@example.test`;
    await api(base, 'POST', '/users', admin, { email, name: `Bench ${role}`, role, password });
    return login(base, { email, password });
  };
  return { admin, agent: await mk('agent'), requester: await mk('requester') };
}

/**
 * Opens n SSE connections, 100 at a time. The first `watched` are decoded and onChunk sees each of their
 * chunks with its arrival time; the others are read and dropped undecoded (the bench client shares the
 * machine with the server: decoding 1,000 streams' frames would take CPU from what is measured).
 */
async function openStreams(
  base: string,
  token: string,
  n: number,
  onChunk?: (s: string, t: number, stream: number) => void,
  watched = 0,
) {
  /** Watched streams that ended before the bench closed them: index → the reason of their `close` event. */
  const ended = new Map<number, string>();
  let closing = false;
  const agent = new http.Agent({ keepAlive: false, maxSockets: Number.POSITIVE_INFINITY });
  const reqs: http.ClientRequest[] = [];
  const url = new URL(`${base}/api/v1/changes/stream`);
  let opened = 0;
  let bytes = 0;
  const refused: number[] = [];
  const one = () =>
    new Promise<void>((resolve, reject) => {
      const req = http.get(url, { agent, headers: { authorization: `Bearer ${token}` } }, (res) => {
        if (res.statusCode !== 200) {
          refused.push(res.statusCode ?? 0);
          res.resume();
          return resolve();
        }
        const index = opened++;
        res.on('error', () => {});
        if (index < watched && onChunk) {
          // Whole frames only: a frame can be split across two chunks.
          let pending = '';
          let reason = 'no close event';
          res.setEncoding('utf8');
          res.on('data', (c: string) => {
            pending += c;
            const end = pending.lastIndexOf('\n\n');
            if (end < 0) return;
            const frames = pending.slice(0, end + 2);
            const close = /event: close\ndata: \{"reason":"([^"]*)"/.exec(frames);
            if (close) reason = close[1]!;
            onChunk(frames, performance.now(), index);
            pending = pending.slice(end + 2);
          });
          res.on('close', () => {
            if (!closing) ended.set(index, reason);
          });
        } else {
          res.on('data', (c: Buffer) => {
            bytes += c.length;
          });
        }
        resolve();
      });
      req.on('error', reject);
      reqs.push(req);
    });
  const t0 = performance.now();
  for (let i = 0; i < n; i += 100) await Promise.all(Array.from({ length: Math.min(100, n - i) }, one));
  if (refused.length) log(`stream openings refused: ${refused.length} (${[...new Set(refused)].join(', ')})`);
  return {
    get count() {
      return opened;
    },
    get bytes() {
      return bytes;
    },
    refused: refused.length,
    openSeconds: Number(((performance.now() - t0) / 1000).toFixed(2)),
    ended,
    close: () => {
      closing = true;
      for (const r of reqs) r.destroy();
      agent.destroy();
    },
  };
}

async function latency(base: string, server: Server, users: Awaited<ReturnType<typeof setup>>) {
  // Spread over 50 tickets: writes to one ticket queue behind its row lock, which is not what is measured.
  const tickets: number[] = [];
  for (let i = 0; i < 50; i++) {
    const t = await api<{ id: number }>(base, 'POST', '/tickets', users.requester, {
      title: `bench-t${i}`,
      description: 'd',
    });
    tickets.push(t.id);
  }
  const sentAt = new Map<number, number>();
  const answeredAt = new Map<number, number>();
  const arrivals: Array<[number, number]> = [];
  /** Per watched stream: how many times each change arrived. */
  const received: Array<Map<number, number>> = Array.from({ length: WATCHED }, () => new Map());
  // One frame per change: `data:` holds the ticket once (its title) — the regex anchors on the frame's data line.
  const re = /\ndata: \{"id":"[^"]*","type":"ticket\.updated".*?"title":"bench-(\d+)"/g;
  const streams = await openStreams(
    base,
    users.agent,
    STREAMS,
    (chunk, t, stream) => {
      for (const m of chunk.matchAll(re)) {
        const i = Number(m[1]);
        arrivals.push([i, t]);
        received[stream]!.set(i, (received[stream]!.get(i) ?? 0) + 1);
      }
    },
    WATCHED,
  );
  const watched = Math.min(WATCHED, streams.count);
  log(
    `latency: ${streams.count} streams open in ${streams.openSeconds}s; writing ${RATE} changes/s for ${SECONDS}s`,
  );
  const total = RATE * SECONDS;
  const cpu0 = await server.cpuMs();
  const failures: string[] = [];
  const failed = new Set<number>();
  const t0 = performance.now();
  const writes: Promise<unknown>[] = [];
  for (let i = 1; i <= total; i++) {
    const due = t0 + (i * 1000) / RATE;
    const wait = due - performance.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    sentAt.set(i, performance.now());
    writes.push(
      api(base, 'PATCH', `/tickets/${tickets[i % tickets.length]}`, users.agent, {
        title: `bench-${i}`,
      }).then(
        () => answeredAt.set(i, performance.now()),
        (err: Error) => {
          failed.add(i);
          failures.push(err.message.slice(0, 200));
        },
      ),
    );
  }
  await Promise.all(writes);
  const expected = (total - failed.size) * watched;
  const deadline = performance.now() + 10_000;
  while (arrivals.length < expected && performance.now() < deadline) {
    await new Promise((r) => setTimeout(r, 100));
  }
  const cpuMs = (await server.cpuMs()) - cpu0;
  const peak = await server.rss();
  const ended = new Map(streams.ended);
  streams.close();
  // Which changes went missing where: on every watched stream at once (lost before the fan-out: the feed read
  // or the hub) or on some (a stream cut off, or a client problem); duplicates are never expected.
  const written = [...sentAt.keys()].filter((i) => !failed.has(i));
  const missingPerStream: number[] = [];
  let duplicates = 0;
  const missingOn = new Map<number, number>();
  for (let k = 0; k < watched; k++) {
    let missing = 0;
    for (const i of written) {
      const n = received[k]!.get(i) ?? 0;
      if (n === 0) {
        missing++;
        missingOn.set(i, (missingOn.get(i) ?? 0) + 1);
      }
      if (n > 1) duplicates += n - 1;
    }
    missingPerStream.push(missing);
  }
  const missingEverywhere = [...missingOn.values()].filter((n) => n === watched).length;
  // The commit happens between sending the PATCH and reading its answer: from the send is an upper bound
  // (it includes the request's own work), from the answer a lower one (a frame can arrive first: 0 ms).
  const fromSend = arrivals.map(([i, t]) => t - sentAt.get(i)!);
  const fromAnswer = arrivals
    .filter(([i]) => answeredAt.has(i))
    .map(([i, t]) => Math.max(0, t - answeredAt.get(i)!));
  if (failures.length) log(`writes refused: ${failures.length}; first: ${failures[0]}`);
  return {
    streams: streams.count,
    watchedStreams: watched,
    unwatchedMbReceived: mb(streams.bytes),
    streamsRefused: streams.refused,
    openSeconds: streams.openSeconds,
    changes: total,
    writesFailed: failed.size,
    deliveries: arrivals.length,
    expected,
    missing: missingPerStream.reduce((a, b) => a + b, 0),
    duplicates,
    streamsWithMissing: missingPerStream.filter((n) => n > 0).length,
    /** Changes missing on every watched stream: lost before the fan-out. */
    changesMissingEverywhere: missingEverywhere,
    /** Watched streams the server ended during the run, by the reason its `close` event gave. */
    streamsEnded: Object.fromEntries(
      [...new Set(ended.values())].map((r) => [r, [...ended.values()].filter((x) => x === r).length]),
    ),
    fromSend: { p50Ms: Math.round(pct(fromSend, 50)), p99Ms: Math.round(pct(fromSend, 99)) },
    fromAnswer: { p50Ms: Math.round(pct(fromAnswer, 50)), p99Ms: Math.round(pct(fromAnswer, 99)) },
    maxMs: Math.round(fromSend.reduce((m, x) => (x > m ? x : m), 0)),
    serverRssMb: mb(peak),
    /**
     * The server's CPU time over the run (writes, fan-out, the rest) per change and per change delivered to
     * each open stream: steadier than latency on a shared machine, where waiting for a core costs no CPU.
     */
    serverCpuMs: Math.round(cpuMs),
    serverCpuMsPerChange: Number((cpuMs / (total - failed.size)).toFixed(2)),
    serverCpuUsPerDelivery: Number(((cpuMs * 1000) / ((total - failed.size) * streams.count)).toFixed(2)),
  };
}

async function idle(base: string, server: Server, token: string) {
  const out: Array<{ streams: number; serverRssMb: number }> = [];
  const baseline = await server.rss();
  for (const n of IDLE) {
    const streams = await openStreams(base, token, n);
    await new Promise((r) => setTimeout(r, 3000)); // past one session re-check round
    const rss = await server.rss();
    out.push({ streams: streams.count, serverRssMb: mb(rss) });
    log(`idle: ${streams.count} streams (${streams.openSeconds}s to open) → server RSS ${mb(rss)} MB`);
    streams.close();
    await new Promise((r) => setTimeout(r, 2000));
  }
  return { baselineRssMb: mb(baseline), idle: out };
}

interface WriteTarget {
  name: string;
  base: string;
  agent: string;
  /** Comments rotate over these tickets: on one ticket every writer would queue behind its row lock. */
  commentTickets: number[];
  server: Server;
  database: string;
}

async function writeTarget(name: string, server: Server, database: string): Promise<WriteTarget> {
  const base = server.baseUrl;
  const users = await setup(base);
  const commentTickets: number[] = [];
  for (let i = 0; i < COMMENT_TICKETS; i++) {
    const ticket = await api<{ id: number }>(base, 'POST', '/tickets', users.requester, {
      title: `comment target ${i}`,
      description: 'd',
    });
    commentTickets.push(ticket.id);
  }
  return { name, base, agent: users.agent, commentTickets, server, database };
}

/** Time the database's backends spent executing statements (ms; PostgreSQL 14+). */
async function activeMs(admin: pg.Client, database: string): Promise<number> {
  const { rows } = await admin.query<{ t: number }>(
    'SELECT active_time AS t FROM pg_stat_database WHERE datname = $1',
    [database],
  );
  return Number(rows[0]?.t ?? Number.NaN);
}

interface Sample {
  rps: number;
  requests: number;
  serverCpuMs: number;
  dbActiveMs: number;
  dbCpuMs: number;
}

/** One endpoint on one server for `seconds`: requests/s, and the server's CPU and the database's time spent. */
async function rate(
  admin: pg.Client,
  t: WriteTarget,
  endpoint: 'createTicket' | 'addComment',
  seconds: number,
): Promise<Sample> {
  const headers = { authorization: `Bearer ${t.agent}`, 'content-type': 'application/json' };
  let next = 0;
  const opts: autocannon.Options =
    endpoint === 'createTicket'
      ? {
          url: `${t.base}/api/v1/tickets`,
          method: 'POST',
          headers,
          body: JSON.stringify({ title: 'Printer on fire', description: 'It is on fire.' }),
        }
      : {
          url: `${t.base}/api/v1/tickets/${t.commentTickets[0]}/comments`,
          method: 'POST',
          headers,
          body: JSON.stringify({ body: 'Looking into it.', visibility: 'internal' }),
          requests: [
            {
              setupRequest: (req) => {
                next = (next + 1) % t.commentTickets.length;
                return { ...req, path: `/api/v1/tickets/${t.commentTickets[next]}/comments` };
              },
            },
          ],
        };
  const cpu0 = await t.server.cpuMs();
  const db0 = await activeMs(admin, t.database);
  const dbCpu0 = await backendCpuMs(admin, t.database);
  const requests = await new Promise<number>((resolve, reject) => {
    autocannon({ ...opts, connections: CONNECTIONS, duration: seconds }, (err, r) => {
      if (err) return reject(err);
      if (r.non2xx > 0) log(`${t.name} ${endpoint}: ${r.non2xx} non-2xx answers`);
      resolve(r.requests.total);
    });
  });
  const dbCpu1 = await backendCpuMs(admin, t.database);
  // Backends report their counters to the statistics system within about a second of going idle.
  await new Promise((r) => setTimeout(r, 1200));
  return {
    dbCpuMs: cpuDelta(dbCpu0, dbCpu1),
    rps: requests / seconds,
    requests,
    serverCpuMs: (await t.server.cpuMs()) - cpu0,
    dbActiveMs: (await activeMs(admin, t.database)) - db0,
  };
}

const median = (xs: number[]) => pct(xs, 50);

/**
 * Write throughput of every target, interleaved: ROUNDS rounds, each running every target in turn for
 * WRITE_SECONDS / ROUNDS per endpoint, so a change in the machine's load hits all of them alike. Medians.
 */
async function interleavedWrites(admin: pg.Client, targets: WriteTarget[]) {
  const seconds = Math.max(2, Math.round(WRITE_SECONDS / ROUNDS));
  const samples = new Map(
    targets.map((t) => [t.name, { createTicket: [] as Sample[], addComment: [] as Sample[] }]),
  );
  for (let round = 0; round < ROUNDS; round++) {
    const order = round % 2 === 0 ? targets : [...targets].reverse();
    for (const endpoint of ['createTicket', 'addComment'] as const) {
      for (const t of order) samples.get(t.name)![endpoint].push(await rate(admin, t, endpoint, seconds));
    }
  }
  const summary = (xs: Sample[]) => {
    const requests = xs.reduce((n, x) => n + x.requests, 0);
    return {
      medianRps: Math.round(median(xs.map((x) => x.rps))),
      rps: xs.map((x) => Math.round(x.rps)),
      // Per request, over all rounds: steadier than req/s on a shared machine (waiting costs no CPU).
      serverCpuMsPerRequest: Number((xs.reduce((n, x) => n + x.serverCpuMs, 0) / requests).toFixed(2)),
      dbActiveMsPerRequest: Number((xs.reduce((n, x) => n + x.dbActiveMs, 0) / requests).toFixed(2)),
      dbCpuMsPerRequest: Number((xs.reduce((n, x) => n + x.dbCpuMs, 0) / requests).toFixed(3)),
    };
  };
  const out: Record<
    string,
    { createTicket: ReturnType<typeof summary>; addComment: ReturnType<typeof summary> }
  > = {};
  for (const [name, s] of samples) {
    out[name] = { createTicket: summary(s.createTicket), addComment: summary(s.addComment) };
  }
  return out;
}

async function main() {
  const load = os.loadavg().map((x) => x.toFixed(1));
  const results: Record<string, unknown> = {
    at: new Date().toISOString(),
    cpus: os.cpus().length,
    loadAverageAtStart: load,
  };
  log(
    `load average ${load.join(' ')}; fd limit: see \`ulimit -n\` (≥ ${Math.max(...IDLE, STREAMS) * 2 + 500} needed)`,
  );
  const pgServer = await openBenchServer(PG);
  const servers: Server[] = [];
  const cleanups: Array<() => Promise<unknown>> = [];
  /** The same build on a fresh database altered by `statements`, as a write target. */
  async function variant(name: string, port: number, statements: string[]) {
    const dbName = `${DB_PREFIX}_${name.replace(/-/g, '_')}`;
    const db = await freshDatabase(pgServer.adminUrl, dbName);
    cleanups.push(db.drop);
    const c = new pg.Client({ connectionString: db.url });
    await c.connect();
    for (const q of statements) await c.query(q);
    await c.end();
    const server = await start(name, db.url, port);
    servers.push(server);
    return writeTarget(name, server, dbName);
  }
  if (!SKIP_BUILD) await run('npm', ['run', '--silent', 'build']);
  try {
    const db = await freshDatabase(pgServer.adminUrl, DB_PREFIX);
    cleanups.push(db.drop);
    const server = await start('outbox', db.url, PORT);
    servers.push(server);
    const users = await setup(server.baseUrl);
    // Idle streams first, on the fresh process: its footprint before any load has grown the heap.
    if (PHASES.has('idle')) results.idle = await idle(server.baseUrl, server, users.agent);
    if (PHASES.has('latency')) {
      results.latency = await latency(server.baseUrl, server, users);
      log(`latency: ${JSON.stringify(results.latency)}`);
    }
    if (PHASES.has('writes')) {
      // Write throughput: the outbox as built, against the same build on a database where change events are
      // discarded (a view whose INSTEAD OF trigger hands the row back without storing it) and the announcements
      // are dropped: the outbox's whole database cost gone, only the server's own work left.
      const noEvents = await variant('no-events', PORT + 1, [
        'ALTER TABLE change_events RENAME TO change_events_stored',
        'CREATE VIEW change_events AS SELECT * FROM change_events_stored',
        'CREATE SEQUENCE bench_change_events_id',
        `CREATE FUNCTION bench_change_events_discard() RETURNS trigger LANGUAGE plpgsql AS $$
         BEGIN
           NEW.id := nextval('bench_change_events_id');
           NEW.xid := coalesce(NEW.xid, pg_current_xact_id());
           NEW.occurred_at := coalesce(NEW.occurred_at, now());
           NEW.staff_only := coalesce(NEW.staff_only, false);
           RETURN NEW;
         END $$`,
        // Found before pg_catalog's by the search path below; other channels (the job queue's) pass through.
        `CREATE FUNCTION public.pg_notify(channel text, payload text) RETURNS void LANGUAGE plpgsql AS $$
         BEGIN
           IF channel <> 'change_events' THEN PERFORM pg_catalog.pg_notify(channel, payload); END IF;
         END $$`,
        `DO $$ BEGIN EXECUTE format('ALTER DATABASE %I SET search_path = public, pg_catalog', current_database()); END $$`,
        `CREATE TRIGGER bench_change_events_discard INSTEAD OF INSERT ON change_events
           FOR EACH ROW EXECUTE FUNCTION bench_change_events_discard()`,
      ]);
      const admin = new pg.Client({ connectionString: pgServer.adminUrl });
      await admin.connect();
      cleanups.push(() => admin.end());
      const w = await interleavedWrites(admin, [await writeTarget('outbox', server, DB_PREFIX), noEvents]);
      results.writesWithOutbox = w.outbox;
      results.writesWithoutEvents = w['no-events'];
      log(`writes: ${JSON.stringify(w)}`);
    }
  } finally {
    for (const s of servers) await s.stop().catch(() => {});
    killChildren();
    for (const c of cleanups.reverse()) await c().catch(() => {});
    await pgServer.stop();
  }
  type W = Record<
    'createTicket' | 'addComment',
    {
      medianRps: number;
      serverCpuMsPerRequest: number;
      dbActiveMsPerRequest: number;
      dbCpuMsPerRequest: number;
    }
  >;
  const w = results.writesWithOutbox as W | undefined;
  /** What the outbox costs against a reference: req/s lost, CPU and database time added per request (%). */
  const cost = (ref: unknown) => {
    const r = ref as W | undefined;
    if (!w || !r) return undefined;
    const pctOf = (a: number, b: number) => Number((((a - b) / b) * 100).toFixed(1));
    const one = (e: 'createTicket' | 'addComment') => ({
      rpsLossPct: Number((((r[e].medianRps - w[e].medianRps) / r[e].medianRps) * 100).toFixed(1)),
      serverCpuPerRequestPct: pctOf(w[e].serverCpuMsPerRequest, r[e].serverCpuMsPerRequest),
      dbTimePerRequestPct: pctOf(w[e].dbActiveMsPerRequest, r[e].dbActiveMsPerRequest),
      dbCpuPerRequestPct: pctOf(w[e].dbCpuMsPerRequest, r[e].dbCpuMsPerRequest),
    });
    return { createTicket: one('createTicket'), addComment: one('addComment') };
  };
  results.outboxCostVsNoEvents = cost(results.writesWithoutEvents);
  results.loadAverageAtEnd = os.loadavg().map((x) => x.toFixed(1));
  console.log(JSON.stringify(results, null, 2));
  log(`written to ${await writeJson('changes', results)}`);
}

main().catch((err) => {
  killChildren();
  console.error(err);
  process.exit(1);
});
