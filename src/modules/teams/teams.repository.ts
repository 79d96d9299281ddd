import { and, asc, eq, getTableColumns, inArray, type SQL, sql } from 'drizzle-orm';
import type { Executor } from '../../db/client.js';
import { afterCreatedAt, createdAtSortKey } from '../../db/keyset.js';
import { type TeamRow, teamMembers, teams } from '../../db/schema/index.js';
import type { CreatedAtKeyset } from '../../lib/keyset.js';

export type TeamWithMembers = TeamRow & { memberIds: string[] };

export function createTeamsRepository() {
  async function membersOf(ex: Executor, teamIds: string[]): Promise<Map<string, string[]>> {
    const out = new Map<string, string[]>(teamIds.map((id) => [id, []]));
    if (teamIds.length === 0) return out;
    const rows = await ex
      .select()
      .from(teamMembers)
      .where(inArray(teamMembers.teamId, teamIds))
      .orderBy(asc(teamMembers.userId));
    for (const r of rows) out.get(r.teamId)?.push(r.userId);
    return out;
  }

  return {
    membersOf,

    async findById(
      ex: Executor,
      id: string,
      opts: { forUpdate?: boolean } = {},
    ): Promise<TeamWithMembers | undefined> {
      const q = ex.select().from(teams).where(eq(teams.id, id)).limit(1);
      const [row] = opts.forUpdate ? await q.for('update') : await q;
      if (!row) return undefined;
      return { ...row, memberIds: (await membersOf(ex, [id])).get(id) ?? [] };
    },

    /** Oldest first; keyset on (createdAt as microsecond text, id). */
    async list(
      ex: Executor,
      limit: number,
      after?: CreatedAtKeyset,
    ): Promise<(TeamWithMembers & { sortKey: string })[]> {
      const where: SQL[] = [];
      if (after) where.push(afterCreatedAt(teams.createdAt, teams.id, after, false));
      const rows = await ex
        .select({
          ...getTableColumns(teams),
          sortKey: createdAtSortKey(teams.createdAt),
        })
        .from(teams)
        .where(and(...where))
        .orderBy(asc(teams.createdAt), asc(teams.id))
        .limit(limit);
      const members = await membersOf(
        ex,
        rows.map((r) => r.id),
      );
      return rows.map((r) => ({ ...r, memberIds: members.get(r.id) ?? [] }));
    },

    async insert(ex: Executor, name: string): Promise<TeamRow> {
      const [row] = await ex.insert(teams).values({ name }).returning();
      return row!;
    },

    async rename(ex: Executor, id: string, name: string): Promise<void> {
      await ex.update(teams).set({ name, updatedAt: sql`now()` }).where(eq(teams.id, id));
    },

    async touch(ex: Executor, id: string): Promise<void> {
      await ex.update(teams).set({ updatedAt: sql`now()` }).where(eq(teams.id, id));
    },

    /** Replaces the member set. */
    async setMembers(ex: Executor, teamId: string, userIds: string[]): Promise<void> {
      await ex.delete(teamMembers).where(eq(teamMembers.teamId, teamId));
      if (userIds.length > 0) {
        await ex.insert(teamMembers).values(userIds.map((userId) => ({ teamId, userId })));
      }
    },

    async nameTaken(ex: Executor, name: string, exceptId?: string): Promise<boolean> {
      const where = [sql`lower(${teams.name}) = lower(${name})`];
      if (exceptId) where.push(sql`${teams.id} <> ${exceptId}::uuid`);
      const rows = await ex
        .select({ id: teams.id })
        .from(teams)
        .where(and(...where))
        .limit(1);
      return rows.length > 0;
    },
  };
}

export type TeamsRepository = ReturnType<typeof createTeamsRepository>;
