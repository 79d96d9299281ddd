import { and, eq, lte, sql } from 'drizzle-orm';
import type { Executor } from '../../db/client.js';
import { idempotencyKeys } from '../../db/schema/index.js';

/** Which request a key belongs to: the caller, the client's key, and the fingerprint of the request. */
export interface IdempotencyRequest {
  userId: string;
  key: string;
  /** fingerprint(method, route, request): same key with another request → 422 IDEMPOTENCY_KEY_REUSED. */
  fingerprint: string;
}

export interface IdempotencyKeyState {
  requestHash: string;
  status: 'in_progress' | 'completed';
  /** The stored result (JSON of the resource the first request answered); null while in progress. */
  result: string | null;
}

/** Rows of idempotency_keys: one per (user, key), claimed in progress, then completed with its result. */
export function createIdempotencyRepository() {
  return {
    /**
     * Inserts an in_progress claim; of parallel claims exactly one wins. An expired key, or a claim
     * whose instance died (lockedUntil passed), is taken over. True when this call holds the claim.
     */
    async tryClaim(
      ex: Executor,
      req: IdempotencyRequest,
      times: { now: Date; lockedUntil: Date; expiresAt: Date },
    ): Promise<boolean> {
      const { now } = times;
      const rows = await ex
        .insert(idempotencyKeys)
        .values({
          userId: req.userId,
          key: req.key,
          requestHash: req.fingerprint,
          status: 'in_progress',
          createdAt: now,
          lockedUntil: times.lockedUntil,
          expiresAt: times.expiresAt,
        })
        .onConflictDoUpdate({
          target: [idempotencyKeys.userId, idempotencyKeys.key],
          set: {
            requestHash: sql`excluded.request_hash`,
            status: 'in_progress',
            responseStatus: null,
            responseBody: null,
            responseHeaders: null,
            createdAt: sql`excluded.created_at`,
            lockedUntil: sql`excluded.locked_until`,
            expiresAt: sql`excluded.expires_at`,
          },
          setWhere: sql`${idempotencyKeys.expiresAt} <= ${now} OR (${idempotencyKeys.status} = 'in_progress' AND ${idempotencyKeys.lockedUntil} <= ${now})`,
        })
        .returning({ key: idempotencyKeys.key });
      return rows.length === 1;
    },

    async find(
      ex: Executor,
      req: Pick<IdempotencyRequest, 'userId' | 'key'>,
    ): Promise<IdempotencyKeyState | undefined> {
      const [row] = await ex
        .select({
          requestHash: idempotencyKeys.requestHash,
          status: idempotencyKeys.status,
          result: idempotencyKeys.responseBody,
        })
        .from(idempotencyKeys)
        .where(and(eq(idempotencyKeys.userId, req.userId), eq(idempotencyKeys.key, req.key)))
        .limit(1);
      return row;
    },

    /** Marks the key completed with the JSON of its result. */
    async complete(ex: Executor, req: IdempotencyRequest, result: string): Promise<void> {
      await ex
        .update(idempotencyKeys)
        .set({ status: 'completed', responseBody: result })
        .where(and(eq(idempotencyKeys.userId, req.userId), eq(idempotencyKeys.key, req.key)));
    },

    /** Deletes this request's in_progress claim (not a completed key, not another request's claim). */
    async release(ex: Executor, req: IdempotencyRequest): Promise<void> {
      await ex
        .delete(idempotencyKeys)
        .where(
          and(
            eq(idempotencyKeys.userId, req.userId),
            eq(idempotencyKeys.key, req.key),
            eq(idempotencyKeys.status, 'in_progress'),
            eq(idempotencyKeys.requestHash, req.fingerprint),
          ),
        );
    },

    async deleteExpired(ex: Executor, now: Date): Promise<number> {
      const rows = await ex
        .delete(idempotencyKeys)
        .where(lte(idempotencyKeys.expiresAt, now))
        .returning({ key: idempotencyKeys.key });
      return rows.length;
    },
  };
}

export type IdempotencyRepository = ReturnType<typeof createIdempotencyRepository>;
