import type { FastifyBaseLogger } from 'fastify';

export type Logger = FastifyBaseLogger;

/** What a running job can see and do besides its payload. */
export interface JobContext {
  /** The queue's job id (the one enqueue() returned and GET /jobs/{id} takes). */
  jobId: string;
  /** 1 on the first run, 2 on the first retry, … */
  attempt: number;
  maxAttempts: number;
  /** A child logger carrying jobId, kind and attempt. */
  log: Logger;
  /** Reports progress (GET /jobs/{id} shows it). Cheap enough for every few hundred items, not every item. */
  progress(done: number, total: number): Promise<void>;
  /** Aborted when the worker shuts down: long jobs should stop early and throw (they are retried). */
  signal: AbortSignal;
}

/**
 * One kind of job, contributed by a module and collected by the composition root. The handler's return
 * value (JSON) becomes the job's `result`. Throwing retries the job with exponential backoff
 * (e^attempt seconds: 3 s, 7 s, 20 s, 55 s, … capped at ~6 h) until `maxAttempts`, then it ends `failed`
 * with the error kept; throwing PermanentJobError ends it `failed` at once. Jobs run at least once:
 * a handler must be idempotent (a retry must not redo what an earlier attempt already did).
 */
export interface JobDefinition<P = unknown> {
  kind: string;
  /** Attempts before the job ends failed (default 10). enqueue() may override it per job. */
  maxAttempts?: number;
  handler(payload: P, ctx: JobContext): Promise<unknown>;
}

/** Thrown by a handler: the job fails now, without retries; its message is kept as the job's error. */
export class PermanentJobError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'PermanentJobError';
  }
}

/**
 * Recurring work: a job of `kind` enqueued on a schedule, once per tick across every worker process.
 * `cron` is a 5-field crontab pattern in UTC (minute resolution); `everySeconds` runs the job again that
 * many seconds after its previous run started (any number of seconds, also below a minute).
 */
export type JobSchedule = { kind: string; payload?: Record<string, unknown> } & (
  | { cron: string; everySeconds?: never }
  | { everySeconds: number; cron?: never }
);

export interface EnqueueOptions {
  /** Not before this time (default: now). */
  runAt?: Date;
  /** Overrides the definition's maxAttempts. */
  maxAttempts?: number;
  /** At most one queued job per key: enqueueing again replaces the queued one (a running one is left alone). */
  jobKey?: string;
  /** The user this job works for: they (and admins) may read it with GET /jobs/{id}. Implies `track`. */
  createdBy?: string;
  /** Keep a record of the job's outcome (GET /jobs/{id} after it succeeded); costs a row per job. */
  track?: boolean;
  /** Jobs of one named queue run one at a time, in order (e.g. every delivery to one webhook). */
  queue?: string;
}

export const DEFAULT_MAX_ATTEMPTS = 10;
