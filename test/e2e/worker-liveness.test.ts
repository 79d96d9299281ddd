import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Logger } from '../../src/modules/jobs/job-definition.js';
import { createWorkerLiveness, type WorkerLiveness } from '../../src/modules/jobs/worker-liveness.js';
import { type OwnDatabase, ownDatabase } from '../helpers/own-database.js';

/**
 * The heartbeat table and lock expiry against PostgreSQL and graphile-worker's own queue functions. A database
 * of its own: the job runners of other test files heartbeat too, and would judge this file's silent rows.
 */
describe('job worker liveness (lock expiry)', () => {
  let database: OwnDatabase;
  let pool: pg.Pool;
  const started: WorkerLiveness[] = [];
  const logs: Array<{ level: string; fields: Record<string, unknown>; msg: string }> = [];
  const log = {
    warn: (fields: Record<string, unknown>, msg: string) => logs.push({ level: 'warn', fields, msg }),
    error: (fields: Record<string, unknown>, msg: string) => logs.push({ level: 'error', fields, msg }),
  } as unknown as Logger;

  beforeAll(async () => {
    database = await ownDatabase('helpdesk_liveness');
    pool = new pg.Pool({ connectionString: database.url, max: 6 });
    pool.on('error', () => {}); // as the job runner's pool: a dropped idle client is not the test's concern
  });
  afterEach(async () => {
    for (const l of started.splice(0)) await l.stop();
    logs.length = 0;
    await pool.query('DELETE FROM job_workers');
    await pool.query('DELETE FROM graphile_worker._private_jobs');
  });
  afterAll(async () => {
    await pool?.end();
    await database?.drop();
  });

  /** A liveness as the job runner makes it, for a worker pool with id `poolId`. */
  async function live(poolId: string, timeoutMs: number): Promise<WorkerLiveness> {
    const l = createWorkerLiveness({ pool, schema: 'graphile_worker', timeoutMs, log });
    l.events.emit('pool:create', { workerPool: { id: poolId } } as never);
    started.push(l);
    await l.start();
    return l;
  }

  /** A job (in a named queue) claimed by `workerId`, as graphile-worker's get_job leaves it. */
  async function claimedJob(workerId: string): Promise<string> {
    const queue = `q-${randomBytes(4).toString('hex')}`;
    const { rows } = await pool.query<{ id: string }>(
      `SELECT id::text FROM graphile_worker.add_job('test.noop', '{}'::json, queue_name => $1)`,
      [queue],
    );
    const id = rows[0]!.id;
    await pool.query(
      `UPDATE graphile_worker._private_jobs SET locked_by = $1, locked_at = now(), attempts = attempts + 1
       WHERE id = $2`,
      [workerId, id],
    );
    await pool.query(
      `UPDATE graphile_worker._private_job_queues SET locked_by = $1, locked_at = now() WHERE queue_name = $2`,
      [workerId, queue],
    );
    return id;
  }
  const lockOf = async (id: string) =>
    (
      await pool.query<{ locked_by: string | null; attempts: number; queue_locked_by: string | null }>(
        `SELECT j.locked_by, j.attempts, q.locked_by AS queue_locked_by
         FROM graphile_worker._private_jobs j LEFT JOIN graphile_worker._private_job_queues q ON q.id = j.job_queue_id
         WHERE j.id = $1`,
        [id],
      )
    ).rows[0];
  /** A worker that beat last `secondsAgo` and has not since (its process is gone). */
  const silentWorker = (workerId: string, secondsAgo: number) =>
    pool.query(
      `INSERT INTO job_workers (worker_id, hostname, pid, started_at, last_seen_at)
       VALUES ($1, 'gone-host', 4242, now() - interval '1 hour', now() - make_interval(secs => $2))`,
      [workerId, secondsAgo],
    );
  const rowIds = async () =>
    (await pool.query<{ worker_id: string }>('SELECT worker_id FROM job_workers ORDER BY 1')).rows.map(
      (r) => r.worker_id,
    );

  it('live workers unlock the jobs and queue of a worker silent past the timeout, once, and leave each other alone', async () => {
    await silentWorker('pool-dead', 30);
    const deadJob = await claimedJob('pool-dead');
    // Two live workers, beating every 500 ms: either may be the one that expires the silent worker.
    await live('pool-other', 2000);
    const otherJob = await claimedJob('pool-other');
    await live('pool-judge', 2000);
    // Just started: neither has beaten for a whole timeout itself, so neither judges yet.
    expect(await lockOf(deadJob)).toMatchObject({ locked_by: 'pool-dead', queue_locked_by: 'pool-dead' });

    const expiredLog = () => logs.filter((l) => l.msg.startsWith('job workers stopped heartbeating'));
    const deadline = Date.now() + 10_000;
    while (expiredLog().length === 0) {
      if (Date.now() > deadline) throw new Error('the silent worker was not expired');
      await new Promise((r) => setTimeout(r, 50));
    }
    // Runnable again, as its next attempt (the claim already counted one).
    expect(await lockOf(deadJob)).toEqual({ locked_by: null, attempts: 1, queue_locked_by: null });
    expect(await lockOf(otherJob)).toMatchObject({ locked_by: 'pool-other', queue_locked_by: 'pool-other' });
    expect(await rowIds()).toEqual(['pool-judge', 'pool-other']);
    const expired = expiredLog();
    expect(expired).toHaveLength(1);
    expect(expired[0]!.fields).toMatchObject({
      workers: [{ workerId: 'pool-dead', hostname: 'gone-host', pid: 4242 }],
      jobs: 1,
      timeoutMs: 2000,
    });
  });

  it('a worker presumed dead while still running says so on its next beat and registers again', async () => {
    const l = await live('pool-slow', 60_000);
    await pool.query(`DELETE FROM job_workers WHERE worker_id = 'pool-slow'`);
    await l.tick();
    expect(await rowIds()).toEqual(['pool-slow']);
    expect(logs.filter((x) => x.level === 'error').map((x) => x.fields)).toEqual([
      { workerId: 'pool-slow', timeoutMs: 60_000 },
    ]);
  });

  it('after the runner replaced its worker pool, only the new pool is heartbeated; the old row goes once its jobs are unlocked', async () => {
    const seenAt = async (id: string) =>
      (
        await pool.query<{ at: string }>(
          `SELECT last_seen_at::text AS at FROM job_workers WHERE worker_id = $1`,
          [id],
        )
      ).rows[0]?.at;
    const l = await live('pool-first', 60_000);
    const firstSeen = await seenAt('pool-first');
    expect(firstSeen).toBeDefined();

    // The runner's restart when it could not unlock the stopped pool's jobs: graphile-worker announces the
    // next pool. The stopped one is not beaten any more: its row keeps its last beat and expires like any
    // silent worker's (a live worker then unlocks its jobs).
    l.events.emit('pool:create', { workerPool: { id: 'pool-second' } } as never);
    await l.tick();
    expect(l.current).toBe('pool-second');
    expect(await rowIds()).toEqual(['pool-first', 'pool-second']);
    expect(await seenAt('pool-first')).toBe(firstSeen);
    expect(Date.parse((await seenAt('pool-second'))!)).toBeGreaterThan(Date.parse(firstSeen!));

    // The usual restart: the stopped pool's jobs unlocked, then forget() before the next pool exists.
    await l.forget('pool-second');
    expect(l.current).toBeUndefined();
    await l.tick();
    expect(await rowIds()).toEqual(['pool-first']);
    l.events.emit('pool:create', { workerPool: { id: 'pool-third' } } as never);
    await l.tick();
    expect(await rowIds()).toEqual(['pool-first', 'pool-third']);
    // Its own later beats do not read as "presumed dead" for the pools it left behind.
    expect(logs.filter((x) => x.level === 'error')).toEqual([]);
    await l.stop();
    expect(await rowIds()).toEqual(['pool-first']);
  });

  it('a stop deregisters, so a worker that shut down cleanly is never expired', async () => {
    const l = await live('pool-stopping', 60_000);
    expect(await rowIds()).toEqual(['pool-stopping']);
    await l.stop();
    expect(await rowIds()).toEqual([]);
  });

  it('a stop unlocks what the stopped pool still held (a batch it could not hand back), with the row', async () => {
    const l = await live('pool-leftover', 60_000);
    const held = await claimedJob('pool-leftover');
    const other = await claimedJob('pool-elsewhere');
    await l.stop();
    expect(await lockOf(held)).toEqual({ locked_by: null, attempts: 1, queue_locked_by: null });
    expect(await lockOf(other)).toMatchObject({ locked_by: 'pool-elsewhere' });
    expect(await rowIds()).toEqual([]);
  });
});
