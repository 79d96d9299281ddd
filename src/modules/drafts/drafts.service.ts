import type { Database, Executor } from '../../db/client.js';
import type { Clock } from '../../lib/clock.js';
import { type CursorCodec, InvalidCursorError } from '../../lib/cursor.js';
import { ConflictError, NotFoundError, PreconditionFailedError } from '../../lib/errors.js';
import { createdAtKeyset, keysetPage } from '../../lib/keyset.js';
import type { AuditService } from '../audit/audit.service.js';
import type { AuthedContext } from '../auth/actor.js';
import { AccessDeniedError, isStaff } from '../auth/permissions.js';
import type { ChangeRecorder } from '../changes/changes.service.js';
import type { CommentDto } from '../comments/comments.schemas.js';
import type { CommentService } from '../comments/comments.service.js';
import type { ExpectedVersion } from '../tickets/ticket-gate.js';
import type { TicketsRepository } from '../tickets/tickets.repository.js';
import type { TicketDto } from '../tickets/tickets.schemas.js';
import type { TicketService } from '../tickets/tickets.service.js';
import type { DraftsRepository, DraftView } from './drafts.repository.js';
import type { CreateDraftInput, DraftChanges, DraftDto, ListDraftsQuery } from './drafts.schemas.js';

export interface DraftServiceDeps {
  db: Database;
  drafts: DraftsRepository;
  tickets: Pick<TicketService, 'getVisibleTicket' | 'lockTicketForWrite' | 'patchIn' | 'toDto'>;
  ticketsRepo: Pick<TicketsRepository, 'lockById' | 'findView'>;
  comments: Pick<CommentService, 'createIn'>;
  audit: AuditService;
  changes: ChangeRecorder;
  cursor: CursorCodec;
  clock: Clock;
}

function draftNotFound(id: string): NotFoundError {
  return new NotFoundError('DRAFT_NOT_FOUND', 'Draft not found', `Draft ${id} does not exist.`);
}

function versionMatches(expected: ExpectedVersion, version: number): boolean {
  if (expected === '*') return true;
  if (typeof expected === 'number') return expected === version;
  return expected.includes(version);
}

function toDto(v: DraftView): DraftDto {
  return {
    id: v.id,
    ticketId: v.ticketId,
    author: { id: v.authorId, name: v.authorName, role: v.authorRole },
    body: v.body,
    visibility: v.visibility,
    changes: v.changes,
    note: v.note,
    state: v.state,
    ticketVersion: v.ticketVersion,
    createdAt: v.createdAt,
    decidedAt: v.decidedAt,
    decidedBy: v.decidedById ? { id: v.decidedById, name: v.decidedByName ?? '' } : null,
    reason: v.reason,
  };
}

/**
 * Drafts: replies and ticket changes proposed by staff (or an assistant's token) that a person approves
 * or rejects. Staff-only everywhere: requesters get 403 on every draft route, and draft events are
 * recorded staffOnly so no requester feed, stream or mail ever carries one.
 */
export function createDraftService(deps: DraftServiceDeps) {
  const { db, drafts, tickets, ticketsRepo, comments, audit, changes: changeFeed, cursor, clock } = deps;

  function assertStaff(
    ctx: AuthedContext,
    operation: string,
    entity?: { type: string; id?: string | number },
  ) {
    if (!isStaff(ctx.actor.role)) {
      throw new AccessDeniedError(operation, entity, 'Drafts are for agents and admins only.');
    }
  }

  function decodeAfter(token: string | undefined, scope: string) {
    if (!token) return null;
    const c = cursor.decode(token);
    if (c.s !== scope) throw new InvalidCursorError('The cursor belongs to another list.');
    return createdAtKeyset(c);
  }

  async function page(scope: string, query: ListDraftsQuery, ticketId?: number) {
    const rows = await drafts.list(db, {
      ticketId,
      state: query.state,
      after: decodeAfter(query.cursor, scope),
      limit: query.limit + 1,
    });
    const { page: data, nextCursor } = keysetPage(rows, query.limit, (last) =>
      cursor.encode({ s: scope, t: last.sortKey, i: last.id }),
    );
    return { data: data.map(toDto), nextCursor };
  }

  async function recordDecision(
    tx: Executor,
    ctx: AuthedContext,
    draftId: string,
    action: 'draft.approved' | 'draft.rejected',
    metadata: Record<string, unknown>,
  ): Promise<DraftDto> {
    const dto = toDto((await drafts.findView(tx, draftId))!);
    await audit.record(tx, ctx, {
      action,
      entityType: 'draft',
      entityId: draftId,
      changes: { state: ['pending', dto.state] },
      metadata: { ticketId: String(dto.ticketId), draftAuthorId: dto.author.id, ...metadata },
    });
    await changeFeed.record(tx, ctx, {
      type: action,
      ticketId: dto.ticketId,
      data: { draft: dto },
      staffOnly: true,
    });
    return dto;
  }

  /** The pending draft, locked; a decided one → 409 DRAFT_DECIDED. */
  async function lockPending(tx: Executor, id: string) {
    const draft = await drafts.lock(tx, id);
    if (!draft) throw draftNotFound(id);
    if (draft.state !== 'pending') {
      throw new ConflictError('DRAFT_DECIDED', `Draft ${id} was already ${draft.state}.`);
    }
    return draft;
  }

  return {
    /** POST /tickets/{id}/drafts: staff, on a ticket they could write to; records the ticket's version. */
    async create(ctx: AuthedContext, ticketId: number, input: CreateDraftInput): Promise<DraftDto> {
      assertStaff(ctx, 'draft.create', { type: 'ticket', id: ticketId });
      return db.transaction(async (tx) => {
        const ticket = await tickets.lockTicketForWrite(ctx, tx, ticketId, {
          lock: 'share',
          whenClosed: 'drafts for it could never be approved',
        });
        const id = await drafts.insert(tx, {
          ticketId,
          authorId: ctx.actor.id,
          body: input.body ?? null,
          visibility: input.visibility,
          changes: input.changes ?? {},
          note: input.note ?? null,
          ticketVersion: ticket.version,
          createdAt: clock.now(),
        });
        const dto = toDto((await drafts.findView(tx, id))!);
        await audit.record(tx, ctx, {
          action: 'draft.created',
          entityType: 'draft',
          entityId: id,
          changes: { state: [null, 'pending'] },
          metadata: {
            ticketId: String(ticketId),
            ticketVersion: ticket.version,
            fields: Object.keys(dto.changes),
            hasBody: dto.body !== null,
          },
        });
        await changeFeed.record(tx, ctx, {
          type: 'draft.created',
          ticketId,
          data: { draft: dto },
          staffOnly: true,
        });
        return dto;
      });
    },

    /** GET /tickets/{id}/drafts: staff; oldest first. */
    async listForTicket(ctx: AuthedContext, ticketId: number, query: ListDraftsQuery) {
      assertStaff(ctx, 'draft.read', { type: 'ticket', id: ticketId });
      await tickets.getVisibleTicket(ctx, ticketId);
      return page(`t${ticketId}:${query.state ?? ''}`, query, ticketId);
    },

    /** GET /drafts: the staff queue (default state=pending), oldest first. */
    async queue(ctx: AuthedContext, query: ListDraftsQuery) {
      assertStaff(ctx, 'draft.read');
      const q = { ...query, state: query.state ?? 'pending' };
      return page(`q:${q.state}`, q);
    },

    /**
     * POST /drafts/{id}/approve: applies the reply and the changes in ONE transaction as the approver,
     * through the same code as POST /comments and PATCH /tickets/{id} (so an agent cannot approve what
     * they could not do themselves: 403, and nothing is applied). The audit events of the comment and the
     * ticket change carry `draftId` and `draftAuthorId`. A ticket changed since the draft → 409 DRAFT_STALE,
     * unless If-Match names its current version (the approver has looked at it as it is now).
     */
    async approve(
      ctx: AuthedContext,
      id: string,
      input: { body?: string } | undefined,
      expectedVersion?: ExpectedVersion,
    ): Promise<{ ticket: TicketDto; comment: CommentDto | null }> {
      assertStaff(ctx, 'draft.approve', { type: 'draft', id });
      return db.transaction(async (tx) => {
        const draft = await lockPending(tx, id);
        const current = await ticketsRepo.lockById(tx, draft.ticketId, 'update');
        if (current && !current.deletedAt) {
          if (expectedVersion !== undefined && !versionMatches(expectedVersion, current.version)) {
            throw new PreconditionFailedError(
              `Ticket #${draft.ticketId} is at version ${current.version}; If-Match named another.`,
            );
          }
          if (current.version !== draft.ticketVersion && expectedVersion === undefined) {
            throw new ConflictError(
              'DRAFT_STALE',
              `Ticket #${draft.ticketId} changed since this draft was written (version ${draft.ticketVersion}, now ${current.version}); review it and approve with If-Match: "${current.version}".`,
            );
          }
        }
        const metadata = { draftId: id, draftAuthorId: draft.authorId };
        const body = input?.body ?? draft.body;
        let comment: CommentDto | null = null;
        if (body !== null) {
          comment = await comments.createIn(
            tx,
            ctx,
            draft.ticketId,
            { body, visibility: draft.visibility },
            metadata,
          );
        }
        const proposed = draft.changes as DraftChanges;
        let ticket: TicketDto;
        if (Object.values(proposed).some((v) => v !== undefined)) {
          ticket = await tickets.patchIn(tx, ctx, draft.ticketId, proposed, { metadata });
        } else {
          ticket = tickets.toDto(await tickets.getVisibleTicket(ctx, draft.ticketId, tx), ctx.actor);
        }
        await drafts.decide(tx, id, { state: 'approved', decidedAt: clock.now(), decidedById: ctx.actor.id });
        await recordDecision(tx, ctx, id, 'draft.approved', {
          commentId: comment?.id ?? null,
          edited: input?.body !== undefined,
        });
        return { ticket, comment };
      });
    },

    /** POST /drafts/{id}/reject: staff; the draft stays, decided, with the reason. */
    async reject(ctx: AuthedContext, id: string, input: { reason?: string } | undefined): Promise<DraftDto> {
      assertStaff(ctx, 'draft.reject', { type: 'draft', id });
      return db.transaction(async (tx) => {
        const draft = await lockPending(tx, id);
        await tickets.getVisibleTicket(ctx, draft.ticketId, tx);
        await drafts.decide(tx, id, {
          state: 'rejected',
          decidedAt: clock.now(),
          decidedById: ctx.actor.id,
          reason: input?.reason ?? null,
        });
        return recordDecision(tx, ctx, id, 'draft.rejected', { reason: input?.reason ?? null });
      });
    },
  };
}

export type DraftService = ReturnType<typeof createDraftService>;
