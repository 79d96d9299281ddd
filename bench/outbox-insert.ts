/**
 * `npx tsx bench/outbox-insert.ts`: what one change event costs the writer, measured without the noise of a
 * shared machine's HTTP load: transactions that each update a ticket, alternating (in rounds) with and
 * without recording its change event, on one connection. Reports the client process's CPU (µs, the
 * application's side: building and sending the statement, reading its answer) and the PostgreSQL backend's
 * CPU (µs, from /proc: executing it, index and heap inserts, the NOTIFY at commit) per transaction, and
 * their difference: the outbox's cost per write. BENCH_PG_URL (a local server: /proc), BENCH_N (2000 per
 * round and kind), BENCH_ROUNDS (6). The database (BENCH_DB_PREFIX) is created and dropped.
 */
import os from 'node:os';
import { sql } from 'drizzle-orm';
import { createDb } from '../src/db/client.js';
import { runMigrations } from '../src/db/migrate.js';
import { createChangesRepository } from '../src/modules/changes/changes.repository.js';
import { freshDatabase, openBenchServer } from './database.js';
import { procCpuMs } from './proc.js';

const PG =
  process.env.BENCH_PG_URL ?? process.env.TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const N = Number(process.env.BENCH_N ?? '2000');
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? '6');
const PREFIX = process.env.BENCH_DB_PREFIX ?? 'helpdesk_bench_outbox';

async function main() {
  const server = await openBenchServer(PG);
  const target = await freshDatabase(server.adminUrl, PREFIX);
  try {
    await runMigrations(target.url, target.url);
    const { db, close } = createDb(target.url, {
      poolMax: 1,
      connectionTimeoutMs: 5000,
      statementTimeoutMs: 10_000,
      preparedStatements: true,
    });
    const changes = createChangesRepository();
    const user = await db.execute<{ id: string }>(
      sql`INSERT INTO users (email, name, password_hash, role) VALUES ('o@example.test', 'O', 'x', 'agent') RETURNING id`,
    );
    const userId = user.rows[0]!.id;
    const ticket = await db.execute<{ id: number }>(
      sql`INSERT INTO tickets (title, description, requester_id) VALUES ('t', 'd', ${userId}) RETURNING id`,
    );
    const ticketId = ticket.rows[0]!.id;
    const backend = await db.execute<{ pid: number }>(sql`SELECT pg_backend_pid() AS pid`);
    const pid = backend.rows[0]!.pid;
    // The entity of a typical ticket event (≈ 600 bytes of JSON).
    const data = {
      ticket: {
        id: ticketId,
        title: 'Printer on fire in the third-floor copy room',
        description: 'It is on fire.',
        status: 'open',
        priority: 'normal',
        requester: { id: userId, name: 'O', email: 'o@example.test' },
        assignee: null,
        team: null,
        tags: ['printer', 'fire'],
        createdAt: new Date().toISOString(),
        updatedAt: new Date().toISOString(),
        dueAt: null,
        deletedAt: null,
      },
      changes: { priority: ['low', 'normal'] },
    };
    const one = (withEvent: boolean, i: number) =>
      db.transaction(async (tx) => {
        await tx.execute(sql`UPDATE tickets SET title = ${`t${i}`} WHERE id = ${ticketId}`);
        if (withEvent) {
          await changes.insert(tx, {
            type: 'ticket.updated',
            ticketId,
            staffOnly: false,
            actorId: userId,
            actorName: 'O',
            actorRole: 'agent',
            traceId: `trace-${i}`,
            data,
          });
        }
      });
    for (let i = 0; i < 500; i++) await one(i % 2 === 0, i); // warm-up: JIT, prepared plans
    const acc = { with: { app: 0, pg: 0, n: 0 }, without: { app: 0, pg: 0, n: 0 } };
    for (let r = 0; r < ROUNDS; r++) {
      for (const withEvent of r % 2 === 0 ? [true, false] : [false, true]) {
        const cpu0 = process.cpuUsage();
        const pg0 = (await procCpuMs(pid)) * 1000;
        for (let i = 0; i < N; i++) await one(withEvent, i);
        const cpu = process.cpuUsage(cpu0);
        const a = acc[withEvent ? 'with' : 'without'];
        a.app += cpu.user + cpu.system;
        a.pg += (await procCpuMs(pid)) * 1000 - pg0;
        a.n += N;
      }
    }
    const per = (a: { app: number; pg: number; n: number }) => ({
      appUs: Math.round(a.app / a.n),
      pgUs: Math.round(a.pg / a.n),
    });
    const w = per(acc.with);
    const wo = per(acc.without);
    console.log(
      JSON.stringify({
        loadAverage: os.loadavg().map((x) => x.toFixed(1)),
        transactions: acc.with.n + acc.without.n,
        withEvent: w,
        withoutEvent: wo,
        eventCost: { appUs: w.appUs - wo.appUs, pgUs: w.pgUs - wo.pgUs },
      }),
    );
    await close();
  } finally {
    await target.drop();
    await server.stop();
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
