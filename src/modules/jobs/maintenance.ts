import { type SQL, sql } from 'drizzle-orm';
import type { Database } from '../../db/client.js';
import type { BlobStore } from '../../lib/storage/blob-store.js';
import type { JobDefinition, JobSchedule } from './job-definition.js';

/**
 * One clean-up step of the `maintenance.purge` job: deletes what has expired and returns how many rows
 * went. Modules add their own (reset tokens, change events past retention, …) through the composition
 * root; each runs on its own, so one failing does not stop the others.
 */
export interface Purge {
  name: string;
  run(db: Database, now: Date): Promise<number>;
}

const BATCH = 5000;

/**
 * Deletes the rows `where` matches, BATCH at a time (short transactions, no long lock on a big backlog).
 * `table` and `where` are trusted SQL written in this codebase.
 */
export async function deleteInBatches(db: Database, table: string, where: SQL): Promise<number> {
  let total = 0;
  for (;;) {
    const { rowCount } = await db.execute(
      sql`DELETE FROM ${sql.identifier(table)} WHERE ctid = ANY(ARRAY(
            SELECT ctid FROM ${sql.identifier(table)} WHERE ${where} LIMIT ${sql.raw(String(BATCH))}))`,
    );
    total += rowCount ?? 0;
    if ((rowCount ?? 0) < BATCH) return total;
  }
}

/** The purges every installation runs; the list is meant to grow (see Purge). */
export function corePurges({ retentionDays }: { retentionDays: number }): Purge[] {
  return [
    {
      name: 'idempotency-keys',
      run: (db, now) => deleteInBatches(db, 'idempotency_keys', sql`expires_at <= ${now}`),
    },
    {
      name: 'refresh-tokens',
      run: (db, now) => deleteInBatches(db, 'refresh_tokens', sql`expires_at <= ${now}`),
    },
    {
      // Dry-run snapshots of bulk changes: useless once their confirmation token expired (the job has its own copy).
      name: 'bulk-runs',
      run: (db, now) => deleteInBatches(db, 'bulk_runs', sql`expires_at <= ${now}`),
    },
    {
      name: 'job-records',
      run: (db, now) =>
        deleteInBatches(
          db,
          'job_records',
          sql`finished_at < ${new Date(now.getTime() - retentionDays * 86_400_000)}`,
        ),
    },
  ];
}

/**
 * Removes what the blob store lists as leftovers (staged copies of uploads interrupted by a crash) that
 * no attachment row names and that are older than the grace period, which keeps uploads in flight (at
 * most a request timeout old) safe. Committed, content-addressed blobs are never listed: one may be
 * shared by many rows or about to be named by an upload's open transaction.
 */
export async function sweepOrphanBlobs(
  db: Database,
  store: Pick<BlobStore, 'list' | 'delete'>,
  olderThan: Date,
): Promise<{ checked: number; removed: number }> {
  if (!store.list) return { checked: 0, removed: 0 };
  let checked = 0;
  let removed = 0;
  let batch: string[] = [];
  const flush = async () => {
    if (batch.length === 0) return;
    const { rows } = await db.execute<{ storage_key: string }>(
      sql`SELECT storage_key FROM attachments WHERE storage_key = ANY(${sql.param(batch)}::text[])`,
    );
    const named = new Set(rows.map((r) => r.storage_key));
    for (const key of batch) {
      if (named.has(key)) continue;
      await store.delete(key);
      removed++;
    }
    batch = [];
  };
  for await (const blob of store.list()) {
    if (blob.modifiedAt >= olderThan) continue;
    checked++;
    batch.push(blob.key);
    if (batch.length >= 500) await flush();
  }
  await flush();
  return { checked, removed };
}

/** Scheduled maintenance as jobs: the purge list every 10 minutes, the orphan-blob sweep hourly. */
export function maintenanceJobs({
  db,
  store,
  purges,
  orphanGraceMinutes,
  now = () => new Date(),
}: {
  db: Database;
  store: Pick<BlobStore, 'list' | 'delete'>;
  purges: readonly Purge[];
  orphanGraceMinutes: number;
  now?: () => Date;
}): { definitions: JobDefinition[]; schedules: JobSchedule[] } {
  const purge: JobDefinition<object> = {
    kind: 'maintenance.purge',
    maxAttempts: 3,
    async handler(_payload, ctx) {
      const deleted: Record<string, number> = {};
      const failed: string[] = [];
      for (const p of purges) {
        try {
          deleted[p.name] = await p.run(db, now());
        } catch (err) {
          ctx.log.error({ err, purge: p.name }, 'purge failed');
          failed.push(p.name);
        }
      }
      ctx.log.info({ deleted }, 'expired rows purged');
      if (failed.length > 0) throw new Error(`purges failed: ${failed.join(', ')}`);
      return { deleted };
    },
  };
  const orphans: JobDefinition<object> = {
    kind: 'maintenance.orphan-blobs',
    maxAttempts: 3,
    async handler(_payload, ctx) {
      const outcome = await sweepOrphanBlobs(
        db,
        store,
        new Date(now().getTime() - orphanGraceMinutes * 60_000),
      );
      if (outcome.removed > 0) ctx.log.info(outcome, 'orphaned upload blobs removed');
      return outcome;
    },
  };
  return {
    definitions: [purge, orphans],
    schedules: [
      { kind: purge.kind, cron: '*/10 * * * *' },
      { kind: orphans.kind, cron: '23 * * * *' },
    ],
  };
}
