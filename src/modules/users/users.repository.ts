import { and, desc, eq, getTableColumns, ilike, inArray, ne, or, type SQL, sql } from 'drizzle-orm';
import type { Executor } from '../../db/client.js';
import { afterCreatedAt, createdAtSortKey } from '../../db/keyset.js';
import { type UserRole, type UserRow, users } from '../../db/schema/index.js';

export interface UserListFilters {
  /** Restrict to these roles (an agent's view: agents and admins only). */
  roles?: UserRole[];
  role?: UserRole;
  active?: boolean;
  q?: string;
}

/** createdAt as text with PostgreSQL's microsecond precision (a JS Date would lose it), and id. */
export interface UserKeyset {
  createdAt: string;
  id: string;
}

function escapeLike(s: string): string {
  return s.replace(/[\\%_]/g, (c) => `\\${c}`);
}

export function createUsersRepository() {
  return {
    async findById(ex: Executor, id: string): Promise<UserRow | undefined> {
      const [row] = await ex.select().from(users).where(eq(users.id, id)).limit(1);
      return row;
    },

    /** The row locked for the rest of the transaction (role/active changes). */
    async findByIdForUpdate(ex: Executor, id: string): Promise<UserRow | undefined> {
      const [row] = await ex.select().from(users).where(eq(users.id, id)).limit(1).for('update');
      return row;
    },

    /** Case-insensitive, served by the unique index on lower(email). */
    async findByEmail(ex: Executor, email: string): Promise<UserRow | undefined> {
      const [row] = await ex
        .select()
        .from(users)
        .where(sql`lower(${users.email}) = lower(${email})`)
        .limit(1);
      return row;
    },

    async findByIds(ex: Executor, ids: string[]): Promise<UserRow[]> {
      if (ids.length === 0) return [];
      return ex.select().from(users).where(inArray(users.id, ids));
    },

    async insert(ex: Executor, values: typeof users.$inferInsert): Promise<UserRow> {
      const [row] = await ex.insert(users).values(values).returning();
      return row!;
    },

    async update(
      ex: Executor,
      id: string,
      patch: Partial<Pick<UserRow, 'name' | 'role' | 'active' | 'passwordHash'>>,
    ): Promise<UserRow> {
      const [row] = await ex
        .update(users)
        .set({ ...patch, updatedAt: sql`now()` })
        .where(eq(users.id, id))
        .returning();
      return row!;
    },

    /** Newest first; keyset on (createdAt, id) served by users_created_idx / users_role_created_idx. */
    async list(
      ex: Executor,
      filters: UserListFilters,
      limit: number,
      after?: UserKeyset,
    ): Promise<(UserRow & { sortKey: string })[]> {
      const where: SQL[] = [];
      if (filters.roles) where.push(inArray(users.role, filters.roles));
      if (filters.role) where.push(eq(users.role, filters.role));
      if (filters.active !== undefined) where.push(eq(users.active, filters.active));
      if (filters.q) {
        const pattern = `%${escapeLike(filters.q)}%`;
        where.push(or(ilike(users.name, pattern), ilike(users.email, pattern))!);
      }
      if (after) where.push(afterCreatedAt(users.createdAt, users.id, after, true));
      return ex
        .select({
          ...getTableColumns(users),
          sortKey: createdAtSortKey(users.createdAt),
        })
        .from(users)
        .where(and(...where))
        .orderBy(desc(users.createdAt), desc(users.id))
        .limit(limit);
    },

    /**
     * Serializes changes to the set of active admins (demotion, deactivation, bootstrap) for the rest of
     * the transaction, so two concurrent changes cannot both remove "the other" last admin.
     */
    async lockAdminSet(ex: Executor): Promise<void> {
      await ex.execute(sql`select pg_advisory_xact_lock(727274002)`);
    },

    async countOtherActiveAdmins(ex: Executor, exceptId: string): Promise<number> {
      const [row] = await ex
        .select({ n: sql<number>`count(*)::int` })
        .from(users)
        .where(and(eq(users.role, 'admin'), eq(users.active, true), ne(users.id, exceptId)));
      return row?.n ?? 0;
    },

    async anyActiveAdmin(ex: Executor): Promise<boolean> {
      const rows = await ex
        .select({ id: users.id })
        .from(users)
        .where(and(eq(users.role, 'admin'), eq(users.active, true)))
        .limit(1);
      return rows.length > 0;
    },
  };
}

export type UsersRepository = ReturnType<typeof createUsersRepository>;
