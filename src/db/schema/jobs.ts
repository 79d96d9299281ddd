import { sql } from 'drizzle-orm';
import { bigint, check, index, integer, jsonb, pgTable, text, timestamp, uuid } from 'drizzle-orm/pg-core';
import { users } from './users.js';

const ts = () => timestamp({ withTimezone: true, mode: 'date', precision: 3 });

export const JOB_STATES = ['queued', 'running', 'succeeded', 'failed'] as const;
export type JobState = (typeof JOB_STATES)[number];

/**
 * What GET /jobs/{id} reports once the queue has forgotten a job. The queue itself lives in the
 * graphile_worker schema (the library's own migrations), which deletes a job when it succeeds; this table
 * keeps the outcome. A row exists for a job enqueued by a user (created_by) or asked to be tracked, for a
 * job that reported progress, and for every job that ended failed (the error is kept). `id` is the
 * queue's job id. Finished rows are purged after JOBS_RETENTION_DAYS.
 */
export const jobRecords = pgTable(
  'job_records',
  {
    id: bigint({ mode: 'number' }).primaryKey(),
    kind: text().notNull(),
    createdBy: uuid().references(() => users.id, { onDelete: 'set null' }),
    state: text().$type<JobState>().notNull().default('queued'),
    attempts: integer().notNull().default(0),
    progressDone: integer().notNull().default(0),
    progressTotal: integer().notNull().default(0),
    result: jsonb(),
    error: text(),
    createdAt: ts().notNull().defaultNow(),
    updatedAt: ts().notNull().defaultNow(),
    finishedAt: ts(),
  },
  (t) => [
    check('job_records_state', sql`${t.state} IN ('queued', 'running', 'succeeded', 'failed')`),
    check(
      'job_records_finished',
      sql`(${t.state} IN ('succeeded', 'failed')) = (${t.finishedAt} IS NOT NULL)`,
    ),
    index('job_records_finished_idx').on(t.finishedAt).where(sql`finished_at IS NOT NULL`),
    index('job_records_failed_idx').on(t.id).where(sql`state = 'failed'`),
  ],
);
export type JobRecordRow = typeof jobRecords.$inferSelect;

/**
 * One row per live job-worker pool (a process running the job runner): graphile-worker locks the jobs it
 * claims with the pool's id (`locked_by`). The process refreshes `last_seen_at` every few seconds; a row
 * silent for longer than JOBS_WORKER_TIMEOUT_MS belongs to a process that died without releasing its locks
 * (SIGKILL, crash, lost host), and any live worker then unlocks its jobs and deletes the row. Times are
 * PostgreSQL's own clock, so workers on hosts with skewed clocks agree. No index on last_seen_at: the table
 * holds one row per worker process (a scan is cheaper), and an unindexed column keeps the frequent heartbeat
 * updates HOT.
 */
export const jobWorkers = pgTable('job_workers', {
  workerId: text().primaryKey(),
  hostname: text().notNull(),
  pid: integer().notNull(),
  startedAt: ts().notNull().defaultNow(),
  lastSeenAt: ts().notNull().defaultNow(),
});
