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
