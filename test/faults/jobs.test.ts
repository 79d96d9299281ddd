import { randomBytes } from 'node:crypto';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  FaultDatabase,
  report,
  type ServerProcess,
  sleep,
  startServer,
  startWorker,
  type WorkerProcess,
  waitFor,
} from './harness.js';

const FIXTURE = 'test/faults/fixtures/job-worker.ts';

describe('job worker processes: roles, graceful stop, bounded stop', () => {
  let db: FaultDatabase;
  const secret = randomBytes(32).toString('hex');
  const started: Array<WorkerProcess | ServerProcess> = [];
  const baseEnv = () => ({ DATABASE_URL: db.url, JWT_SECRET: secret, JOBS_POLL_INTERVAL_MS: '200' });

  beforeAll(async () => {
    db = await FaultDatabase.create();
    await db.query(`CREATE TABLE fault_job_starts (job_id bigint NOT NULL, attempt int NOT NULL)`);
    await db.query(`CREATE TABLE fault_job_effects (job_id bigint NOT NULL)`);
  });
  afterEach(async () => {
    await Promise.all(started.splice(0).map((p) => p.kill()));
  });
  afterAll(async () => {
    await db?.destroy();
  });

  /** Adds a job through the queue's SQL API, tracked (so job_records shows its outcome). */
  async function addJob(kind: string, payload: object): Promise<string> {
    const [row] = await db.query<{ id: string }>(
      `WITH j AS (SELECT id, created_at FROM graphile_worker.add_job($1::text, $2::json, max_attempts => 5,
         flags => array['tracked']))
       INSERT INTO job_records (id, kind, created_at) SELECT id, $1, created_at FROM j RETURNING id::text`,
      [kind, JSON.stringify(payload)],
    );
    return row!.id;
  }
  const stateOf = async (id: string) =>
    (await db.query<{ state: string }>(`SELECT state FROM job_records WHERE id = $1`, [id]))[0]?.state;
  const queueRow = async (id: string) =>
    (
      await db.query<{ locked_at: Date | null; attempts: number; last_error: string | null }>(
        `SELECT locked_at, attempts, last_error FROM graphile_worker.jobs WHERE id = $1`,
        [id],
      )
    )[0];

  it('ROLE=api runs no job; ROLE=worker (npm run worker) runs it; ROLE=all (npm start) runs API and jobs', async () => {
    const first = await addJob('maintenance.purge', {});
    const api = await startServer({ ...baseEnv(), ROLE: 'api' });
    started.push(api);
    expect((await fetch(`${api.url}/readyz`)).status).toBe(200);
    // The API process is up and has had time to pick the job up had it run a worker: it must not have.
    await sleep(1500);
    expect(await stateOf(first)).toBe('queued');
    expect((await queueRow(first))?.locked_at).toBeNull();

    const worker = await startWorker({ ...baseEnv(), ROLE: 'worker' }, 'src/server.ts');
    started.push(worker);
    await waitFor('the worker to run the job', async () => (await stateOf(first)) === 'succeeded', 15_000);
    await Promise.all(started.splice(0).map((p) => p.kill()));

    const all = await startServer(baseEnv());
    started.push(all);
    const second = await addJob('maintenance.purge', {});
    await waitFor('ROLE=all to run the job', async () => (await stateOf(second)) === 'succeeded', 15_000);
    expect((await fetch(`${all.url}/healthz`)).status).toBe(200);
  });

  it('SIGTERM: running jobs finish and commit, queued ones stay queued and unlocked, exit 0', async () => {
    const worker = await startWorker({ ...baseEnv(), JOBS_CONCURRENCY: '2' }, FIXTURE);
    started.push(worker);
    const ids: string[] = [];
    for (let i = 0; i < 4; i++) ids.push(await addJob('test.effect', { ms: 2000 }));
    await waitFor(
      'two jobs to be running',
      async () =>
        (await db.query(`SELECT 1 FROM fault_job_starts WHERE job_id = ANY($1::bigint[])`, [ids])).length >=
        2,
      15_000,
    );
    const t0 = performance.now();
    worker.child.kill('SIGTERM');
    const { code } = await worker.exit;
    const exitMs = Math.round(performance.now() - t0);
    expect(code).toBe(0);

    const startedIds = (
      await db.query<{ job_id: string }>(
        `SELECT job_id::text FROM fault_job_starts WHERE job_id = ANY($1::bigint[])`,
        [ids],
      )
    ).map((r) => r.job_id);
    expect(startedIds).toHaveLength(2);
    for (const id of ids) {
      const effects = await db.query(`SELECT 1 FROM fault_job_effects WHERE job_id = $1`, [id]);
      if (startedIds.includes(id)) {
        expect(effects).toHaveLength(1); // finished and committed before the process left
        expect(await stateOf(id)).toBe('succeeded');
        expect(await queueRow(id)).toBeUndefined();
      } else {
        expect(effects).toHaveLength(0);
        expect(await stateOf(id)).toBe('queued');
        expect(await queueRow(id)).toMatchObject({ locked_at: null, attempts: 0 });
      }
    }
    // Another worker picks the rest up: every job's effect exactly once.
    const next = await startWorker(baseEnv(), FIXTURE);
    started.push(next);
    await waitFor(
      'the remaining jobs',
      async () => (await Promise.all(ids.map(stateOf))).every((s) => s === 'succeeded'),
      20_000,
    );
    const counts = await db.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM fault_job_effects WHERE job_id = ANY($1::bigint[]) GROUP BY job_id`,
      [ids],
    );
    expect(counts.map((c) => c.n)).toEqual([1, 1, 1, 1]);
    report('SIGTERM with jobs running', { 'exit after SIGTERM (ms)': exitMs, 'jobs running at SIGTERM': 2 });
  });

  it('SIGTERM with a job longer than JOBS_SHUTDOWN_TIMEOUT_MS: exits in bounded time, the job is rolled back and retried', async () => {
    const worker = await startWorker({ ...baseEnv(), JOBS_SHUTDOWN_TIMEOUT_MS: '1500' }, FIXTURE);
    started.push(worker);
    const id = await addJob('test.effect', { ms: 120_000, slowUntilAttempt: 1 });
    await waitFor(
      'the long job to start',
      async () => (await db.query(`SELECT 1 FROM fault_job_starts WHERE job_id = $1`, [id])).length === 1,
      15_000,
    );
    const t0 = performance.now();
    worker.child.kill('SIGTERM');
    const { code } = await worker.exit;
    const exitMs = Math.round(performance.now() - t0);
    expect(code).toBe(0);
    expect(exitMs).toBeLessThan(1500 + 5000);
    expect(await db.query(`SELECT 1 FROM fault_job_effects WHERE job_id = $1`, [id])).toEqual([]);
    expect(await queueRow(id)).toMatchObject({
      locked_at: null,
      attempts: 1,
      last_error: 'worker shutting down',
    });
    expect(await stateOf(id)).toBe('queued');

    const next = await startWorker(baseEnv(), FIXTURE);
    started.push(next);
    await waitFor('the retried job', async () => (await stateOf(id)) === 'succeeded', 20_000);
    expect(await db.query(`SELECT 1 FROM fault_job_effects WHERE job_id = $1`, [id])).toHaveLength(1);
    report('SIGTERM with a job over the shutdown bound', { 'exit after SIGTERM (ms)': exitMs });
  });
});
