import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  FaultDatabase,
  logLines,
  report,
  sleep,
  startWorker,
  type WorkerProcess,
  waitFor,
} from './harness.js';

const FIXTURE = 'test/faults/fixtures/job-worker.ts';
const BATCH_SIZE = 50;
const ADD_EVERY_MS = 50;
const JOBS_PER_ADD = 100;
const WARM_UP_MS = 2000;
const DOWN_MS = 3000;
const AFTER_RECOVERY_MS = 2000;

/**
 * A worker that fetches jobs in batches (JOBS_BATCH_SIZE: a local queue of claimed, not yet started jobs)
 * while jobs keep arriving, and PostgreSQL stops for a few seconds under it: completions, failures, fetches
 * and the hand-back of the local queue all fail at once. The process must live on and finish every job.
 */
describe('job worker with batched fetching, PostgreSQL restarted under job load', () => {
  let db: FaultDatabase;
  let worker: WorkerProcess;

  beforeAll(async () => {
    db = await FaultDatabase.create();
    await db.query(`CREATE TABLE fault_job_starts (job_id bigint NOT NULL, attempt int NOT NULL)`);
    await db.query(`CREATE TABLE fault_job_effects (job_id bigint NOT NULL)`);
    worker = await startWorker(
      {
        DATABASE_URL: db.url,
        JWT_SECRET: randomBytes(32).toString('hex'),
        JOBS_POLL_INTERVAL_MS: '200',
        JOBS_CONCURRENCY: '4',
        JOBS_BATCH_SIZE: String(BATCH_SIZE),
        // Far above the test's length: a job may only come back through the runner's own recovery.
        JOBS_WORKER_TIMEOUT_MS: '600000',
      },
      FIXTURE,
    );
  });

  afterAll(async () => {
    await worker?.kill();
    await db?.destroy();
  });

  it('keeps running through the outage and runs every job', async () => {
    const added: string[] = [];
    let adding = true;
    const adder = (async () => {
      while (adding) {
        const rows = await db
          .query<{ id: string }>(
            `SELECT (graphile_worker.add_job('test.effect', '{"ms": 1}'::json, max_attempts => 25)).id::text AS id
             FROM generate_series(1, $1)`,
            [JOBS_PER_ADD],
          )
          .catch(() => []); // the database is away: nothing was added
        added.push(...rows.map((r) => r.id));
        await sleep(ADD_EVERY_MS);
      }
    })();

    await sleep(WARM_UP_MS);
    const beforeStop = added.length;
    await db.stop();
    await sleep(DOWN_MS);
    await db.start();
    await sleep(AFTER_RECOVERY_MS);
    adding = false;
    await adder;
    const afterRecovery = added.length - beforeStop;

    // Every job runs once the database is back: the queue empties of them.
    let left = -1;
    await waitFor(
      'the queue to run every job',
      async () => {
        const [row] = await db.query<{ n: number }>(
          `SELECT count(*)::int AS n FROM graphile_worker.jobs WHERE task_identifier = 'test.effect'`,
        );
        left = row!.n;
        return left === 0 || worker.exited();
      },
      90_000,
    ).catch((err) => {
      throw new Error(`${err.message} (${left} left)\n${worker.output.slice(-40).join('\n')}`);
    });

    const [effects] = await db.query<{ jobs: number; missing: number; twice: number }>(
      `WITH e AS (SELECT job_id, count(*) AS n FROM fault_job_effects GROUP BY job_id)
       SELECT count(*)::int AS jobs,
              (SELECT count(*)::int FROM unnest($1::bigint[]) id WHERE id NOT IN (SELECT job_id FROM e)) AS missing,
              count(*) FILTER (WHERE n > 1)::int AS twice
       FROM e`,
      [added],
    );
    const restarts = logLines(worker.output, 'job worker stopped after an error; restarting it').length;
    const fatal = worker.output.filter((l) => /shutting down after an error|unhandled|uncaught/i.test(l));
    report('Job worker (batched fetching) through a PostgreSQL restart', {
      'jobs added': added.length,
      'jobs added after the outage': afterRecovery,
      'jobs with an effect': effects!.jobs,
      'jobs missing an effect': effects!.missing,
      'jobs run to an effect twice (retried)': effects!.twice,
      'runner restarts': restarts,
      'worker still running': !worker.exited(),
    });

    expect(fatal, fatal.join('\n')).toEqual([]);
    expect(worker.exited()).toBe(false);
    expect(afterRecovery).toBeGreaterThan(0);
    expect(effects!.missing).toBe(0);
    // One heartbeat row, the live pool's: a pool the runner replaced (if it had to) was unlocked and forgotten.
    expect(await db.query('SELECT worker_id FROM job_workers')).toHaveLength(1);
  });
});
