/**
 * `npm run bench -- --jobs`: the job queue on its own, in a fresh database `helpdesk_bench_jobs`.
 * 1. Throughput of one worker (the application's runner and wrapper, JOBS_CONCURRENCY workers) draining
 *    `--job-count` no-op jobs enqueued beforehand; once for untracked jobs (system work), once, smaller, for
 *    tracked ones (a job_records row written at enqueue, running and succeeded).
 * 2. Commit → job start latency: one job at a time enqueued in a transaction; the time from sending COMMIT to
 *    the handler starting, with the worker idle and listening (LISTEN/NOTIFY), paced so jobs do not queue.
 * Bounded: fixed job counts, a 120 s cap on each phase.
 */
import { sql } from 'drizzle-orm';
import { loadConfig } from '../src/config.js';
import { createDb } from '../src/db/client.js';
import type { JobDefinition } from '../src/modules/jobs/job-definition.js';
import { createJobRunner } from '../src/modules/jobs/job-runner.js';
import { createJobsRepository } from '../src/modules/jobs/jobs.repository.js';
import { createJobsService } from '../src/modules/jobs/jobs.service.js';
import type { BenchOptions } from './args.js';
import { freshDatabase } from './database.js';
import { machine, silentLogger as silent, writeJson } from './report.js';

const log = (msg: string) => console.log(`[bench ${new Date().toISOString().slice(11, 19)}] ${msg}`);
const PHASE_CAP_MS = 120_000;

function quantile(sorted: number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? Number.NaN;
}

export async function runJobsBench(adminUrl: string, opts: BenchOptions): Promise<void> {
  const database = await freshDatabase(adminUrl, 'helpdesk_bench_jobs');
  const { url } = database;

  const config = loadConfig({ ...process.env, DATABASE_URL: url });
  const concurrency = opts.jobConcurrency ?? config.jobs.concurrency;
  const { db, close } = createDb(url, config.db);
  const jobs = createJobsService({ db, jobs: createJobsRepository() });
  let done = 0;
  let target = Number.POSITIVE_INFINITY;
  let drained: () => void = () => {};
  const starts = new Map<string, number>();
  const definitions: JobDefinition[] = [
    {
      kind: 'bench.noop',
      async handler() {
        if (++done >= target) drained();
      },
    },
    {
      kind: 'bench.latency',
      async handler(_p, ctx) {
        starts.set(ctx.jobId, performance.now());
      },
    },
  ];
  jobs.register(definitions);
  const runner = createJobRunner({
    databaseUrl: url,
    registry: jobs,
    concurrency,
    batchSize: config.jobs.batchSize,
    pollIntervalMs: config.jobs.pollIntervalMs,
    shutdownTimeoutMs: 5000,
    log: silent as never,
  });

  const { rows: ver } = await db.$client.query<{ v: string }>(
    "SELECT current_setting('server_version') AS v",
  );
  const results: Record<string, unknown> = {
    concurrency,
    batchSize: config.jobs.batchSize,
    postgres: ver[0]?.v,
  };

  async function throughput(label: string, count: number, track: boolean) {
    // Enqueued beforehand, 1,000 per statement through the queue's add_jobs() (as enqueue() does one by one).
    for (let i = 0; i < count; i += 1000) {
      const n = Math.min(1000, count - i);
      const specs = sql`ARRAY(SELECT ROW('bench.noop', json_build_object('j', g), NULL, NULL, 10, NULL, NULL,
        ${track ? sql`array['tracked']` : sql`NULL`})::graphile_worker.job_spec FROM generate_series(1, ${n}) g)`;
      await db.execute(
        track
          ? sql`WITH j AS (SELECT id, created_at FROM graphile_worker.add_jobs(${specs}))
                INSERT INTO job_records (id, kind, created_at) SELECT id, 'bench.noop', created_at FROM j`
          : sql`SELECT count(*) FROM graphile_worker.add_jobs(${specs})`,
      );
    }
    done = 0;
    target = count;
    const finished = new Promise<void>((resolve, reject) => {
      drained = resolve;
      setTimeout(
        () => reject(new Error(`${label}: not drained within ${PHASE_CAP_MS} ms`)),
        PHASE_CAP_MS,
      ).unref();
    });
    const t0 = performance.now();
    // The worker's own CPU time (this process: the runner, graphile-worker, pg): less at the mercy of the
    // machine's load than the wall-clock rate.
    const cpu0 = process.cpuUsage();
    await runner.start({ schedules: false });
    await finished;
    const seconds = (performance.now() - t0) / 1000;
    const cpu = process.cpuUsage(cpu0);
    await runner.stop();
    const perSecond = Math.round(count / seconds);
    const cpuMsPer1000 = Number((((cpu.user + cpu.system) / 1000 / count) * 1000).toFixed(1));
    log(
      `${label}: ${count} jobs in ${seconds.toFixed(2)} s → ${perSecond} jobs/s (concurrency ${concurrency}; worker CPU ${cpuMsPer1000} ms per 1,000 jobs)`,
    );
    return { count, seconds: Number(seconds.toFixed(3)), jobsPerSecond: perSecond, cpuMsPer1000 };
  }

  try {
    results.untracked = await throughput('no-op jobs, untracked', opts.jobCount, false);
    results.tracked = await throughput(
      'no-op jobs, tracked',
      Math.max(1000, Math.floor(opts.jobCount / 4)),
      true,
    );

    await runner.start({ schedules: false });
    const samples: number[] = [];
    const deadline = Date.now() + PHASE_CAP_MS;
    const client = await db.$client.connect();
    try {
      await new Promise((r) => setTimeout(r, 500)); // the worker's LISTEN connection is up
      for (let i = 0; i < opts.latencySamples && Date.now() < deadline; i++) {
        await client.query('BEGIN');
        const { rows } = await client.query<{ id: string }>(
          `SELECT id::text FROM graphile_worker.add_job('bench.latency', '{}'::json, max_attempts => 1)`,
        );
        const id = rows[0]!.id;
        const t0 = performance.now();
        await client.query('COMMIT');
        while (!starts.has(id) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 1));
        samples.push(starts.get(id)! - t0);
        await new Promise((r) => setTimeout(r, 10));
      }
    } finally {
      client.release();
      await runner.stop();
    }
    const sorted = samples.filter(Number.isFinite).sort((a, b) => a - b);
    const latency = {
      samples: sorted.length,
      p50Ms: Number(quantile(sorted, 0.5).toFixed(2)),
      p99Ms: Number(quantile(sorted, 0.99).toFixed(2)),
      maxMs: Number((sorted.at(-1) ?? Number.NaN).toFixed(2)),
    };
    results.latency = latency;
    log(
      `commit → job start: p50 ${latency.p50Ms} ms, p99 ${latency.p99Ms} ms, max ${latency.maxMs} ms (${latency.samples} jobs)`,
    );
    console.log(
      `\ntargets: throughput ≥ 2000 jobs/s (untracked no-op: ${(results.untracked as { jobsPerSecond: number }).jobsPerSecond}); ` +
        `commit → start p50 ≤ 20 ms (${latency.p50Ms}), p99 ≤ 100 ms (${latency.p99Ms})`,
    );
    const file = await writeJson('jobs', { kind: 'jobs', machine: machine(), options: opts, ...results });
    console.log(`results: ${file}`);
  } finally {
    await close();
    await database.drop().catch(() => {});
  }
}
