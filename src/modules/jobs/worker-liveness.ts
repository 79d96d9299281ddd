import { EventEmitter } from 'node:events';
import os from 'node:os';
import { makeWorkerUtils, Logger as QueueLogger, type WorkerEvents, type WorkerUtils } from 'graphile-worker';
import type pg from 'pg';
import type { Logger } from './job-definition.js';

export const DEFAULT_WORKER_TIMEOUT_MS = 60_000;

export interface WorkerLivenessOptions {
  /** The job runner's pool (heartbeats are one short statement each). */
  pool: pg.Pool;
  /** The queue's schema (graphile_worker). */
  schema: string;
  /** A worker whose last heartbeat is older than this is presumed dead and its jobs are unlocked. */
  timeoutMs: number;
  log: Logger;
}

export interface WorkerLiveness {
  /**
   * Handed to graphile-worker's run({ events }): tells us the pool id its job locks carry (`locked_by`). Each
   * `pool:create` makes that pool the one heartbeated: a pool the runner replaced (restarted after it stopped
   * on an error) is no longer beaten, and its row expires like any silent worker's unless the runner removed
   * it after releasing its jobs (forget()).
   */
  readonly events: WorkerEvents;
  /** The pool id heartbeated now (the runner's current graphile-worker pool). */
  readonly current: string | undefined;
  /**
   * A stopped pool's jobs were unlocked: its row is removed (nothing left for others to expire) and it is no
   * longer beaten, even before the next pool:create.
   */
  forget(workerId: string): Promise<void>;
  /** Registers this process's worker pool and starts the heartbeat (after run() resolved). */
  start(): Promise<void>;
  /**
   * Stops the heartbeat and deregisters, unlocking whatever the current pool still holds; call once the runner
   * has stopped (its jobs finished or handed back).
   */
  stop(): Promise<void>;
  /** One heartbeat and one check for silent workers, now. */
  tick(): Promise<void>;
}

/** Heartbeats per timeout window: a few missed beats (a slow query, a GC pause) do not make a worker "dead". */
const BEATS_PER_TIMEOUT = 4;

/**
 * Lock expiry for crashed workers. graphile-worker 0.17 marks a claimed job with its worker pool's id and
 * frees the job of a worker that vanished (SIGKILL, OOM, lost host) only after 4 hours. Here each worker
 * process heartbeats a row in `job_workers`; on every beat it also looks for rows silent longer than
 * JOBS_WORKER_TIMEOUT_MS and calls graphile-worker's `forceUnlockWorkers` for them, so their jobs (and
 * named queues) become runnable again on any live worker, as a retry (jobs run at least once and are
 * idempotent).
 *
 * The check runs on the heartbeat timer rather than as a queued job on purpose: a queued job could itself be
 * held by the dead worker, and waits for a free slot behind the very jobs it should rescue. Rows are claimed
 * FOR UPDATE SKIP LOCKED, so with many workers each dead one is handled by one of them. Silence is measured on
 * PostgreSQL's clock, and only by a worker whose own beats have succeeded for a whole timeout (a database
 * outage silences every worker at once; that is not a death).
 *
 * The timeout must exceed any stall of a live worker's event loop: a worker presumed dead while still
 * running may finish a job that another worker has started again. It notices on its next beat (its row was
 * gone), logs it and registers again.
 */
export function createWorkerLiveness(opts: WorkerLivenessOptions): WorkerLiveness {
  const { pool, schema, timeoutMs, log } = opts;
  const beatMs = Math.max(200, Math.min(15_000, Math.floor(timeoutMs / BEATS_PER_TIMEOUT)));
  const events = new EventEmitter() as WorkerEvents;
  /** The current pool's id: the only one beaten (a process runs one graphile-worker pool at a time). */
  let current: string | undefined;
  const hostname = os.hostname().slice(0, 255);
  let registering: Promise<unknown> = Promise.resolve();
  let utils: WorkerUtils | undefined;
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> | undefined;
  let stopped = false;
  /** Since when (monotonic ms) this process's own beats have succeeded without a gap. */
  let healthySince: number | undefined;

  const upsert = (workerIds: string[]) =>
    pool.query<{ worker_id: string; inserted: boolean }>(
      `INSERT INTO job_workers (worker_id, hostname, pid)
       SELECT unnest($1::text[]), $2, $3
       ON CONFLICT (worker_id) DO UPDATE SET last_seen_at = now()
       RETURNING worker_id, (xmax = 0) AS inserted`,
      [workerIds, hostname, process.pid],
    );

  /** Ids whose row this process has seen in the table: a row missing later was deleted by another worker. */
  const registered = new Set<string>();

  events.on('pool:create', ({ workerPool }) => {
    // A previous pool (stopped, then replaced by the runner) is not beaten any more: its row goes stale.
    if (current !== undefined && current !== workerPool.id) registered.delete(current);
    current = workerPool.id;
    // Registered before the pool's workers claim anything (the same pool serves both, this query first).
    registering = upsert([workerPool.id]).then(
      () => registered.add(workerPool.id),
      (err) => log.warn({ err }, 'could not register the job worker for lock expiry; the next beat will'),
    );
  });

  async function heartbeat(): Promise<void> {
    if (current === undefined) return;
    const { rows } = await upsert([current]);
    for (const row of rows) {
      if (row.inserted && registered.has(row.worker_id)) {
        log.error(
          { workerId: row.worker_id, timeoutMs },
          'this job worker was presumed dead (no heartbeat within JOBS_WORKER_TIMEOUT_MS) and its jobs were unlocked; jobs it was running may run again elsewhere',
        );
      }
      registered.add(row.worker_id);
    }
  }

  async function expireSilent(): Promise<void> {
    const client = await pool.connect();
    try {
      await client.query('BEGIN');
      const { rows } = await client.query<{ worker_id: string; hostname: string; pid: number }>(
        `SELECT worker_id, hostname, pid FROM job_workers
         WHERE last_seen_at < now() - make_interval(secs => $1::double precision / 1000)
         ORDER BY last_seen_at LIMIT 100 FOR UPDATE SKIP LOCKED`,
        [timeoutMs],
      );
      if (rows.length > 0) {
        const dead = rows.map((r) => r.worker_id);
        const [{ n } = { n: 0 }] = (
          await client.query<{ n: number }>(
            `SELECT count(*)::int AS n FROM ${schema}.jobs WHERE locked_by = ANY($1::text[])`,
            [dead],
          )
        ).rows;
        // Through the library's own API, on its own connection: if this process dies before the DELETE
        // commits, the rows stay and the next check unlocks them again (a no-op) and removes them.
        utils ??= await makeWorkerUtils({ pgPool: pool, schema, logger: new QueueLogger(() => () => {}) });
        await utils.forceUnlockWorkers(dead);
        await client.query('DELETE FROM job_workers WHERE worker_id = ANY($1::text[])', [dead]);
        await client.query('COMMIT');
        log.warn(
          {
            workers: rows.map((r) => ({ workerId: r.worker_id, hostname: r.hostname, pid: r.pid })),
            jobs: n,
            timeoutMs,
          },
          'job workers stopped heartbeating; their jobs were unlocked and will run again',
        );
      } else {
        await client.query('COMMIT');
      }
    } catch (err) {
      await client.query('ROLLBACK').catch(() => {});
      throw err;
    } finally {
      client.release();
    }
  }

  async function tick(): Promise<void> {
    try {
      await heartbeat();
      healthySince ??= performance.now();
      // Only a worker that has itself been beating for a whole timeout judges others: after a database
      // outage every worker's row is stale, and none may be declared dead until all had time to beat again.
      if (performance.now() - healthySince >= timeoutMs) await expireSilent();
    } catch (err) {
      healthySince = undefined;
      // The database is away or busy: the next beat tries again (a worker that cannot reach the database
      // cannot run jobs either).
      log.warn({ err }, 'job worker heartbeat failed');
    }
  }

  function schedule(): void {
    if (stopped) return;
    timer = setTimeout(() => {
      running = tick().finally(() => {
        running = undefined;
        schedule();
      });
    }, beatMs);
    timer.unref();
  }

  return {
    events,
    get current() {
      return current;
    },
    tick,
    async forget(workerId) {
      // The runner calls this between pools: nothing is beaten until the next pool:create.
      if (workerId === current) current = undefined;
      registered.delete(workerId);
      await pool.query('DELETE FROM job_workers WHERE worker_id = $1', [workerId]);
    },
    async start() {
      await registering;
      await tick();
      schedule();
    },
    async stop() {
      stopped = true;
      clearTimeout(timer);
      await running;
      await registering;
      if (current !== undefined) {
        // The stopped pool normally holds nothing now. What it could not hand back or finish recording (its
        // local batch, a completion, with the database away at that moment) is unlocked with the row's removal,
        // in one transaction: if that fails too, the row stays and goes stale, and a live worker unlocks it.
        const client = await pool.connect().catch((err) => {
          log.warn({ err }, 'could not deregister the job worker; its row will expire');
          return undefined;
        });
        if (client) {
          let broken = false;
          try {
            await client.query('BEGIN');
            await client.query(`SELECT ${schema}.force_unlock_workers(ARRAY[$1::text])`, [current]);
            await client.query('DELETE FROM job_workers WHERE worker_id = $1', [current]);
            await client.query('COMMIT');
          } catch (err) {
            broken = true;
            await client.query('ROLLBACK').catch(() => {});
            log.warn({ err }, 'could not deregister the job worker; its row will expire');
          } finally {
            client.release(broken);
          }
        }
      }
      await Promise.resolve(utils?.release()).catch(() => {});
      utils = undefined;
    },
  };
}
