import { and, asc, eq, isNull, type SQL, sql } from 'drizzle-orm';
import { alias } from 'drizzle-orm/pg-core';
import type { Executor } from '../../db/client.js';
import { afterCreatedAt, createdAtSortKey } from '../../db/keyset.js';
import { type DraftRow, drafts, tickets, users } from '../../db/schema/index.js';
import type { CreatedAtKeyset } from '../../lib/keyset.js';

export type DraftView = DraftRow & {
  authorName: string;
  authorRole: 'requester' | 'agent' | 'admin';
  decidedByName: string | null;
  /** created_at as cursor text (microseconds). */
  sortKey: string;
};

const decider = alias(users, 'decider');

export function createDraftsRepository() {
  function viewQuery(ex: Executor) {
    return ex
      .select({
        id: drafts.id,
        ticketId: drafts.ticketId,
        authorId: drafts.authorId,
        body: drafts.body,
        visibility: drafts.visibility,
        changes: drafts.changes,
        note: drafts.note,
        state: drafts.state,
        ticketVersion: drafts.ticketVersion,
        createdAt: drafts.createdAt,
        sortKey: createdAtSortKey(drafts.createdAt),
        decidedAt: drafts.decidedAt,
        decidedById: drafts.decidedById,
        reason: drafts.reason,
        authorName: users.name,
        authorRole: users.role,
        decidedByName: decider.name,
      })
      .from(drafts)
      .innerJoin(users, eq(users.id, drafts.authorId))
      .leftJoin(decider, eq(decider.id, drafts.decidedById));
  }

  return {
    async insert(ex: Executor, values: typeof drafts.$inferInsert): Promise<string> {
      const [row] = await ex.insert(drafts).values(values).returning({ id: drafts.id });
      return row!.id;
    },

    async findView(ex: Executor, id: string): Promise<DraftView | undefined> {
      const [row] = await viewQuery(ex).where(eq(drafts.id, id)).limit(1);
      return row;
    },

    /** Locks the draft row: two approvals (or an approval and a rejection) of one draft serialize. */
    async lock(ex: Executor, id: string): Promise<DraftRow | undefined> {
      const [row] = await ex.select().from(drafts).where(eq(drafts.id, id)).for('update').limit(1);
      return row;
    },

    async decide(
      ex: Executor,
      id: string,
      values: {
        state: 'approved' | 'rejected';
        decidedAt: Date;
        decidedById: string;
        reason?: string | null;
      },
    ): Promise<void> {
      await ex.update(drafts).set(values).where(eq(drafts.id, id));
    },

    /** Oldest first, keyset on (created_at, id); per ticket and/or per state. */
    async list(
      ex: Executor,
      opts: {
        ticketId?: number;
        state?: 'pending' | 'approved' | 'rejected';
        after: CreatedAtKeyset | null;
        limit: number;
      },
    ): Promise<DraftView[]> {
      const where: SQL[] = [];
      if (opts.ticketId !== undefined) where.push(eq(drafts.ticketId, opts.ticketId));
      if (opts.state) where.push(eq(drafts.state, opts.state));
      // The queue skips drafts of soft-deleted tickets (they could not be approved).
      if (opts.ticketId === undefined) {
        where.push(
          sql`EXISTS (SELECT 1 FROM ${tickets} WHERE ${tickets.id} = ${drafts.ticketId} AND ${isNull(tickets.deletedAt)})`,
        );
      }
      if (opts.after) where.push(afterCreatedAt(drafts.createdAt, drafts.id, opts.after, false));
      return viewQuery(ex)
        .where(and(...where))
        .orderBy(asc(drafts.createdAt), asc(drafts.id))
        .limit(opts.limit);
    },
  };
}

export type DraftsRepository = ReturnType<typeof createDraftsRepository>;
