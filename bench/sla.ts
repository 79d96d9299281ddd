/**
 * `npx tsx bench/sla.ts [--tickets 1000000] [--due 10000] [--pg postgres://…/postgres] [--runs 30]`
 *
 * The SLA targets, measured on a seeded database `helpdesk_bench_sla_<N>` (made once with `npm run seed`, then
 * reused; `--reseed` starts over):
 *  1. "Due next": the agent's list sorted by `slaDueAt` (first page and a page deep in the walk) against the
 *     default list (`-updatedAt`), same repository code the API runs. Target: within 1.5× of the default list.
 *  2. The breach job over all N tickets with `--due` of them past their due time: database time of one
 *     detection pass (sum of the round trips of every statement it sends, loopback). Target: < 1 s for 10k.
 *
 * Bounded: a fixed number of runs per query, one pass of the job; nothing listens on a port.
 */
import { parseArgs } from 'node:util';
import { drizzle } from 'drizzle-orm/node-postgres';
import pg from 'pg';
import type { Database } from '../src/db/client.js';
import { runMigrations } from '../src/db/migrate.js';
import * as schema from '../src/db/schema/index.js';
import { createCursorCodec } from '../src/lib/cursor.js';
import { createAuditRepository } from '../src/modules/audit/audit.repository.js';
import { createAuditService } from '../src/modules/audit/audit.service.js';
import { createSlaRepository } from '../src/modules/sla/sla.repository.js';
import { createSlaService } from '../src/modules/sla/sla.service.js';
import { createTicketsRepository } from '../src/modules/tickets/tickets.repository.js';
import { run } from './proc.js';

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
  },
});
const N = Number(args.tickets);
const DUE = Number(args.due);
const RUNS = Number(args.runs);

const admin = new pg.Client({ connectionString: args.pg });
await admin.connect();
const dbName = `helpdesk_bench_sla_${N}`;
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
const db = drizzle({ client: pool, schema, casing: 'snake_case' }) as unknown as Database;

// ---- arrange SLA state: a 24/7 policy; open tickets get due times spread over the next 30 days,
// `DUE` of them are past due and not yet marked; a few percent were breached earlier. ----
const now = new Date();
const t0 = Date.now();
await pool.query('BEGIN');
await pool.query(`DELETE FROM sla_policies WHERE name = 'bench 24/7'`);
const { rows: pol } = await pool.query<{ id: string }>(
  `INSERT INTO sla_policies (name, position, targets) VALUES ('bench 24/7', 0, '{"normal":{"firstResponseMinutes":240,"resolutionMinutes":2880}}') RETURNING id`,
);
await pool.query(
  `UPDATE tickets SET sla_policy_id = NULL, sla_first_response_due_at = NULL, sla_resolution_due_at = NULL,
     sla_first_response_breached_at = NULL, sla_resolution_breached_at = NULL, sla_resolution_started_at = NULL,
     sla_next_due_at = 'infinity', sla_breach_check_at = NULL
   WHERE sla_policy_id IS NOT NULL`,
);
await pool.query(
  `UPDATE tickets SET sla_policy_id = $1,
     sla_resolution_started_at = created_at,
     sla_resolution_due_at = $2::timestamptz + (id % 43200) * interval '1 minute',
     sla_resolution_breached_at = CASE WHEN id % 20 = 0 THEN $2::timestamptz - interval '1 day' END,
     sla_first_response_due_at = NULL
   WHERE status IN ('new', 'open', 'on_hold') AND deleted_at IS NULL`,
  [pol[0]!.id, new Date(now.getTime() + 120_000).toISOString()],
);
// Breached earlier ones were due a day ago; the rest are due in the future.
await pool.query(
  `UPDATE tickets SET sla_resolution_due_at = sla_resolution_breached_at WHERE sla_resolution_breached_at IS NOT NULL`,
);
// DUE tickets went past their due time a little while ago and are not marked yet.
await pool.query(
  `UPDATE tickets SET sla_resolution_due_at = $1::timestamptz - (id % 50) * interval '1 second'
    WHERE id IN (SELECT id FROM tickets WHERE sla_policy_id IS NOT NULL AND sla_resolution_breached_at IS NULL
                 ORDER BY id LIMIT $2)`,
  [now.toISOString(), DUE],
);
await pool.query(
  `UPDATE tickets SET sla_next_due_at = sla_resolution_due_at,
     sla_breach_check_at = CASE WHEN sla_resolution_breached_at IS NULL THEN sla_resolution_due_at END
   WHERE sla_policy_id IS NOT NULL`,
);
await pool.query('COMMIT');
await pool.query('VACUUM ANALYZE tickets');
const { rows: shape } = await pool.query(
  `SELECT count(*)::int AS tickets,
          count(*) FILTER (WHERE sla_policy_id IS NOT NULL)::int AS governed,
          count(*) FILTER (WHERE sla_breach_check_at <= $1)::int AS due_now,
          count(*) FILTER (WHERE sla_resolution_breached_at IS NOT NULL)::int AS breached_before
     FROM tickets`,
  [now.toISOString()],
);
console.log(`arranged SLA state in ${((Date.now() - t0) / 1000).toFixed(1)} s:`, shape[0]);

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

// ---- 2. the breach job ----
const audit = createAuditService({ audit: createAuditRepository() });
let events = 0;
const service = createSlaService({
  db,
  repo: createSlaRepository(),
  audit,
  changes: {
    record: async () => {
      events++;
    },
  },
  cursor: createCursorCodec('bench'.repeat(8), 'sla'),
  clock: { now: () => now },
  ticketData: async (ex, ids) =>
    new Map((await repo.findViews(ex, ids)).map((v) => [v.id, v as unknown as Record<string, unknown>])),
});
dbMs = 0;
statements = 0;
byKind.clear();
const wall = performance.now();
const result = await service.detectBreaches({ now });
const wallMs = performance.now() - wall;
console.log(
  `breach job: ${result.breaches} breaches on ${result.tickets} tickets; database time ${dbMs.toFixed(0)} ms over ${statements} statements; wall ${wallMs.toFixed(0)} ms; ${events} change events handed to the recorder (target: < 1000 ms database time for 10k)`,
);
for (const [kind, k] of [...byKind].sort((a, b) => b[1].ms - a[1].ms).slice(0, 8))
  console.log(`  ${k.ms.toFixed(0).padStart(6)} ms  ${String(k.n).padStart(4)}×  ${kind}`);
const again = await service.detectBreaches({ now });
console.log(`second pass: ${again.breaches} breaches (must be 0)`);
await pool.end();
