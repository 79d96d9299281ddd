/**
 * `npx tsx bench/sla.ts [--tickets 1000000] [--due 10000] [--pg postgres://…/postgres] [--db NAME] [--runs 30]`
 *
 * The SLA targets, measured on a seeded database `helpdesk_bench_sla_<N>` (made once with `npm run seed`, then
 * reused; `--reseed` starts over), or `--db NAME` (e.g. the one bench:reports seeded: one 1M seed for both).
 * The SLA state (a 24/7 policy, due times over the next 30 days for open tickets) is written once per
 * database and remembered in bench_sla_state; every run resets only the narrow ticket_sla rows to it.
 *  1. "Due next": the agent's list sorted by `slaDueAt` (first page and a page deep in the walk) against the
 *     default list (`-updatedAt`), same repository code the API runs. Target: within 1.5× of the default list.
 *  2. The breach job over all N tickets with `--due` of them past their due time: database time of one
 *     detection pass (sum of the round trips of every statement it sends, loopback), through the real
 *     services (change feed, audit, jobs). Target: < 1 s for 10k. Then the notification jobs that pass
 *     enqueued (mail and webhook subscribers of its events), run in-process and timed the same way.
 *
 * Bounded: a fixed number of runs per query, one pass of the job; nothing listens on a port.
 */

import { randomBytes } from 'node:crypto';
import { parseArgs } from 'node:util';
import { drizzle } from 'drizzle-orm/node-postgres';
import pg from 'pg';
import { loadConfig } from '../src/config.js';
import type { Database } from '../src/db/client.js';
import { runMigrations } from '../src/db/migrate.js';
import { SLA_NOTIFY_JOB } from '../src/modules/sla/sla.service.js';
import { createTicketsRepository } from '../src/modules/tickets/tickets.repository.js';
import { createServices, type ServicesConfig } from '../src/services.js';
import { backendCpuMs, cpuDelta, run } from './proc.js';

const { values: args } = parseArgs({
  options: {
    tickets: { type: 'string', default: '1000000' },
    due: { type: 'string', default: '10000' },
    pg: {
      type: 'string',
      default: process.env.BENCH_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres',
    },
    runs: { type: 'string', default: '30' },
    reseed: { type: 'boolean', default: false },
    db: { type: 'string' },
    // Prints the plan of every statement of the breach pass (auto_explain, ANALYZE + BUFFERS) instead of
    // trusting its timings: the instrumentation itself costs time.
    explain: { type: 'boolean', default: false },
    // Only the breach job and its notification jobs (repeated runs to compare code under a noisy load).
    'skip-list': { type: 'boolean', default: false },
  },
});
const N = Number(args.tickets);
const DUE = Number(args.due);
const RUNS = Number(args.runs);

const admin = new pg.Client({ connectionString: args.pg });
await admin.connect();
const dbName = args.db ?? `helpdesk_bench_sla_${N}`;
const url = new URL(args.pg);
url.pathname = `/${dbName}`;
const dbUrl = url.toString();
const exists = (await admin.query('SELECT 1 FROM pg_database WHERE datname = $1', [dbName])).rowCount! > 0;
if (exists && args.reseed) await admin.query(`DROP DATABASE ${dbName} WITH (FORCE)`);
if (!exists || args.reseed) {
  await admin.query(`CREATE DATABASE ${dbName}`);
  await runMigrations(dbUrl);
  const t = Date.now();
  console.log(`seeding ${N} tickets into ${dbName} …`);
  await run('npx', ['tsx', 'bench/seed.ts', '--tickets', String(N), '--comments-per-ticket', '1'], {
    ...process.env,
    DATABASE_URL: dbUrl,
  });
  console.log(`seeded in ${((Date.now() - t) / 1000).toFixed(0)} s`);
} else {
  await runMigrations(dbUrl);
}
await admin.end();

/** Every statement's round trip is timed: "database time" of a piece of work is their sum. */
let dbMs = 0;
let statements = 0;
const byKind = new Map<string, { ms: number; n: number }>();
function note(text: unknown, ms: number) {
  dbMs += ms;
  statements++;
  const sqlText = typeof text === 'string' ? text : ((text as { text?: string })?.text ?? '');
  const kind = sqlText.trim().replace(/\s+/g, ' ').slice(0, 48);
  const k = byKind.get(kind) ?? { ms: 0, n: 0 };
  k.ms += ms;
  k.n++;
  byKind.set(kind, k);
}
class TimedClient extends pg.Client {
  // biome-ignore lint/suspicious/noExplicitAny: pg's overloaded query signature
  override query(...a: any[]): any {
    const t = performance.now();
    const last = a.length - 1;
    if (typeof a[last] === 'function') {
      const cb = a[last];
      // biome-ignore lint/suspicious/noExplicitAny: pg callback
      a[last] = (err: any, res: any) => {
        note(a[0], performance.now() - t);
        cb(err, res);
      };
      // biome-ignore lint/suspicious/noExplicitAny: pg's overloaded query signature
      return (super.query as any)(...a);
    }
    // biome-ignore lint/suspicious/noExplicitAny: pg's overloaded query signature
    const r = (super.query as any)(...a);
    if (r && typeof r.then === 'function') return r.finally(() => note(a[0], performance.now() - t));
    return r;
  }
}
const pool = new pg.Pool({ connectionString: dbUrl, max: 4, Client: TimedClient as typeof pg.Client });
pool.on('error', () => {});
/** auto_explain's plans, sent to this client as notices, kept while `capturePlans` is on (--explain). */
const plans: string[] = [];
let capturePlans = false;
if (args.explain) {
  pool.on('connect', (c) => {
    c.on('notice', (n) => {
      if (capturePlans) plans.push(n.message ?? '');
    });
    c.query(`LOAD 'auto_explain'; SET auto_explain.log_min_duration = 0; SET auto_explain.log_analyze = on;
      SET auto_explain.log_buffers = on; SET auto_explain.log_nested_statements = on;
      SET auto_explain.log_level = notice`).catch(() => {});
  });
}
const db = drizzle({ client: pool, casing: 'snake_case' }) as Database;

// ---- arrange SLA state, once per database: a 24/7 policy; open tickets get resolution due times spread
// over the next 30 days from an anchor time, `DUE` of them just before it (not yet marked) and one in 20
// a day before it (marked earlier). The anchor is kept: every run measures "now = anchor". ----
const t0 = Date.now();
await pool.query(
  'CREATE TABLE IF NOT EXISTS bench_sla_state (anchor timestamptz NOT NULL, due int NOT NULL, policy_id uuid NOT NULL)',
);
let state = (
  await pool.query<{ anchor: Date; due: number; policy_id: string }>('SELECT * FROM bench_sla_state')
).rows[0];
if (!state || state.due !== DUE) {
  const anchor = new Date();
  await pool.query('BEGIN');
  await pool.query('DELETE FROM bench_sla_state');
  await pool.query(`DELETE FROM sla_policies WHERE name = 'bench 24/7'`);
  const { rows: pol } = await pool.query<{ id: string }>(
    `INSERT INTO sla_policies (name, position, targets) VALUES ('bench 24/7', 0, '{"normal":{"firstResponseMinutes":240,"resolutionMinutes":2880}}') RETURNING id`,
  );
  const policyId = pol[0]!.id;
  // The DUE-th open ticket (by id) that is not one of the "breached earlier" ones bounds the due set.
  const { rows: bound } = await pool.query<{ id: number }>(
    `SELECT id FROM tickets WHERE status IN ('new', 'open', 'on_hold') AND deleted_at IS NULL AND id % 20 <> 0
      ORDER BY id OFFSET $1 - 1 LIMIT 1`,
    [DUE],
  );
  const dueMax = bound[0]?.id ?? 0;
  await pool.query(
    `UPDATE tickets SET sla_policy_id = NULL, sla_first_response_due_at = NULL, sla_resolution_due_at = NULL,
       sla_resolution_started_at = NULL, sla_next_due_at = 'infinity'
     WHERE sla_policy_id IS NOT NULL`,
  );
  await pool.query(
    `UPDATE tickets SET sla_policy_id = $1, sla_resolution_started_at = created_at, sla_first_response_due_at = NULL,
       sla_resolution_due_at = d.due, sla_next_due_at = d.due
       FROM (SELECT id, CASE WHEN id % 20 = 0 THEN $2::timestamptz - interval '1 day'
                             WHEN id <= $3 THEN $2::timestamptz - (id % 50) * interval '1 second'
                             ELSE $2::timestamptz + interval '2 minutes' + (id % 43200) * interval '1 minute' END AS due
               FROM tickets WHERE status IN ('new', 'open', 'on_hold') AND deleted_at IS NULL) d
     WHERE tickets.id = d.id`,
    [policyId, anchor.toISOString(), dueMax],
  );
  await pool.query('INSERT INTO bench_sla_state VALUES ($1, $2, $3)', [anchor.toISOString(), DUE, policyId]);
  await pool.query('COMMIT');
  await pool.query('VACUUM ANALYZE tickets');
  state = { anchor, due: DUE, policy_id: policyId };
}
const now = new Date(state.anchor);
// Every run starts from the same marks: breached earlier = marked; the rest watched at their due time.
await pool.query('TRUNCATE ticket_sla');
await pool.query(
  `INSERT INTO ticket_sla (ticket_id, resolution_breached_at, breach_check_at)
   SELECT id, CASE WHEN id % 20 = 0 THEN sla_resolution_due_at END,
          CASE WHEN id % 20 <> 0 THEN sla_resolution_due_at END
     FROM tickets WHERE sla_policy_id = $1 AND sla_resolution_due_at IS NOT NULL`,
  [state.policy_id],
);
await pool
  .query(
    `DELETE FROM graphile_worker._private_jobs WHERE task_id IN
  (SELECT id FROM graphile_worker._private_tasks WHERE identifier = $1)`,
    [SLA_NOTIFY_JOB],
  )
  .catch(() => {});
await pool.query('VACUUM ANALYZE ticket_sla');
// The reset above rewrote the whole ticket_sla table: write its pages out now, or the pass would pay for
// the bench's own rewrite (backends evicting its dirty buffers, a checkpoint running meanwhile). A pass
// in service runs every 15 s against a table that changes a row at a time.
await pool
  .query('CHECKPOINT')
  .catch(() => console.log('(no CHECKPOINT privilege: the pass may pay for the reset)'));
const { rows: shape } = await pool.query(
  `SELECT (SELECT count(*) FROM tickets)::int AS tickets,
          (SELECT count(*) FROM tickets WHERE sla_policy_id IS NOT NULL)::int AS governed,
          count(*) FILTER (WHERE breach_check_at <= $1)::int AS due_now,
          count(*) FILTER (WHERE resolution_breached_at IS NOT NULL)::int AS breached_before,
          -- Every run adds a pass's audit rows and change events (append-only): the pass's index inserts
          -- cost more as these grow, so runs compare only at similar sizes.
          (SELECT count(*) FROM audit_events)::int AS audit_rows,
          (SELECT count(*) FROM change_events)::int AS change_events
     FROM ticket_sla`,
  [now.toISOString()],
);
console.log(`arranged SLA state in ${((Date.now() - t0) / 1000).toFixed(1)} s:`, shape[0]);

if (!args['skip-list']) {
  // ---- 1. list: default vs slaDueAt ----
  const repo = createTicketsRepository();
  async function timeList(label: string, fn: () => Promise<unknown>) {
    for (let i = 0; i < 3; i++) await fn(); // warm
    const samples: number[] = [];
    for (let i = 0; i < RUNS; i++) {
      const before = dbMs;
      await fn();
      samples.push(dbMs - before);
    }
    samples.sort((a, b) => a - b);
    const median = samples[Math.floor(samples.length / 2)]!;
    const p95 = samples[Math.floor(samples.length * 0.95)]!;
    console.log(`${label.padEnd(52)} median ${median.toFixed(2)} ms  p95 ${p95.toFixed(2)} ms`);
    return median;
  }
  const deep = await pool.query<{ v: string; id: number }>(
    `SELECT CASE WHEN isfinite(sla_next_due_at) THEN to_char(sla_next_due_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') ELSE 'infinity' END AS v, id
     FROM tickets WHERE deleted_at IS NULL ORDER BY sla_next_due_at, id OFFSET 5000 LIMIT 1`,
  );
  const deepDefault = await pool.query<{ v: Date; id: number }>(
    `SELECT updated_at AS v, id FROM tickets WHERE deleted_at IS NULL ORDER BY updated_at DESC, id DESC OFFSET 5000 LIMIT 1`,
  );
  const base = await timeList('default list (-updatedAt), first page', () =>
    repo.list(db, {}, { key: 'updatedAt', desc: true }, null, 26),
  );
  const baseDeep = await timeList('default list, page after 5,000 rows', () =>
    repo.list(
      db,
      {},
      { key: 'updatedAt', desc: true },
      { value: deepDefault.rows[0]!.v.toISOString(), id: deepDefault.rows[0]!.id },
      26,
    ),
  );
  const sla = await timeList('sort=slaDueAt, first page', () =>
    repo.list(db, {}, { key: 'slaDueAt', desc: false }, null, 26),
  );
  const slaDeep = await timeList('sort=slaDueAt, page after 5,000 rows', () =>
    repo.list(db, {}, { key: 'slaDueAt', desc: false }, { value: deep.rows[0]!.v, id: deep.rows[0]!.id }, 26),
  );
  const slaDesc = await timeList('sort=-slaDueAt, first page', () =>
    repo.list(db, {}, { key: 'slaDueAt', desc: true }, null, 26),
  );
  await timeList('slaBreached=true, default sort', () =>
    repo.list(db, { slaBreached: true }, { key: 'updatedAt', desc: true }, null, 26),
  );
  await timeList('slaBreached=false, sort=slaDueAt', () =>
    repo.list(db, { slaBreached: false }, { key: 'slaDueAt', desc: false }, null, 26),
  );
  console.log(
    `ratio slaDueAt / default: first page ${(sla / base).toFixed(2)}×, deep ${(slaDeep / baseDeep).toFixed(2)}×, -slaDueAt ${(slaDesc / base).toFixed(2)}× (target ≤ 1.5×)`,
  );
  const plan = await pool.query(
    `EXPLAIN (ANALYZE, BUFFERS) SELECT id FROM tickets WHERE deleted_at IS NULL ORDER BY sla_next_due_at, id LIMIT 26`,
  );
  console.log(plan.rows.map((r) => `  ${r['QUERY PLAN']}`).join('\n'));
}

// ---- 2. the breach job, through the real services (audit, change feed with its mail and webhook
// subscribers, jobs) ----
const config = loadConfig({
  ...process.env,
  DATABASE_URL: dbUrl,
  JWT_SECRET: randomBytes(32).toString('hex'),
});
const services = createServices({ ...config, jwtSecret: config.jwtSecret! } as ServicesConfig, db, {
  clock: { now: () => now },
});
/** Milliseconds this database's backends spent executing statements (pg_stat_database; flushed within ~1 s). */
async function activeMs(): Promise<number> {
  await new Promise((r) => setTimeout(r, 1500));
  const c = new pg.Client({ connectionString: dbUrl });
  await c.connect();
  try {
    const { rows } = await c.query<{ t: number }>(
      'SELECT active_time AS t FROM pg_stat_database WHERE datname = current_database()',
    );
    return Number(rows[0]?.t ?? Number.NaN);
  } finally {
    await c.end();
  }
}
/** WAL written by the whole server (pg_stat_wal): records, full-page images, bytes. */
async function walStats(): Promise<{ records: number; fpi: number; bytes: number; lsn: string }> {
  const { rows } = await pool.query<{ records: string; fpi: string; bytes: string; lsn: string }>(
    'SELECT wal_records AS records, wal_fpi AS fpi, wal_bytes AS bytes, pg_current_wal_lsn()::text AS lsn FROM pg_stat_wal',
  );
  const r = rows[0]!;
  return { records: Number(r.records), fpi: Number(r.fpi), bytes: Number(r.bytes), lsn: r.lsn };
}
const activeBefore = await activeMs();
const cpuBefore = await backendCpuMs(pool, dbName);
const walBefore = await walStats();
dbMs = 0;
statements = 0;
byKind.clear();
const wall = performance.now();
capturePlans = true;
const result = await services.sla.detectBreaches({ now });
capturePlans = false;
const wallMs = performance.now() - wall;
if (args.explain) console.log(plans.map((p) => p.replace(/^/gm, '  ')).join('\n'));
const cpuMs = cpuDelta(cpuBefore, await backendCpuMs(pool, dbName));
const walAfter = await walStats();
const serverMs = (await activeMs()) - activeBefore;
console.log(
  `breach job: ${result.breaches} breaches on ${result.tickets} tickets; database time ${dbMs.toFixed(0)} ms over ${statements} statements (round trips), ${serverMs.toFixed(0)} ms executing in PostgreSQL (pg_stat_database.active_time, includes the stats probes), ${cpuMs.toFixed(0)} ms of backend CPU; wall ${wallMs.toFixed(0)} ms (target: < 1000 ms database time for 10k)`,
);
console.log(
  `  WAL: ${walAfter.records - walBefore.records} records, ${walAfter.fpi - walBefore.fpi} full-page images, ${((walAfter.bytes - walBefore.bytes) / 1048576).toFixed(1)} MiB (${walBefore.lsn} → ${walAfter.lsn})`,
);
for (const [kind, k] of [...byKind].sort((a, b) => b[1].ms - a[1].ms).slice(0, 8))
  console.log(`  ${k.ms.toFixed(0).padStart(6)} ms  ${String(k.n).padStart(4)}×  ${kind}`);
const again = await services.sla.detectBreaches({ now });
console.log(`second pass: ${again.breaches} breaches (must be 0)`);
if (args.explain) {
  await pool.end();
  process.exit(0);
}

// The notification jobs the pass enqueued, run in-process: their subscribers enqueue the mail (and webhook) jobs.
const { rows: notify } = await pool.query<{ payload: { events: number[] } }>(
  `SELECT j.payload FROM graphile_worker._private_jobs j JOIN graphile_worker._private_tasks t ON t.id = j.task_id
    WHERE t.identifier = $1`,
  [SLA_NOTIFY_JOB],
);
const cpuNotifyBefore = await backendCpuMs(pool, dbName);
dbMs = 0;
statements = 0;
byKind.clear();
const wallNotify = performance.now();
let dispatched = 0;
for (const job of notify) dispatched += (await services.sla.notifyBreaches(job.payload.events)).events;
console.log(
  `notification jobs: ${notify.length} jobs, ${dispatched} events handed to the subscribers; database time ${dbMs.toFixed(0)} ms over ${statements} statements, ${cpuDelta(cpuNotifyBefore, await backendCpuMs(pool, dbName)).toFixed(0)} ms of backend CPU; wall ${(performance.now() - wallNotify).toFixed(0)} ms`,
);
for (const [kind, k] of [...byKind].sort((a, b) => b[1].ms - a[1].ms).slice(0, 5))
  console.log(`  ${k.ms.toFixed(0).padStart(6)} ms  ${String(k.n).padStart(4)}×  ${kind}`);
await pool.query(`DELETE FROM graphile_worker._private_jobs`).catch(() => {});
await pool.end();
