import { sql } from 'drizzle-orm';
import { Gauge, type Registry } from 'prom-client';
import type { Database } from '../../db/client.js';
import { QUEUE_SCHEMA } from './jobs.repository.js';

interface QueueFigures {
  queued: number;
  scheduled: number;
  running: number;
  failed: number;
  oldestQueuedAgeSeconds: number;
}

/**
 * Queue gauges for /metrics, read from PostgreSQL at scrape time (so every instance reports the same
 * whole queue, whichever role it runs): one query per scrape, shared by the gauges.
 */
export function registerJobMetrics(registry: Registry, db: Database): void {
  let pending: Promise<QueueFigures> | undefined;
  const figures = () => {
    pending ??= read(db).finally(() => {
      setTimeout(() => {
        pending = undefined;
      }, 100).unref();
    });
    return pending;
  };
  const gauge = (name: string, help: string, pick: (f: QueueFigures) => number) =>
    new Gauge({
      name,
      help,
      registers: [registry],
      // Every process reads the same queue: merged across cluster workers, one value, not a sum.
      aggregator: 'first',
      async collect() {
        this.set(pick(await figures()));
      },
    });
  gauge('jobs_queue_depth', 'Jobs due now and waiting for a worker', (f) => f.queued);
  gauge(
    'jobs_scheduled',
    'Jobs waiting for a later time (future runAt or a retry backoff)',
    (f) => f.scheduled,
  );
  gauge('jobs_running', 'Jobs claimed by a worker and running', (f) => f.running);
  gauge(
    'jobs_failed',
    'Jobs that ended failed, kept with their error for JOBS_RETENTION_DAYS',
    (f) => f.failed,
  );
  gauge(
    'jobs_oldest_queued_age_seconds',
    'How long the oldest due job has waited since it became due (0 when none waits)',
    (f) => f.oldestQueuedAgeSeconds,
  );
}

async function read(db: Database): Promise<QueueFigures> {
  const { rows } = await db.execute<Record<string, string | number | null>>(sql`
    SELECT
      count(*) FILTER (WHERE locked_at IS NULL AND run_at <= now()) AS queued,
      count(*) FILTER (WHERE locked_at IS NULL AND run_at > now()) AS scheduled,
      count(*) FILTER (WHERE locked_at IS NOT NULL) AS running,
      coalesce(extract(epoch FROM now() - min(run_at) FILTER (WHERE locked_at IS NULL AND run_at <= now())), 0)
        AS oldest,
      (SELECT count(*) FROM job_records WHERE state = 'failed') AS failed
    FROM ${sql.raw(QUEUE_SCHEMA)}._private_jobs
    WHERE attempts < max_attempts`);
  const r = rows[0] ?? {};
  return {
    queued: Number(r.queued ?? 0),
    scheduled: Number(r.scheduled ?? 0),
    running: Number(r.running ?? 0),
    failed: Number(r.failed ?? 0),
    oldestQueuedAgeSeconds: Number(r.oldest ?? 0),
  };
}
