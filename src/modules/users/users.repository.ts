import { eq, sql } from 'drizzle-orm';
import type { Executor } from '../../db/client.js';
import { type UserRow, users } from '../../db/schema/index.js';

export function createUsersRepository() {
  return {
    async findById(ex: Executor, id: string): Promise<UserRow | undefined> {
      const [row] = await ex.select().from(users).where(eq(users.id, id)).limit(1);
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

    async insert(ex: Executor, values: typeof users.$inferInsert): Promise<UserRow> {
      const [row] = await ex.insert(users).values(values).returning();
      return row!;
    },
  };
}

export type UsersRepository = ReturnType<typeof createUsersRepository>;
