import { and, asc, eq, gt, isNull, lt, sql } from 'drizzle-orm';
import type { Executor } from '../../db/client.js';
import {
  loginFailures,
  type RefreshTokenRow,
  refreshTokens,
  type SessionRow,
  sessions,
} from '../../db/schema/index.js';

/** Sessions, refresh-token rows and the per-account failed-login counter. */
export function createAuthRepository() {
  return {
    async insertSession(ex: Executor, values: { userId: string; expiresAt: Date }): Promise<SessionRow> {
      const [row] = await ex.insert(sessions).values(values).returning();
      return row!;
    },

    /**
     * Locks the session row: a refresh rotation holds it while it issues the successor, and every
     * revocation updates it, so the two are serialized (a revocation waits for the rotation and then
     * sees it; a rotation after a revocation sees the session revoked).
     */
    async lockSession(ex: Executor, id: string): Promise<SessionRow | undefined> {
      const [row] = await ex.select().from(sessions).where(eq(sessions.id, id)).limit(1).for('update');
      return row;
    },

    /** True while the session exists, belongs to the user, is not revoked and not expired. */
    async isSessionLive(ex: Executor, id: string, userId: string): Promise<boolean> {
      const [row] = await ex
        .select({ id: sessions.id })
        .from(sessions)
        .where(
          and(
            eq(sessions.id, id),
            eq(sessions.userId, userId),
            isNull(sessions.revokedAt),
            gt(sessions.expiresAt, sql`now()`),
          ),
        )
        .limit(1);
      return row !== undefined;
    },

    async insertRefreshToken(
      ex: Executor,
      values: { userId: string; familyId: string; tokenHash: string; expiresAt: Date },
    ): Promise<RefreshTokenRow> {
      const [row] = await ex.insert(refreshTokens).values(values).returning();
      return row!;
    },

    async findRefreshToken(ex: Executor, tokenHash: string): Promise<RefreshTokenRow | undefined> {
      const [row] = await ex
        .select()
        .from(refreshTokens)
        .where(eq(refreshTokens.tokenHash, tokenHash))
        .limit(1);
      return row;
    },

    /**
     * Locks the row so two concurrent uses of one token are serialized (the second is a re-use).
     * Lock order everywhere: the session row first, then its tokens (no deadlock with a revocation).
     */
    async findRefreshTokenForUpdate(ex: Executor, tokenHash: string): Promise<RefreshTokenRow | undefined> {
      const [row] = await ex
        .select()
        .from(refreshTokens)
        .where(eq(refreshTokens.tokenHash, tokenHash))
        .limit(1)
        .for('update');
      return row;
    },

    async markUsed(ex: Executor, id: string): Promise<void> {
      await ex.update(refreshTokens).set({ usedAt: sql`now()` }).where(eq(refreshTokens.id, id));
    },

    /** Ends one session: the session row first (waits for an in-flight rotation), then its tokens. */
    async revokeFamily(ex: Executor, familyId: string): Promise<number> {
      await ex
        .update(sessions)
        .set({ revokedAt: sql`now()` })
        .where(and(eq(sessions.id, familyId), isNull(sessions.revokedAt)));
      const rows = await ex
        .update(refreshTokens)
        .set({ revokedAt: sql`now()` })
        .where(and(eq(refreshTokens.familyId, familyId), isNull(refreshTokens.revokedAt)))
        .returning({ id: refreshTokens.id });
      return rows.length;
    },

    /** Ends every session of the user (password change, deactivation), then revokes their tokens. */
    async revokeAllForUser(ex: Executor, userId: string): Promise<number> {
      await ex
        .update(sessions)
        .set({ revokedAt: sql`now()` })
        .where(and(eq(sessions.userId, userId), isNull(sessions.revokedAt)));
      const rows = await ex
        .update(refreshTokens)
        .set({ revokedAt: sql`now()` })
        .where(and(eq(refreshTokens.userId, userId), isNull(refreshTokens.revokedAt)))
        .returning({ id: refreshTokens.id });
      return rows.length;
    },

    /** Failed attempts for this account key since `since`, and the oldest of them (for Retry-After). */
    async recentFailures(
      ex: Executor,
      emailKey: string,
      since: Date,
    ): Promise<{ count: number; oldest: Date | null }> {
      const [row] = await ex
        .select({
          count: sql<number>`count(*)::int`,
          oldest: sql<string | null>`min(${loginFailures.occurredAt})`,
        })
        .from(loginFailures)
        .where(and(eq(loginFailures.emailKey, emailKey), gt(loginFailures.occurredAt, since)));
      return { count: row?.count ?? 0, oldest: row?.oldest ? new Date(row.oldest) : null };
    },

    /** The `nth` oldest failure in the window (1-based): when it leaves the window, a slot frees up. */
    async nthFailureSince(ex: Executor, emailKey: string, since: Date, nth: number): Promise<Date | null> {
      const rows = await ex
        .select({ occurredAt: loginFailures.occurredAt })
        .from(loginFailures)
        .where(and(eq(loginFailures.emailKey, emailKey), gt(loginFailures.occurredAt, since)))
        .orderBy(asc(loginFailures.occurredAt))
        .offset(nth - 1)
        .limit(1);
      return rows[0]?.occurredAt ?? null;
    },

    async insertFailure(ex: Executor, emailKey: string, at: Date): Promise<string> {
      const [row] = await ex
        .insert(loginFailures)
        .values({ emailKey, occurredAt: at })
        .returning({ id: loginFailures.id });
      return row!.id;
    },

    async deleteFailure(ex: Executor, id: string): Promise<void> {
      await ex.delete(loginFailures).where(eq(loginFailures.id, id));
    },

    /** Drops every row that has left the window (accounts that are never tried again, e.g. sprayed emails). */
    async pruneAllFailures(ex: Executor, before: Date): Promise<void> {
      await ex.delete(loginFailures).where(lt(loginFailures.occurredAt, before));
    },

    /** Drops this account's rows that have left the window (keeps the table small without a job). */
    async pruneFailures(ex: Executor, emailKey: string, before: Date): Promise<void> {
      await ex
        .delete(loginFailures)
        .where(and(eq(loginFailures.emailKey, emailKey), lt(loginFailures.occurredAt, before)));
    },
  };
}

export type AuthRepository = ReturnType<typeof createAuthRepository>;
