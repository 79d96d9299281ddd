/**
 * `npm run bench -- --bulk`: one bulk change of 1,000 tickets, in a fresh database `helpdesk_bench_bulk`,
 * through the application's services and job runner: the dry run (each ticket's change run and rolled
 * back), then the confirmed job (one transaction per ticket, audit + change event each). For both: wall
 * time, and database time = growth of pg_stat_database.active_time of the bench database (time its
 * backends spent executing queries). Bounded: 1,000 tickets, a 300 s cap on the job.
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { loadConfig } from '../src/config.js';
import { createDb } from '../src/db/client.js';
import { runMigrations } from '../src/db/migrate.js';
import type { AuthedContext } from '../src/modules/auth/actor.js';
import { createJobRunner } from '../src/modules/jobs/job-runner.js';
import { createServices, type ServicesConfig } from '../src/services.js';
import { machine, silentLogger as silent, writeJson } from './report.js';

const log = (msg: string) => console.log(`[bench ${new Date().toISOString().slice(11, 19)}] ${msg}`);
const TICKETS = 1000;
const JOB_CAP_MS = 300_000;

export async function runBulkBench(adminUrl: string): Promise<void> {
  const name = 'helpdesk_bench_bulk';
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
  await admin.query(`CREATE DATABASE ${name}`);
  const u = new URL(adminUrl);
  u.pathname = `/${name}`;
  const url = u.toString();
  await runMigrations(url);

  const config = loadConfig({
    ...process.env,
    DATABASE_URL: url,
    JWT_SECRET: randomBytes(32).toString('hex'),
  });
  const { db, close } = createDb(url, config.db);
  const services = createServices({ ...config, jwtSecret: config.jwtSecret! } as ServicesConfig, db);
  const runner = createJobRunner({
    databaseUrl: url,
    registry: services.jobs,
    ...config.jobs,
    log: silent as never,
  });

  /** Milliseconds the bench database's backends have spent executing statements (stats flush within ~1 s). */
  async function activeMs(): Promise<number> {
    await new Promise((r) => setTimeout(r, 1500));
    await admin.query('SELECT pg_stat_clear_snapshot()');
    const { rows } = await admin.query<{ t: number }>(
      'SELECT active_time AS t FROM pg_stat_database WHERE datname = $1',
      [name],
    );
    return Number(rows[0]?.t ?? Number.NaN);
  }

  try {
    const { rows: users } = await db.$client.query<{ id: string; role: string }>(
      `INSERT INTO users (email, name, role, password_hash) VALUES
         ('bench-admin@example.test', 'Bench Admin', 'admin', 'x'),
         ('bench-requester@example.test', 'Bench Requester', 'requester', 'x') RETURNING id, role`,
    );
    const adminId = users.find((x) => x.role === 'admin')!.id;
    const requesterId = users.find((x) => x.role === 'requester')!.id;
    await db.$client.query(
      `INSERT INTO tickets (title, description, requester_id, tags)
       SELECT 'Bench ticket ' || g, 'Seeded for the bulk bench', $1, ARRAY['seed'] FROM generate_series(1, $2) g`,
      [requesterId, TICKETS],
    );
    const { rows: idRows } = await db.$client.query<{ id: number }>('SELECT id FROM tickets ORDER BY id');
    const ids = idRows.map((r) => r.id);
    const ctx: AuthedContext = {
      actor: { id: adminId, role: 'admin', name: 'Bench Admin', email: 'bench-admin@example.test' },
      traceId: 'bench-bulk',
      ip: null,
      userAgent: null,
    };
    const body = {
      ids,
      changes: { priority: 'high' as const, addTags: ['bulk-bench'], assigneeId: adminId },
    };

    let db0 = await activeMs();
    let t0 = performance.now();
    const preview = await services.bulk.preview(ctx, { ...body, dryRun: true });
    const dryRunMs = performance.now() - t0;
    const dryRunDbMs = (await activeMs()) - db0;
    log(
      `dry run: ${preview.matched} tickets in ${(dryRunMs / 1000).toFixed(2)} s, database ${(dryRunDbMs / 1000).toFixed(2)} s`,
    );

    db0 = await activeMs();
    t0 = performance.now();
    const { jobId } = await services.bulk.execute(ctx, {
      ...body,
      confirmationToken: preview.confirmationToken,
    });
    await runner.start({ schedules: false });
    const deadline = Date.now() + JOB_CAP_MS;
    let job = await services.jobs.get(ctx.actor, jobId);
    while (job.state !== 'succeeded' && job.state !== 'failed') {
      if (Date.now() > deadline) throw new Error(`bulk job not finished within ${JOB_CAP_MS} ms`);
      await new Promise((r) => setTimeout(r, 50));
      job = await services.jobs.get(ctx.actor, jobId);
    }
    const jobMs = performance.now() - t0;
    await runner.stop();
    const jobDbMs = (await activeMs()) - db0;
    const result = job.result as { changed: number; skipped: number; failed: number };
    log(
      `job: ${job.state}, ${result.changed} changed / ${result.skipped} skipped / ${result.failed} failed in ${(jobMs / 1000).toFixed(2)} s, database ${(jobDbMs / 1000).toFixed(2)} s (${(jobMs / TICKETS).toFixed(2)} ms per ticket)`,
    );
    const file = await writeJson('bulk', {
      kind: 'bulk',
      machine: machine(),
      tickets: TICKETS,
      dryRun: { ms: Math.round(dryRunMs), databaseMs: Math.round(dryRunDbMs) },
      job: { state: job.state, ms: Math.round(jobMs), databaseMs: Math.round(jobDbMs), ...result },
    });
    console.log(`results: ${file}`);
  } finally {
    await runner.stop().catch(() => {});
    await close();
    await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`).catch(() => {});
    await admin.end();
  }
}
