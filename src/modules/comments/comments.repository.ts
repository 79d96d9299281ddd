import { and, asc, eq, inArray, type SQL, sql } from 'drizzle-orm';
import type { Executor } from '../../db/client.js';
import { attachments, type CommentRow, comments, type NewCommentRow, users } from '../../db/schema/index.js';

export type CommentView = CommentRow & { authorName: string; authorRole: 'requester' | 'agent' | 'admin' };

const viewColumns = {
  id: comments.id,
  ticketId: comments.ticketId,
  authorId: comments.authorId,
  body: comments.body,
  visibility: comments.visibility,
  createdAt: comments.createdAt,
  authorName: users.name,
  authorRole: users.role,
};

export function createCommentsRepository() {
  return {
    async insert(ex: Executor, values: NewCommentRow): Promise<CommentRow> {
      const [row] = await ex.insert(comments).values(values).returning();
      return row!;
    },

    async findView(ex: Executor, id: string): Promise<CommentView | undefined> {
      const [row] = await ex
        .select(viewColumns)
        .from(comments)
        .innerJoin(users, eq(users.id, comments.authorId))
        .where(eq(comments.id, id))
        .limit(1);
      return row;
    },

    /** Oldest first, keyset on (created_at, id); internal notes only when asked for. */
    async listForTicket(
      ex: Executor,
      ticketId: number,
      opts: { includeInternal: boolean; after: { createdAt: Date; id: string } | null; limit: number },
    ): Promise<CommentView[]> {
      const where: SQL[] = [eq(comments.ticketId, ticketId)];
      if (!opts.includeInternal) where.push(eq(comments.visibility, 'public'));
      if (opts.after) {
        where.push(
          sql`(${comments.createdAt}, ${comments.id}) > (${opts.after.createdAt.toISOString()}::timestamptz, ${opts.after.id}::uuid)`,
        );
      }
      return ex
        .select(viewColumns)
        .from(comments)
        .innerJoin(users, eq(users.id, comments.authorId))
        .where(and(...where))
        .orderBy(asc(comments.createdAt), asc(comments.id))
        .limit(opts.limit);
    },

    /** The attachments of these comments (oldest first), for the Comment representation. */
    async attachmentsFor(ex: Executor, commentIds: string[]) {
      if (commentIds.length === 0) return [];
      return ex
        .select({
          id: attachments.id,
          ticketId: attachments.ticketId,
          commentId: attachments.commentId,
          filename: attachments.filename,
          contentType: attachments.contentType,
          size: attachments.size,
          sha256: attachments.sha256,
          createdAt: attachments.createdAt,
        })
        .from(attachments)
        .where(inArray(attachments.commentId, commentIds))
        .orderBy(asc(attachments.createdAt), asc(attachments.id));
    },
  };
}

export type CommentsRepository = ReturnType<typeof createCommentsRepository>;
