import {
  type JobHelpers,
  parseCronItems,
  Logger as QueueLogger,
  type Runner,
  run,
  runMigrations as runQueueMigrations,
  type TaskList,
} from 'graphile-worker';
import pg from 'pg';
import { serializeError } from '../../lib/log-safe-error.js';
import {
  DEFAULT_MAX_ATTEMPTS,
  type JobContext,
  type JobDefinition,
  type JobSchedule,
  type Logger,
  PermanentJobError,
} from './job-definition.js';
import { QUEUE_SCHEMA } from './jobs.repository.js';
import { createWorkerLiveness, DEFAULT_WORKER_TIMEOUT_MS, type WorkerLiveness } from './worker-liveness.js';

export interface JobRunnerOptions {
  databaseUrl: string;
  /** Read at start(): the kinds and schedules the composition root registered (JobsService). */
  registry: { definitions(): readonly JobDefinition[]; schedules(): readonly JobSchedule[] };
  concurrency: number;
  pollIntervalMs: number;
  /**
   * > 1: fetch this many jobs per query into a local queue (throughput for many short jobs); raised to
   * `concurrency` if below it. 0 or 1: one query per job.
   */
  batchSize?: number;
  /** stop(): running jobs get this long to finish; then they are handed back to the queue (retried later). */
  shutdownTimeoutMs: number;
  /** A worker process silent this long is presumed dead and its jobs are unlocked (worker-liveness.ts). */
  workerTimeoutMs?: number;
  log: Logger;
}

export interface JobRunner {
  /** `schedules: false` runs jobs but enqueues no recurring work (tests that share a database). */
  start(opts?: { schedules?: boolean }): Promise<void>;
  /** Stops taking jobs, lets running ones finish (bounded), closes its connections. Idempotent. */
  stop(): Promise<void>;
  readonly running: boolean;
}

const MAX_ERROR_CHARS = 2000;
const MAX_RESULT_BYTES = 64 * 1024;
const EVERY_KEY = (kind: string) => `every:${kind}`;
const RESTART_MIN_MS = 1000;
const RESTART_MAX_MS = 30_000;

/** Error-valued fields of graphile-worker's log metadata (the names its log calls use). */
const QUEUE_ERROR_FIELDS = ['error', 'fatalError', 'secondError'] as const;

/**
 * graphile-worker writes an error into its message text ("Failed task 7 (…) with error '<message>':<stack>",
 * "Stopping worker due to an error: <error>") and hands the raw error (and the job, payload included) in its
 * metadata. A database error's message can carry a query's parameters (drizzle's "Failed query: … params: …",
 * PostgreSQL's 'invalid input syntax … "<value>"'): the text is cut where the raw error begins and the
 * data-free description of src/lib/log-safe-error.ts takes its place; only ids are kept of the job.
 */
export function safeQueueLine(
  message: string,
  meta: Record<string, unknown> | undefined,
): { message: string; fields: Record<string, unknown> } {
  const fields: Record<string, unknown> = {};
  const errors = QUEUE_ERROR_FIELDS.map((k) => meta?.[k]).filter((e) => e !== undefined && e !== null);
  let text = message;
  const job = meta?.job as { id?: unknown; task_identifier?: unknown; attempts?: unknown } | undefined;
  if (job && typeof job === 'object') {
    fields.jobId = String(job.id);
    fields.kind = String(job.task_identifier);
  }
  if (meta?.failure === true && job) {
    // The worker's own "Failed task" line, rebuilt from its parts (the error follows as `err`).
    const ms = typeof meta.duration === 'number' ? `, ${meta.duration.toFixed(2)}ms` : '';
    text = `Failed task ${fields.jobId} (${fields.kind}${ms}, attempt ${String(job.attempts)})`;
  }
  for (const err of errors) {
    const raw = err instanceof Error ? err.message : String(err);
    const at = raw ? text.indexOf(raw) : -1;
    if (at < 0) continue;
    // "…: Error: <message>" — cut before the error's name too.
    const name = err instanceof Error ? `${err.name}: ` : '';
    const cut = name && text.slice(0, at).endsWith(name) ? at - name.length : at;
    text = `${text.slice(0, cut)}${serializeError(err).message}`;
  }
  // Whatever else slipped into the text: SQL and its parameters never pass.
  const sqlAt = text.search(/Failed query:|\bparams:/);
  if (sqlAt >= 0) text = `${text.slice(0, sqlAt)}(SQL and parameters withheld)`;
  if (errors.length > 0) fields.err = errors[0];
  return { message: text, fields };
}

/**
 * graphile-worker's own log lines, through the application's pino logger (whose `err` serializer is the
 * data-free one): errors and warnings at their level, its per-job chatter only at debug.
 */
export function queueLogger(log: Logger): QueueLogger {
  return new QueueLogger((scope) => (level, message, meta) => {
    const safe = safeQueueLine(message, meta as Record<string, unknown> | undefined);
    const fields = { queue: { ...scope }, ...safe.fields };
    if (level === 'error') log.error(fields, safe.message);
    else if (level === 'warning') log.warn(fields, safe.message);
    else log.debug(fields, safe.message);
  });
}

/** Installs or upgrades the queue's own tables and functions (schema graphile_worker); safe to run concurrently. */
export async function migrateQueue(databaseUrl: string): Promise<void> {
  const pool = new pg.Pool({ connectionString: databaseUrl, max: 2, application_name: 'helpdesk-migrate' });
  // Errors surface through the migration's own queries; these only keep a dropped idle client from crashing us.
  pool.on('error', () => {});
  pool.on('connect', (client) => client.on('error', () => {}));
  try {
    await runQueueMigrations({ pgPool: pool, schema: QUEUE_SCHEMA, logger: new QueueLogger(() => () => {}) });
  } finally {
    await pool.end();
  }
}

/**
 * The error a job keeps (job_records.error, the queue's last_error; GET /jobs/{id} shows it): the data-free
 * description, so a failed query's parameters are not stored or shown either.
 */
function errorMessage(err: unknown): string {
  if (err instanceof Error && !err.message) return err.name;
  const safe = serializeError(err);
  // A wrapped query error says little by itself; PostgreSQL's (masked) message under it says what failed.
  const cause = safe.cause as { message?: unknown } | undefined;
  const message = typeof cause?.message === 'string' ? `${safe.message}: ${cause.message}` : safe.message;
  return message.slice(0, MAX_ERROR_CHARS);
}

/** What is rethrown to the queue for a retry: the same message and frames, without the data. */
function retryableError(err: unknown): Error {
  const safe = serializeError(err);
  const out = new Error(errorMessage(err));
  out.stack = safe.stack || out.stack;
  return out;
}

function isPermanent(err: unknown): boolean {
  return err instanceof PermanentJobError || (err instanceof Error && err.name === 'PermanentJobError');
}

/** The handler's return value as JSON, or null when it is absent, not JSON or too large to keep. */
function resultJson(result: unknown, log: Logger): string {
  try {
    const json = JSON.stringify(result ?? null) ?? 'null';
    if (Buffer.byteLength(json) <= MAX_RESULT_BYTES) return json;
    log.warn({ bytes: Buffer.byteLength(json) }, 'job result too large to keep; stored as null');
  } catch {
    log.warn('job result is not JSON; stored as null');
  }
  return 'null';
}

/**
 * The worker: graphile-worker's runner (LISTEN/NOTIFY for new jobs, SKIP LOCKED claims so a job runs on one
 * worker at a time across every process, its cron for recurring work) around our job definitions.
 * Each run goes through one wrapper that keeps job_records in step:
 * - tracked jobs (enqueued with createdBy/track, or that reported progress) are marked running, then
 *   succeeded with their result;
 * - a job that fails for good (PermanentJobError, or its last attempt) is recorded failed with its error and
 *   then handed back to the queue as done, so the queue table holds only work still to do;
 * - any other error is rethrown: the queue retries it after e^attempt seconds.
 */
export function createJobRunner(opts: JobRunnerOptions): JobRunner {
  const every = new Map<string, JobSchedule>();
  let pool: pg.Pool | undefined;
  let runner: Runner | undefined;
  let liveness: WorkerLiveness | undefined;

  async function query(text: string, values: unknown[]): Promise<void> {
    await pool!.query(text, values);
  }

  /** Handlers still running: a restart waits for those of the stopped pool before their jobs are unlocked. */
  const inFlight = new Set<Promise<void>>();

  function wrap(def: JobDefinition) {
    const runJob = wrapped(def);
    return (payload: unknown, helpers: JobHelpers): Promise<void> => {
      const p = runJob(payload, helpers);
      inFlight.add(p);
      const done = () => inFlight.delete(p);
      p.then(done, done);
      return p;
    };
  }

  function wrapped(def: JobDefinition) {
    return async (payload: unknown, helpers: JobHelpers): Promise<void> => {
      const job = helpers.job;
      const id = String(job.id);
      const attempt = job.attempts;
      const maxAttempts = job.max_attempts;
      // Made on first use: most jobs never log, and a child logger per job is measurable at thousands a second.
      let childLog: Logger | undefined;
      const logger = () => {
        childLog ??= opts.log.child({ jobId: id, kind: def.kind, attempt });
        return childLog;
      };
      let tracked = Boolean((job.flags as Record<string, boolean> | null)?.tracked);
      const schedule = every.get(def.kind);
      const recurring = schedule !== undefined && job.key === EVERY_KEY(def.kind);

      if (recurring) {
        // Next run first: a crash in this one must not end the schedule. The locked job gives up its key.
        await query(
          `SELECT ${QUEUE_SCHEMA}.add_job($1::text, $2::json, run_at => now() + make_interval(secs => $3),
             max_attempts => 1, job_key => $4::text, job_key_mode => 'replace')`,
          [def.kind, JSON.stringify(schedule.payload ?? {}), schedule.everySeconds, EVERY_KEY(def.kind)],
        );
      }
      if (tracked) {
        await query(
          `UPDATE job_records SET state = 'running', attempts = $2, updated_at = now() WHERE id = $1`,
          [id, attempt],
        );
      }
      const ctx: JobContext = {
        jobId: id,
        attempt,
        maxAttempts,
        get log() {
          return logger();
        },
        signal: helpers.abortSignal,
        async progress(done, total) {
          tracked = true;
          await query(
            `INSERT INTO job_records (id, kind, state, attempts, progress_done, progress_total, created_at)
             VALUES ($1, $2, 'running', $3, $4, $5, $6)
             ON CONFLICT (id) DO UPDATE SET progress_done = excluded.progress_done,
               progress_total = excluded.progress_total, updated_at = now()`,
            [
              id,
              def.kind,
              attempt,
              Math.max(0, Math.trunc(done)),
              Math.max(0, Math.trunc(total)),
              job.created_at,
            ],
          );
        },
      };

      let result: unknown;
      try {
        result = await def.handler(payload, ctx);
      } catch (err) {
        const final = isPermanent(err) || attempt >= maxAttempts || recurring;
        const message = errorMessage(err);
        if (!final) {
          logger().warn({ err }, 'job failed; it will be retried');
          if (tracked) {
            await query(
              `UPDATE job_records SET state = 'queued', error = $2, updated_at = now() WHERE id = $1`,
              [id, message],
            );
          }
          throw retryableError(err);
        }
        logger().error({ err }, 'job failed for good');
        await query(
          `INSERT INTO job_records (id, kind, state, attempts, error, created_at, finished_at)
           VALUES ($1, $2, 'failed', $3, $4, $5, now())
           ON CONFLICT (id) DO UPDATE SET state = 'failed', attempts = excluded.attempts, error = excluded.error,
             finished_at = now(), updated_at = now()`,
          [id, def.kind, attempt, message, job.created_at],
        );
        return; // the outcome is kept in job_records; the queue can forget the job
      }
      if (tracked) {
        await query(
          `UPDATE job_records SET state = 'succeeded', result = $2::jsonb, error = NULL, finished_at = now(),
             updated_at = now() WHERE id = $1`,
          [id, resultJson(result, logger())],
        );
      }
    };
  }

  let restartTimer: NodeJS.Timeout | undefined;
  let restartDelayMs = RESTART_MIN_MS;

  /** Resolves once every handler running now has settled, or after `ms` (whichever comes first). */
  async function handlersSettled(ms: number): Promise<boolean> {
    if (inFlight.size === 0) return true;
    let timer: NodeJS.Timeout | undefined;
    const outcome = await Promise.race([
      Promise.allSettled([...inFlight]).then(() => true),
      new Promise<false>((resolve) => {
        timer = setTimeout(() => resolve(false), ms);
      }),
    ]);
    clearTimeout(timer);
    return outcome;
  }

  /**
   * graphile-worker stops its worker pool when it cannot record outcomes or hand a local batch back (a
   * database away for longer than its retries). Its runner then stops too, and its promise settles — resolved,
   * not rejected, in 0.17 — while nothing here asked it to. Either way it is logged and the runner started again
   * with backoff on the same pool, until stop(). Before the new pool claims anything:
   * - the handlers the stopped pool left running (a forceful shutdown does not wait for them; its abort signal
   *   asks them to end) get up to JOBS_SHUTDOWN_TIMEOUT_MS to settle, so a job is not started again while its
   *   previous run is still going;
   * - the jobs the stopped pool still had locked (running or in its local batch) are unlocked
   *   (force_unlock_workers) and its liveness row removed, rather than waiting for lock expiry.
   */
  function supervise(r: Runner, launch: () => Promise<Runner>): void {
    const stopped = (err: unknown) => {
      if (runner !== r) return; // stop() ended it
      opts.log.error(err === undefined ? {} : { err }, 'job worker stopped after an error; restarting it');
      const dead = liveness?.current;
      let drained = false;
      const again = () => {
        restartTimer = undefined;
        if (runner !== r) return;
        const drain = drained
          ? Promise.resolve()
          : handlersSettled(opts.shutdownTimeoutMs).then((settled) => {
              drained = true;
              if (!settled) {
                opts.log.warn(
                  { running: inFlight.size, timeoutMs: opts.shutdownTimeoutMs },
                  'jobs of the stopped worker still running; restarting anyway (they may run again)',
                );
              }
            });
        drain
          .then(async () => {
            if (runner !== r || !dead) return;
            await pool!.query(`SELECT ${QUEUE_SCHEMA}.force_unlock_workers(ARRAY[$1::text])`, [dead]);
            await liveness?.forget(dead);
          })
          .then(() => (runner === r ? launch() : undefined))
          .then(
            (next) => {
              if (!next) return;
              if (runner !== r) {
                void next.stop().catch(() => {});
                return;
              }
              runner = next;
              restartDelayMs = RESTART_MIN_MS;
              supervise(next, launch);
              opts.log.info('job worker restarted');
            },
            (e) => {
              opts.log.warn({ err: e }, 'job worker restart failed; trying again');
              restartDelayMs = Math.min(restartDelayMs * 2, RESTART_MAX_MS);
              restartTimer = setTimeout(again, restartDelayMs);
            },
          );
      };
      restartTimer = setTimeout(again, restartDelayMs);
    };
    r.promise.then(
      () => stopped(undefined),
      (err) => stopped(err),
    );
  }

  return {
    get running() {
      return runner !== undefined;
    },

    async start({ schedules: withSchedules = true } = {}) {
      if (runner) return;
      const definitions = opts.registry.definitions();
      const byKind = new Map(definitions.map((d) => [d.kind, d]));
      const schedules = withSchedules ? opts.registry.schedules() : [];
      const cron: JobSchedule[] = [];
      every.clear();
      for (const s of schedules) {
        if (!byKind.has(s.kind)) throw new Error(`schedule for "${s.kind}" has no job definition`);
        if (s.everySeconds !== undefined) {
          if (!(s.everySeconds > 0))
            throw new Error(`schedule for "${s.kind}": everySeconds must be positive`);
          every.set(s.kind, s);
        } else cron.push(s);
      }
      pool = new pg.Pool({
        connectionString: opts.databaseUrl,
        // The queue holds one connection for LISTEN; each running job may need one for its records.
        max: opts.concurrency + 2,
        application_name: 'helpdesk-worker',
      });
      // Once the pool is ending, its closing connections may still see the database go (the embedded one is
      // stopped right after): expected at shutdown, not worth a warning.
      const thisPool = pool;
      pool.on('error', (err) => {
        if (!thisPool.ending) opts.log.warn({ err }, 'idle worker database connection lost');
      });
      pool.on('connect', (client) =>
        client.on('error', (err) => {
          if (!thisPool.ending) opts.log.warn({ err }, 'worker connection lost');
        }),
      );

      const taskList: TaskList = {};
      for (const def of definitions) taskList[def.kind] = wrap(def);
      for (const [kind, s] of every) {
        // Seeds the recurring job once; afterwards each run enqueues the next (see wrap()).
        await pool.query(
          `SELECT ${QUEUE_SCHEMA}.add_job($1::text, $2::json, max_attempts => 1, job_key => $3::text,
             job_key_mode => 'unsafe_dedupe')`,
          [kind, JSON.stringify(s.payload ?? {}), EVERY_KEY(kind)],
        );
      }
      liveness = createWorkerLiveness({
        pool,
        schema: QUEUE_SCHEMA,
        timeoutMs: opts.workerTimeoutMs ?? DEFAULT_WORKER_TIMEOUT_MS,
        log: opts.log,
      });
      const pgPool = pool;
      const events = liveness.events;
      const launch = () =>
        run({
          pgPool,
          events,
          schema: QUEUE_SCHEMA,
          concurrency: opts.concurrency,
          pollInterval: opts.pollIntervalMs,
          noHandleSignals: true,
          gracefulShutdownAbortTimeout: Math.floor(opts.shutdownTimeoutMs * 0.8),
          logger: queueLogger(opts.log),
          // Completions and failures go through the library's batcher, which its shutdown flushes (unbatched
          // they are fire-and-forget: a stopping process could leave a finished job locked). 0 ms: no added latency.
          preset: {
            worker: {
              completeJobBatchDelay: 0,
              failJobBatchDelay: 0,
              ...((opts.batchSize ?? 0) > 1
                ? { localQueue: { size: Math.max(opts.batchSize!, opts.concurrency) } }
                : {}),
            },
          },
          taskList,
          parsedCronItems: parseCronItems(
            cron.map((s) => ({
              task: s.kind,
              match: s.cron!,
              identifier: s.kind,
              payload: s.payload,
              // A tick missed while no worker ran is not made up; a tick not yet run is replaced by the next.
              options: {
                backfillPeriod: 0,
                jobKey: `cron:${s.kind}`,
                jobKeyMode: 'replace' as const,
                maxAttempts: byKind.get(s.kind)?.maxAttempts ?? DEFAULT_MAX_ATTEMPTS,
              },
            })),
          ),
        });
      try {
        runner = await launch();
        supervise(runner, launch);
      } catch (err) {
        await liveness.stop();
        liveness = undefined;
        await pool.end().catch(() => {});
        pool = undefined;
        throw err;
      }
      await liveness.start();
      opts.log.info(
        { kinds: definitions.length, schedules: schedules.length, concurrency: opts.concurrency },
        'job worker started',
      );
    },

    async stop() {
      const r = runner;
      const p = pool;
      runner = undefined;
      if (restartTimer) clearTimeout(restartTimer);
      restartTimer = undefined;
      if (!r) return;
      let timer: NodeJS.Timeout | undefined;
      const timedOut = new Promise<'timeout'>((resolve) => {
        timer = setTimeout(() => resolve('timeout'), opts.shutdownTimeoutMs);
      });
      const outcome = await Promise.race([
        r.stop().then(
          () => 'stopped' as const,
          () => 'stopped' as const,
        ),
        timedOut,
      ]);
      clearTimeout(timer);
      if (outcome === 'timeout') {
        // Jobs still running are marked failed in the queue (retried after backoff): none is lost or left locked.
        opts.log.warn(
          { timeoutMs: opts.shutdownTimeoutMs },
          'jobs still running at shutdown; handing them back',
        );
        await r.kill('shutdown timeout').catch((err) => opts.log.error({ err }, 'forced worker stop failed'));
      }
      // Locks are released: the heartbeat row can go (a worker that stops beating early looks dead).
      await liveness?.stop();
      liveness = undefined;
      // Only now: the jobs that just finished wrote their records through this pool.
      if (pool === p) pool = undefined;
      await p?.end().catch((err) => opts.log.warn({ err }, 'closing the worker pool failed'));
      opts.log.info('job worker stopped');
    },
  };
}
