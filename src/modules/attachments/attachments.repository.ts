import { and, asc, eq, inArray } from 'drizzle-orm';
import type { Executor } from '../../db/client.js';
import {
  type AttachmentRow,
  attachments,
  type CommentVisibility,
  comments,
  type NewAttachmentRow,
  tickets,
} from '../../db/schema/index.js';

/** What a download needs to know about the ticket: its visibility. */
export interface AttachmentTicket {
  id: number;
  requesterId: string;
  deletedAt: Date | null;
}

/** An attachment with the visibility of the comment it belongs to (null: a ticket-level attachment). */
export type AttachmentWithVisibility = AttachmentRow & { commentVisibility: CommentVisibility | null };

const ticketColumns = {
  id: tickets.id,
  requesterId: tickets.requesterId,
  deletedAt: tickets.deletedAt,
};

export function createAttachmentsRepository() {
  return {
    async findComment(
      ex: Executor,
      commentId: string,
    ): Promise<
      { id: string; ticketId: number; authorId: string; visibility: CommentVisibility } | undefined
    > {
      const [row] = await ex
        .select({
          id: comments.id,
          ticketId: comments.ticketId,
          authorId: comments.authorId,
          visibility: comments.visibility,
        })
        .from(comments)
        .where(eq(comments.id, commentId));
      return row;
    },

    async insertMany(ex: Executor, rows: NewAttachmentRow[]): Promise<AttachmentRow[]> {
      if (rows.length === 0) return [];
      return ex.insert(attachments).values(rows).returning();
    },

    /** The attachment, its comment's visibility and its ticket's gate, in one query. */
    async findWithContext(
      ex: Executor,
      id: string,
    ): Promise<{ attachment: AttachmentWithVisibility; ticket: AttachmentTicket } | undefined> {
      const [row] = await ex
        .select({ attachment: attachments, commentVisibility: comments.visibility, ticket: ticketColumns })
        .from(attachments)
        .innerJoin(tickets, eq(tickets.id, attachments.ticketId))
        .leftJoin(comments, eq(comments.id, attachments.commentId))
        .where(eq(attachments.id, id));
      if (!row) return undefined;
      return {
        attachment: { ...row.attachment, commentVisibility: row.commentVisibility },
        ticket: row.ticket,
      };
    },

    /**
     * Attachments of these comments, oldest first. With `publicOnly`, attachments of internal notes are
     * left out (for requesters) — the caller filters comments too, this is the second lock on the door.
     */
    async listByCommentIds(
      ex: Executor,
      commentIds: readonly string[],
      opts: { publicOnly: boolean },
    ): Promise<AttachmentRow[]> {
      if (commentIds.length === 0) return [];
      const rows = await ex
        .select({ attachment: attachments })
        .from(attachments)
        .innerJoin(comments, eq(comments.id, attachments.commentId))
        .where(
          and(
            inArray(attachments.commentId, [...commentIds]),
            opts.publicOnly ? eq(comments.visibility, 'public') : undefined,
          ),
        )
        .orderBy(asc(attachments.createdAt), asc(attachments.id));
      return rows.map((r) => r.attachment);
    },
  };
}

export type AttachmentsRepository = ReturnType<typeof createAttachmentsRepository>;
