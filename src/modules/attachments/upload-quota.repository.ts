import { and, eq, lt, sql } from 'drizzle-orm';
import type { Executor } from '../../db/client.js';
import { uploadUsage } from '../../db/schema/index.js';

/** Two-key advisory lock space of the upload quota (the single-key space holds the migration lock). */
const QUOTA_LOCK_CLASS = 727_274_020;

export function createUploadQuotaRepository() {
  return {
    /**
     * Serializes the quota check and the ledger insert of one account until the transaction ends: two
     * concurrent uploads of the same account are checked one after the other, each seeing the other's bytes.
     */
    async lockAccount(tx: Executor, userId: string): Promise<void> {
      await tx.execute(sql`SELECT pg_advisory_xact_lock(${QUOTA_LOCK_CLASS}, hashtext(${userId}))`);
    },

    /** Bytes this account uploaded in the 24 hours before the transaction's start. */
    async usedToday(ex: Executor, userId: string): Promise<number> {
      const [row] = await ex
        .select({ used: sql<string>`coalesce(sum(${uploadUsage.bytes}), 0)` })
        .from(uploadUsage)
        .where(and(eq(uploadUsage.userId, userId), sql`${uploadUsage.createdAt} > now() - interval '1 day'`));
      return Number(row?.used ?? 0);
    },

    /**
     * Seconds until enough of the window has expired for `need` more bytes under `limit`: the oldest
     * uploads leave the window first. Undefined when even an empty window is too small.
     */
    async secondsUntilRoom(
      ex: Executor,
      userId: string,
      need: number,
      limit: number,
    ): Promise<number | undefined> {
      if (need > limit) return undefined;
      const rows = await ex.execute<{ wait: string }>(sql`
        SELECT extract(epoch FROM created_at + interval '1 day' - now()) AS wait
        FROM (
          SELECT created_at,
                 sum(bytes) OVER (ORDER BY created_at, id) AS freed,
                 sum(bytes) OVER () AS used
          FROM ${uploadUsage}
          WHERE user_id = ${userId} AND created_at > now() - interval '1 day'
        ) w
        WHERE used - freed + ${need}::bigint <= ${limit}::bigint
        ORDER BY created_at
        LIMIT 1`);
      const wait = rows.rows[0]?.wait;
      return wait === undefined ? 0 : Number(wait);
    },

    async record(tx: Executor, userId: string, bytes: number): Promise<void> {
      await tx
        .delete(uploadUsage)
        .where(and(eq(uploadUsage.userId, userId), lt(uploadUsage.createdAt, sql`now() - interval '1 day'`)));
      await tx.insert(uploadUsage).values({ userId, bytes });
    },
  };
}

export type UploadQuotaRepository = ReturnType<typeof createUploadQuotaRepository>;
