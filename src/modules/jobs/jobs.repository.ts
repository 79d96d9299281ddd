import { sql } from 'drizzle-orm';
import type { Executor } from '../../db/client.js';
import type { JobState } from '../../db/schema/index.js';

/** The library's schema (graphile-worker): its public view `jobs` and SQL function `add_job`. */
export const QUEUE_SCHEMA = 'graphile_worker';

export interface JobView {
  id: string;
  kind: string;
  state: JobState;
  createdBy: string | null;
  progress: { done: number; total: number };
  result: unknown;
  error: string | null;
  createdAt: Date;
  finishedAt: Date | null;
}

interface AddJobInput {
  kind: string;
  payload: object;
  runAt: Date | null;
  maxAttempts: number;
  jobKey: string | null;
  /** Also write a job_records row (same statement, same transaction). */
  track: boolean;
  createdBy: string | null;
  /** A named queue: its jobs run one at a time. */
  queue?: string | null;
}

function toDate(v: unknown): Date {
  return v instanceof Date ? v : new Date(String(v));
}

/** Jobs: the queue table belongs to the library; job_records is ours. Every method runs on the executor given. */
export function createJobsRepository() {
  return {
    /** Adds the job on `ex` (the caller's transaction: it exists only if that commits). Returns the job id. */
    async add(ex: Executor, job: AddJobInput): Promise<string> {
      const addJob = sql`${sql.raw(QUEUE_SCHEMA)}.add_job(
        identifier => ${job.kind}::text,
        payload => ${JSON.stringify(job.payload)}::json,
        run_at => ${job.runAt?.toISOString() ?? null}::timestamptz,
        max_attempts => ${job.maxAttempts}::int,
        job_key => ${job.jobKey}::text,
        queue_name => ${job.queue ?? null}::text,
        flags => ${job.track ? sql`array['tracked']` : sql`null`}::text[])`;
      const query = job.track
        ? sql`WITH j AS (SELECT id, created_at FROM ${addJob})
            INSERT INTO job_records (id, kind, created_by, created_at, updated_at)
            SELECT id, ${job.kind}, ${job.createdBy}::uuid, created_at, created_at FROM j
            ON CONFLICT (id) DO UPDATE SET kind = excluded.kind, created_by = excluded.created_by,
              state = 'queued', error = NULL, result = NULL, finished_at = NULL, updated_at = excluded.updated_at
            RETURNING id`
        : sql`SELECT id FROM ${addJob}`;
      const { rows } = await ex.execute<{ id: number | string }>(query);
      return String(rows[0]!.id);
    },

    /** A job as GET /jobs/{id} shows it: our record when there is one, otherwise the queue's row. */
    async find(ex: Executor, id: string): Promise<JobView | null> {
      const { rows: records } = await ex.execute<Record<string, unknown>>(
        sql`SELECT id, kind, state, created_by, progress_done, progress_total, result, error, created_at, finished_at
            FROM job_records WHERE id = ${id}::bigint`,
      );
      const r = records[0];
      if (r) {
        return {
          id: String(r.id),
          kind: String(r.kind),
          state: r.state as JobState,
          createdBy: (r.created_by as string | null) ?? null,
          progress: { done: Number(r.progress_done), total: Number(r.progress_total) },
          result: r.result ?? null,
          error: (r.error as string | null) ?? null,
          createdAt: toDate(r.created_at),
          finishedAt: r.finished_at ? toDate(r.finished_at) : null,
        };
      }
      // Untracked jobs are visible only while the queue holds them (queued, running, waiting for a retry).
      const { rows: queued } = await ex.execute<Record<string, unknown>>(
        sql`SELECT id, task_identifier, locked_at, attempts, max_attempts, last_error, created_at, updated_at
            FROM ${sql.raw(QUEUE_SCHEMA)}.jobs WHERE id = ${id}::bigint`,
      );
      const q = queued[0];
      if (!q) return null;
      const failed = Number(q.attempts) >= Number(q.max_attempts) && !q.locked_at;
      return {
        id: String(q.id),
        kind: String(q.task_identifier),
        state: failed ? 'failed' : q.locked_at ? 'running' : 'queued',
        createdBy: null,
        progress: { done: 0, total: 0 },
        result: null,
        error: (q.last_error as string | null) ?? null,
        createdAt: toDate(q.created_at),
        finishedAt: failed ? toDate(q.updated_at) : null,
      };
    },
  };
}

export type JobsRepository = ReturnType<typeof createJobsRepository>;
