/**
 * `npx tsx bench/explain-tickets.ts [DATABASE_URL]`: EXPLAIN (ANALYZE, BUFFERS) of the ticket list queries
 * exactly as the repository builds them (captured from drizzle), on a seeded database (`npm run seed`),
 * with the mean wall time of 20 runs through node-postgres. Shows that the common lists are index-driven.
 */
import { drizzle } from 'drizzle-orm/node-postgres';
import pg from 'pg';
import { createTicketsRepository } from '../src/modules/tickets/tickets.repository.js';

const url = process.argv[2] ?? process.env.DATABASE_URL;
if (!url) {
  console.error('usage: npx tsx bench/explain-tickets.ts postgres://…  (or set DATABASE_URL)');
  process.exit(2);
}
const pool = new pg.Pool({ connectionString: url, max: 2 });
const captured: { sql: string; params: unknown[] }[] = [];
const db = drizzle({
  client: pool,
  casing: 'snake_case',
  logger: { logQuery: (sql, params) => captured.push({ sql, params }) },
});
const repo = createTicketsRepository();
type Args = Parameters<typeof repo.list>;

const { rows: counts } = await pool.query<{ n: number }>('SELECT count(*)::int AS n FROM tickets');
const { rows: top } = await pool.query<{ requester_id: string }>(
  'SELECT requester_id FROM tickets GROUP BY 1 ORDER BY count(*) DESC LIMIT 1',
);
const { rows: mid } = await pool.query<{ updated_at: Date; id: number }>(
  `SELECT updated_at, id FROM tickets WHERE status = 'open' AND deleted_at IS NULL ORDER BY updated_at DESC, id DESC OFFSET 5000 LIMIT 1`,
);
const cases: Array<[string, Args[1], Args[2], Args[3]]> = [
  [
    'status=open, default sort (-updatedAt), first page',
    { status: ['open'] },
    { key: 'updatedAt', desc: true },
    null,
  ],
  [
    'status=open, default sort, page after 5,000 rows (cursor)',
    { status: ['open'] },
    { key: 'updatedAt', desc: true },
    mid[0] ? { value: mid[0].updated_at.toISOString(), id: mid[0].id } : null,
  ],
  ['no filter, default sort', {}, { key: 'updatedAt', desc: true }, null],
  [
    "one requester's tickets (what a requester lists)",
    { requesterId: top[0]?.requester_id },
    { key: 'updatedAt', desc: true },
    null,
  ],
  [
    'status=open,pending, sort=-priority',
    { status: ['open', 'pending'] },
    { key: 'priority', desc: true },
    null,
  ],
  ['q=zeppelin (rare term), ranked', { q: 'zeppelin' }, { key: 'rank', desc: true }, null],
  ['q=printer (common term, ~40% of tickets), ranked', { q: 'printer' }, { key: 'rank', desc: true }, null],
  ['q=printer, sort=-updatedAt', { q: 'printer' }, { key: 'updatedAt', desc: true }, null],
];

console.log(`tickets in database: ${counts[0]!.n.toLocaleString('en')}`);
const client = await pool.connect();
try {
  for (const [name, filters, order, after] of cases) {
    captured.length = 0;
    await repo.list(db, filters, order, after, 26);
    const { sql, params } = captured.find((c) => c.sql.startsWith('select'))!;
    // Reproduce the statement's settings (search runs with SET LOCAL max_parallel_workers_per_gather = 0).
    const settings = captured
      .filter((c) => c.sql.startsWith('SET LOCAL'))
      .map((c) => c.sql.replace('SET LOCAL', 'SET'));
    await client.query('RESET ALL');
    for (const set of settings) await client.query(set);
    for (let i = 0; i < 3; i++) await client.query(sql, params); // warm the cache
    const runs = 20;
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < runs; i++) await client.query(sql, params);
    const meanMs = Number(process.hrtime.bigint() - t0) / 1e6 / runs;
    const plan = await client.query(`EXPLAIN (ANALYZE, BUFFERS) ${sql}`, params);
    console.log(`\n### ${name} — mean ${meanMs.toFixed(2)} ms over ${runs} runs (client wall time)`);
    for (const set of settings) console.log(`(${set})`);
    console.log(plan.rows.map((r) => r['QUERY PLAN']).join('\n'));
  }
} finally {
  client.release();
  await pool.end();
}
