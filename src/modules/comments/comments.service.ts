import type { Database, Executor } from '../../db/client.js';
import type { Clock } from '../../lib/clock.js';
import { type CursorCodec, InvalidCursorError } from '../../lib/cursor.js';
import { NotFoundError } from '../../lib/errors.js';
import { fieldChanges } from '../../lib/field-diff.js';
import { keysetPage } from '../../lib/keyset.js';
import type { AuditService } from '../audit/audit.service.js';
import type { AuthedContext } from '../auth/actor.js';
import { AccessDeniedError, assertCan, canSeeInternal } from '../auth/permissions.js';
import type { ChangeRecorder } from '../changes/changes.service.js';
import type { Remember } from '../idempotency/idempotency.service.js';
import { NO_SLA, type SlaService } from '../sla/sla.service.js';
import { setsFirstResponse, statusAfterComment, statusSideEffects } from '../tickets/ticket-lifecycle.js';
import { ticketAuditAction } from '../tickets/ticket-patch.js';
import type { TicketsRepository, TicketUpdate } from '../tickets/tickets.repository.js';
import type { TicketService } from '../tickets/tickets.service.js';
import type { CommentsRepository, CommentView } from './comments.repository.js';
import type { CommentDto, CreateCommentInput, ListCommentsQuery } from './comments.schemas.js';

export interface CommentServiceDeps {
  db: Database;
  tickets: Pick<TicketService, 'getVisibleTicket' | 'lockTicketForWrite' | 'toDto'>;
  ticketsRepo: Pick<TicketsRepository, 'addPublicCommentText' | 'update' | 'findView'>;
  comments: CommentsRepository;
  audit: AuditService;
  changes: ChangeRecorder;
  cursor: CursorCodec;
  clock: Clock;
  /** Keeps the ticket's SLA clock in step (first response met, reopen resumes resolution). */
  sla?: Pick<SlaService, 'onTicketChanged'>;
}

export function commentNotFound(id: string): NotFoundError {
  return new NotFoundError(
    'COMMENT_NOT_FOUND',
    'Comment not found',
    `Comment ${id} does not exist or is not visible to you.`,
  );
}

export function createCommentService(deps: CommentServiceDeps) {
  const {
    db,
    tickets,
    ticketsRepo,
    comments,
    audit,
    changes: changeFeed,
    cursor,
    clock,
    sla = NO_SLA,
  } = deps;

  async function toDtos(ex: Executor, rows: CommentView[]): Promise<CommentDto[]> {
    const files = await comments.attachmentsFor(
      ex,
      rows.map((r) => r.id),
    );
    return rows.map((r) => ({
      id: r.id,
      ticketId: r.ticketId,
      author: { id: r.authorId, name: r.authorName, role: r.authorRole },
      body: r.body,
      visibility: r.visibility,
      attachments: files.filter((f) => f.commentId === r.id),
      createdAt: r.createdAt,
    }));
  }

  /**
   * POST /tickets/{id}/comments inside the caller's transaction (draft approval reuses it). Internal notes:
   * agents/admins only (403 otherwise) and they never touch the ticket (no status change, no search text, no
   * updatedAt). A public reply joins the ticket's search text; the first public staff reply sets
   * firstResponseAt; a requester's public reply on a pending or solved ticket reopens it. Closed/cancelled
   * tickets → 409 TICKET_CLOSED. Audit: comment.created, plus one ticket event when the ticket's fields
   * changed; `metadata` is added to both.
   */
  async function createIn(
    tx: Executor,
    ctx: AuthedContext,
    ticketId: number,
    input: CreateCommentInput,
    metadata: Record<string, unknown> = {},
  ): Promise<CommentDto> {
    const { actor } = ctx;
    const entity = { type: 'ticket', id: ticketId };
    const ticket = await tickets.lockTicketForWrite(ctx, tx, ticketId, {
      whenClosed: 'it takes no more comments',
      authorize(t) {
        if (input.visibility === 'internal') assertCan(actor, 'comment.internal', entity);
        else if (actor.role === 'requester' && t.requesterId !== actor.id)
          throw new AccessDeniedError('comment.createPublic', entity);
      },
    });

    const now = clock.now();
    const row = await comments.insert(tx, {
      ticketId,
      authorId: actor.id,
      body: input.body,
      visibility: input.visibility,
      createdAt: now,
    });
    const auditRow = audit.row(ctx, {
      action: 'comment.created',
      entityType: 'comment',
      entityId: row.id,
      changes: { visibility: [null, row.visibility] },
      metadata: {
        ticketId: String(ticketId),
        visibility: row.visibility,
        length: row.body.length,
        ...metadata,
      },
    });
    const [dto] = await toDtos(tx, [{ ...row, authorName: actor.name, authorRole: actor.role }]);
    await changeFeed.record(tx, ctx, {
      type: 'comment.created',
      ticketId,
      data: { comment: dto },
      staffOnly: row.visibility === 'internal',
      audit: auditRow,
    });

    if (input.visibility === 'public') {
      await ticketsRepo.addPublicCommentText(tx, ticketId, row.body);
      const set: TicketUpdate = {};
      const status = statusAfterComment(ticket, { authorId: actor.id, visibility: 'public' });
      if (status !== ticket.status) {
        set.status = status;
        Object.assign(set, statusSideEffects(ticket, status, now));
      }
      if (setsFirstResponse(ticket, actor, 'public')) set.firstResponseAt = now;
      // A public reply is activity on the ticket: updatedAt and version move even without field changes.
      await ticketsRepo.update(tx, ticketId, set, now);
      await sla.onTicketChanged(tx, ticketId, ticket, now);
      const changes = fieldChanges(ticket, set);
      if (Object.keys(changes).length > 0) {
        await audit.record(tx, ctx, {
          action: ticketAuditAction(changes),
          entityType: 'ticket',
          entityId: ticketId,
          changes,
          metadata: {
            ticketId: String(ticketId),
            version: ticket.version + 1,
            commentId: row.id,
            ...metadata,
          },
        });
        const view = tickets.toDto((await ticketsRepo.findView(tx, ticketId))!, actor);
        await changeFeed.record(tx, ctx, {
          type: ticketAuditAction(changes),
          ticketId,
          data: { ticket: view },
        });
      }
    }

    return dto!;
  }

  return {
    /**
     * A comment the caller may see on a ticket the caller may see, else 404. Internal notes are 404 for
     * requesters (they must not learn one exists). For attachments and other modules.
     */
    async getVisibleComment(ctx: AuthedContext, ticketId: number, commentId: string, ex: Executor = db) {
      await tickets.getVisibleTicket(ctx, ticketId, ex);
      const row = await comments.findView(ex, commentId);
      if (!row || row.ticketId !== ticketId) throw commentNotFound(commentId);
      if (row.visibility === 'internal' && !canSeeInternal(ctx.actor)) throw commentNotFound(commentId);
      return row;
    },

    /** GET /tickets/{id}/comments: oldest first; requesters get public replies only. */
    async list(ctx: AuthedContext, ticketId: number, query: ListCommentsQuery) {
      await tickets.getVisibleTicket(ctx, ticketId);
      let after: { createdAt: Date; id: string } | null = null;
      if (query.cursor) {
        const c = cursor.decode(query.cursor);
        if (
          c.t !== ticketId ||
          typeof c.c !== 'string' ||
          typeof c.i !== 'string' ||
          Number.isNaN(Date.parse(c.c))
        )
          throw new InvalidCursorError('The cursor belongs to another ticket or query.');
        after = { createdAt: new Date(c.c), id: c.i };
      }
      const rows = await comments.listForTicket(db, ticketId, {
        includeInternal: canSeeInternal(ctx.actor),
        after,
        limit: query.limit + 1,
      });
      const { page, nextCursor } = keysetPage(rows, query.limit, (last) =>
        cursor.encode({ t: ticketId, c: last.createdAt.toISOString(), i: last.id }),
      );
      return { data: await toDtos(db, page), nextCursor };
    },

    /**
     * POST /tickets/{id}/comments. Internal notes: agents/admins only (403 otherwise) and they never touch
     * the ticket (no status change, no search text, no updatedAt). A public reply joins the ticket's search
     * text; the first public staff reply sets firstResponseAt; a requester's public reply on a pending or
     * solved ticket reopens it. Closed/cancelled tickets → 409 TICKET_CLOSED. Audit: comment.created, plus
     * one ticket event when the ticket's fields changed, all in one transaction.
     */
    async create(
      ctx: AuthedContext,
      ticketId: number,
      input: CreateCommentInput,
      remember: Remember<CommentDto> = async () => {},
    ): Promise<CommentDto> {
      return db.transaction(async (tx) => {
        const dto = await createIn(tx, ctx, ticketId, input);
        await remember(tx, dto);
        return dto;
      });
    },

    createIn,
  };
}

export type CommentService = ReturnType<typeof createCommentService>;
