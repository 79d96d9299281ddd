import { and, desc, eq, getTableColumns, isNull, sql } from 'drizzle-orm';
import type { Executor } from '../../db/client.js';
import { type ApiTokenRow, type ApiTokenScope, apiTokens, users } from '../../db/schema/index.js';
import type { Actor } from './actor.js';

export interface ApiTokenKeyset {
  createdAt: string;
  id: string;
}

/** Personal API token rows. The secret itself is never stored, only its SHA-256. */
export function createApiTokensRepository() {
  return {
    async insert(
      ex: Executor,
      values: { userId: string; name: string; scopes: ApiTokenScope[]; tokenHash: string; expiresAt: Date },
    ): Promise<ApiTokenRow> {
      const [row] = await ex.insert(apiTokens).values(values).returning();
      return row!;
    },

    /** The token and its owner's current state in one round trip (the auth hook reads it per request). */
    async findByHashWithOwner(
      ex: Executor,
      tokenHash: string,
    ): Promise<(ApiTokenRow & { owner: Actor | null }) | null> {
      const [row] = await ex
        .select({
          token: getTableColumns(apiTokens),
          owner: {
            id: users.id,
            role: users.role,
            name: users.name,
            email: users.email,
            active: users.active,
          },
        })
        .from(apiTokens)
        .innerJoin(users, eq(users.id, apiTokens.userId))
        .where(eq(apiTokens.tokenHash, tokenHash))
        .limit(1);
      if (!row) return null;
      const { active, ...owner } = row.owner;
      return { ...row.token, owner: active ? owner : null };
    },

    async touch(ex: Executor, id: string): Promise<void> {
      await ex.update(apiTokens).set({ lastUsedAt: sql`now()` }).where(eq(apiTokens.id, id));
    },

    /** The user's tokens that are not revoked, newest first (keyset on createdAt, id). */
    async listForUser(
      ex: Executor,
      userId: string,
      limit: number,
      after?: ApiTokenKeyset,
    ): Promise<(ApiTokenRow & { sortKey: string })[]> {
      return ex
        .select({
          ...getTableColumns(apiTokens),
          sortKey: sql<string>`to_char(${apiTokens.createdAt} at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')`,
        })
        .from(apiTokens)
        .where(
          and(
            eq(apiTokens.userId, userId),
            isNull(apiTokens.revokedAt),
            after
              ? sql`(${apiTokens.createdAt}, ${apiTokens.id}) < (${after.createdAt}::timestamptz, ${after.id}::uuid)`
              : undefined,
          ),
        )
        .orderBy(desc(apiTokens.createdAt), desc(apiTokens.id))
        .limit(limit);
    },

    async countLiveForUser(ex: Executor, userId: string): Promise<number> {
      const [row] = await ex
        .select({ n: sql<number>`count(*)::int` })
        .from(apiTokens)
        .where(
          and(eq(apiTokens.userId, userId), isNull(apiTokens.revokedAt), sql`${apiTokens.expiresAt} > now()`),
        );
      return row?.n ?? 0;
    },

    /** Revokes the user's own live token; undefined when there is none with this id. */
    async revokeOwn(ex: Executor, userId: string, id: string): Promise<ApiTokenRow | undefined> {
      const [row] = await ex
        .update(apiTokens)
        .set({ revokedAt: sql`now()` })
        .where(and(eq(apiTokens.id, id), eq(apiTokens.userId, userId), isNull(apiTokens.revokedAt)))
        .returning();
      return row;
    },
  };
}

export type ApiTokensRepository = ReturnType<typeof createApiTokensRepository>;
