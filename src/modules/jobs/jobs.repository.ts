import { sql } from 'drizzle-orm';
import type { Executor } from '../../db/client.js';
import { pgClientOf } from '../../db/compiled.js';
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

/**
 * graphile-worker's add_job, as fixed texts: every write that causes work sends one, and drizzle building
 * the call per write cost more CPU than sending it. $1 kind, $2 payload (json text), $3 run_at, $4
 * max_attempts, $5 job_key, $6 queue_name; the tracked form adds $7 created_by and writes the job_records
 * row in the same statement.
 */
const addJobCall = (flags: string) => `${QUEUE_SCHEMA}.add_job(
  identifier => $1::text, payload => $2::json, run_at => $3::timestamptz, max_attempts => $4::int,
  job_key => $5::text, queue_name => $6::text, flags => ${flags})`;
const ADD_JOB = `SELECT id FROM ${addJobCall('null::text[]')}`;
const ADD_TRACKED_JOB = `WITH j AS (SELECT id, created_at FROM ${addJobCall("array['tracked']::text[]")})
  INSERT INTO job_records (id, kind, created_by, created_at, updated_at)
  SELECT id, $1::text, $7::uuid, created_at, created_at FROM j
  ON CONFLICT (id) DO UPDATE SET kind = excluded.kind, created_by = excluded.created_by,
    state = 'queued', error = NULL, result = NULL, finished_at = NULL, updated_at = excluded.updated_at
  RETURNING id`;

/** Jobs: the queue table belongs to the library; job_records is ours. Every method runs on the executor given. */
export function createJobsRepository() {
  return {
    /** Adds the job on `ex` (the caller's transaction: it exists only if that commits). Returns the job id. */
    async add(ex: Executor, job: AddJobInput): Promise<string> {
      const values: unknown[] = [
        job.kind,
        JSON.stringify(job.payload),
        job.runAt?.toISOString() ?? null,
        job.maxAttempts,
        job.jobKey,
        job.queue ?? null,
      ];
      const { rows } = await pgClientOf(ex).query<{ id: number | string }>(
        job.track ? { text: ADD_TRACKED_JOB, values: [...values, job.createdBy] } : { text: ADD_JOB, values },
      );
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
