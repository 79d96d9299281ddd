import type { Database, Executor } from '../../db/client.js';
import { type TicketStatus, ticketPriority } from '../../db/schema/index.js';
import type { Clock } from '../../lib/clock.js';
import { type CursorCodec, InvalidCursorError } from '../../lib/cursor.js';
import { ConflictError, NotFoundError, PreconditionFailedError, ValidationError } from '../../lib/errors.js';
import type { AuditService } from '../audit/audit.service.js';
import type { Actor, AuthedContext } from '../auth/actor.js';
import { AccessDeniedError, assertCan, canViewTicket, isStaff } from '../auth/permissions.js';
import type { ChangeRecorder } from '../changes/changes.service.js';
import type {
  IdempotencyRequest,
  IdempotencyService,
  StoredResponse,
} from '../idempotency/idempotency.service.js';
import type { UsersRepository } from '../users/users.repository.js';
import {
  checkTransition,
  isTerminal,
  statusAfterAssignment,
  statusSideEffects,
  transitionsFor,
} from './ticket-lifecycle.js';
import type {
  KeysetAfter,
  SortKey,
  TicketFilters,
  TicketsRepository,
  TicketUpdate,
  TicketView,
} from './tickets.repository.js';
import type {
  CreateTicketInput,
  ListTicketsQuery,
  PatchTicketInput,
  TicketDto,
  TicketSort,
} from './tickets.schemas.js';

export interface TicketServiceDeps {
  db: Database;
  tickets: TicketsRepository;
  users: UsersRepository;
  audit: AuditService;
  changes: ChangeRecorder;
  idempotency: IdempotencyService;
  cursor: CursorCodec;
  clock: Clock;
}

export function ticketNotFound(id: number): NotFoundError {
  return new NotFoundError(
    'TICKET_NOT_FOUND',
    'Ticket not found',
    `Ticket #${id} does not exist or is not visible to you.`,
  );
}

/** The ETag of a ticket version. */
export function etagOf(version: number): string {
  return `"${version}"`;
}

/** Does an If-Match header name this version? Accepts "3", W/"3", 3 and * (any). */
export function ifMatchSatisfied(header: string, version: number): boolean {
  return header
    .split(',')
    .map((t) =>
      t
        .trim()
        .replace(/^W\//, '')
        .replace(/^"(.*)"$/, '$1'),
    )
    .some((t) => t === '*' || t === String(version));
}

type Changes = Record<string, [unknown, unknown]>;

/**
 * The audit action of a ticket change. One event per changed ticket per request: the most specific
 * action wins (status_changed > assigned > updated) and `changes` holds every field that changed.
 */
export function ticketAuditAction(
  changes: Changes,
): 'ticket.status_changed' | 'ticket.assigned' | 'ticket.updated' {
  if ('status' in changes) return 'ticket.status_changed';
  if ('assigneeId' in changes) return 'ticket.assigned';
  return 'ticket.updated';
}

const same = (a: unknown, b: unknown) =>
  a instanceof Date && b instanceof Date
    ? a.getTime() === b.getTime()
    : Array.isArray(a) && Array.isArray(b)
      ? a.length === b.length && a.every((v, i) => v === b[i])
      : a === b;

export function createTicketService(deps: TicketServiceDeps) {
  const { db, tickets, users, audit, changes: changeFeed, idempotency, cursor, clock } = deps;

  function toDto(view: TicketView, actor: Pick<Actor, 'id' | 'role'>): TicketDto {
    return {
      id: view.id,
      title: view.title,
      description: view.description,
      status: view.status,
      priority: view.priority,
      type: view.type,
      tags: view.tags,
      requester: { id: view.requesterId, name: view.requesterName, email: view.requesterEmail },
      assignee: view.assigneeId ? { id: view.assigneeId, name: view.assigneeName ?? '' } : null,
      teamId: view.teamId,
      version: view.version,
      createdAt: view.createdAt,
      updatedAt: view.updatedAt,
      firstResponseAt: view.firstResponseAt,
      solvedAt: view.solvedAt,
      closedAt: view.closedAt,
      deletedAt: view.deletedAt,
      allowedTransitions: view.deletedAt ? [] : transitionsFor(actor, view),
    };
  }

  /**
   * The ticket if this actor may see it, else 404 TICKET_NOT_FOUND (never 403: a requester probing
   * another's ticket learns nothing). Soft-deleted tickets are visible to admins only.
   */
  async function getVisibleTicket(ctx: AuthedContext, id: number, ex: Executor = db): Promise<TicketView> {
    const view = await tickets.findView(ex, id);
    if (!view || !canViewTicket(ctx.actor, view)) throw ticketNotFound(id);
    return view;
  }

  /** Locks a ticket for a change by this actor: 404 when invisible; deleted → 404 (admins: 409 TICKET_DELETED). */
  async function lockForChange(ctx: AuthedContext, ex: Executor, id: number) {
    const row = await tickets.lockById(ex, id);
    if (!row || !canViewTicket(ctx.actor, row)) throw ticketNotFound(id);
    if (row.deletedAt) {
      throw new ConflictError('TICKET_DELETED', `Ticket #${id} is deleted; restore it before changing it.`);
    }
    return row;
  }

  async function assertActiveStaff(ex: Executor, userId: string, path: string) {
    const user = await users.findById(ex, userId);
    if (!user?.active || !isStaff(user.role)) {
      throw new ValidationError([{ path, message: 'must be an active agent or admin' }]);
    }
  }

  function sortOf(query: ListTicketsQuery): { sort: string; key: SortKey; desc: boolean } {
    // The contract's default order holds for searches too; ranking is asked for with sort=relevance.
    const s: TicketSort = query.sort ?? '-updatedAt';
    if (s === 'relevance') {
      if (!query.q) {
        throw new ValidationError([
          { path: 'querystring.sort', message: 'sort=relevance needs a search (q)' },
        ]);
      }
      return { sort: 'rank', key: 'rank', desc: true };
    }
    const desc = s.startsWith('-');
    return { sort: s, key: (desc ? s.slice(1) : s) as SortKey, desc };
  }

  function decodeAfter(token: string, sort: string): KeysetAfter {
    const c = cursor.decode(token);
    if (c.s !== sort || typeof c.i !== 'number' || !Number.isInteger(c.i)) {
      throw new InvalidCursorError('The cursor belongs to another sort order; start again without it.');
    }
    const v = c.v;
    const valid =
      sort === 'rank'
        ? typeof v === 'number' && Number.isFinite(v)
        : sort.endsWith('priority')
          ? typeof v === 'string' && (ticketPriority.enumValues as readonly string[]).includes(v)
          : typeof v === 'string' && !Number.isNaN(Date.parse(v));
    if (!valid) throw new InvalidCursorError();
    return { value: v as string | number, id: c.i };
  }

  return {
    toDto,
    getVisibleTicket,

    /** GET /tickets/{id}: the ticket with the caller's allowedTransitions. */
    async get(ctx: AuthedContext, id: number): Promise<TicketDto> {
      return toDto(await getVisibleTicket(ctx, id), ctx.actor);
    },

    /**
     * GET /tickets: a keyset page. Requesters only ever see their own tickets (the filter is forced);
     * deleted tickets are never listed. The cursor is HMAC-signed and bound to the sort order.
     */
    async list(ctx: AuthedContext, query: ListTicketsQuery) {
      const { actor } = ctx;
      const { sort, key, desc } = sortOf(query);
      const after = query.cursor ? decodeAfter(query.cursor, sort) : null;
      const filters: TicketFilters = {
        status: query.status,
        priority: query.priority,
        type: query.type,
        assigneeId:
          query.assigneeId === 'me' ? actor.id : query.assigneeId === 'none' ? null : query.assigneeId,
        requesterId: query.requesterId,
        teamId: query.teamId,
        tag: query.tag,
        q: query.q,
        createdAfter: query.createdAfter ? new Date(query.createdAfter) : undefined,
        createdBefore: query.createdBefore ? new Date(query.createdBefore) : undefined,
        updatedAfter: query.updatedAfter ? new Date(query.updatedAfter) : undefined,
      };
      if (actor.role === 'requester') {
        if (query.requesterId && query.requesterId !== actor.id) return { data: [], nextCursor: null };
        filters.requesterId = actor.id;
      }
      const rows = await tickets.list(db, filters, { key, desc }, after, query.limit + 1);
      const page = rows.slice(0, query.limit);
      const last = page.at(-1);
      const nextCursor =
        rows.length > query.limit && last ? cursor.encode({ s: sort, v: last.sortValue, i: last.id }) : null;
      return { data: page.map((r) => toDto(r, actor)), nextCursor };
    },

    /**
     * POST /tickets. Requesters open tickets for themselves and may set priority/type; agents and admins
     * may open one for an active requester and set tags/team. Audited as ticket.created in the same
     * transaction; with an Idempotency-Key the 201 response is stored in that transaction too.
     */
    async create(
      ctx: AuthedContext,
      input: CreateTicketInput,
      idem: IdempotencyRequest | null,
    ): Promise<{ ticket: TicketDto; replay: null } | { ticket: null; replay: StoredResponse }> {
      const { actor } = ctx;
      assertCan(actor, 'ticket.create', { type: 'ticket' });
      let requesterId = actor.id;
      if (actor.role === 'requester') {
        if (input.requesterId !== undefined && input.requesterId !== actor.id) {
          throw new AccessDeniedError(
            'ticket.create',
            { type: 'ticket' },
            'Requesters open tickets for themselves only.',
          );
        }
        if (input.tags !== undefined || input.teamId !== undefined) {
          throw new AccessDeniedError(
            'ticket.classify',
            { type: 'ticket' },
            'Requesters may set priority and type only; tags and team are set by agents.',
          );
        }
      } else if (input.requesterId !== undefined && input.requesterId !== actor.id) {
        const requester = await users.findById(db, input.requesterId);
        if (!requester?.active || requester.role !== 'requester') {
          throw new ValidationError([{ path: 'body.requesterId', message: 'must be an active requester' }]);
        }
        requesterId = requester.id;
      }
      if (input.teamId && !(await tickets.teamExists(db, input.teamId))) {
        throw new ValidationError([{ path: 'body.teamId', message: 'no such team' }]);
      }

      const outcome = await idempotency.run(idem, (complete) =>
        db.transaction(async (tx) => {
          const now = clock.now();
          const id = await tickets.insert(tx, {
            title: input.title,
            description: input.description,
            priority: input.priority ?? 'normal',
            type: input.type ?? 'question',
            tags: input.tags ?? [],
            teamId: input.teamId ?? null,
            requesterId,
            createdAt: now,
            updatedAt: now,
          });
          const view = (await tickets.findView(tx, id))!;
          await audit.record(tx, ctx, {
            action: 'ticket.created',
            entityType: 'ticket',
            entityId: id,
            changes: {
              title: [null, view.title],
              status: [null, view.status],
              priority: [null, view.priority],
              type: [null, view.type],
              tags: [null, view.tags],
              teamId: [null, view.teamId],
              requesterId: [null, view.requesterId],
            },
            metadata: { ticketId: String(id) },
          });
          const dto = toDto(view, actor);
          await changeFeed.record(tx, ctx, { type: 'ticket.created', ticketId: id, data: { ticket: dto } });
          await complete(tx, {
            status: 201,
            body: JSON.stringify(dto),
            headers: { location: `/api/v1/tickets/${id}`, etag: etagOf(dto.version) },
          });
          return dto;
        }),
      );
      return outcome.replay
        ? { ticket: null, replay: outcome.replay }
        : { ticket: outcome.result!, replay: null };
    },

    /**
     * PATCH /tickets/{id}. Runs under SELECT … FOR UPDATE so concurrent PATCHes serialize (none is lost).
     * Order of answers: 404 invisible → 409 deleted → 412 stale If-Match → 409 TICKET_CLOSED on a
     * terminal ticket → 403 for a field the role may not set → 422 bad assignee/team → 409/403 for the
     * status change. Assignment applies before the status (so "assign + solve" works; assigning a new
     * ticket opens it). Every change bumps version and writes one audit event (see ticketAuditAction).
     */
    async patch(
      ctx: AuthedContext,
      id: number,
      input: PatchTicketInput,
      ifMatch?: string,
    ): Promise<TicketDto> {
      const { actor } = ctx;
      return db.transaction(async (tx) => {
        const row = await lockForChange(ctx, tx, id);
        if (ifMatch !== undefined && !ifMatchSatisfied(ifMatch, row.version)) {
          throw new PreconditionFailedError(
            `Ticket #${id} is at version ${row.version}; If-Match was ${ifMatch}. Reload it and apply your change again.`,
          );
        }
        if (isTerminal(row.status)) {
          throw new ConflictError(
            'TICKET_CLOSED',
            `Ticket #${id} is ${row.status}; it cannot change any more.`,
          );
        }
        const entity = { type: 'ticket', id };

        // Field-level permissions: a field the role may not set is refused, never ignored.
        if (input.title !== undefined || input.description !== undefined) {
          assertCan(actor, 'ticket.editContent', entity);
          if (actor.role === 'requester' && row.status !== 'new') {
            throw new AccessDeniedError(
              'ticket.editContent',
              entity,
              'Requesters may edit the title and description only while the ticket is new.',
            );
          }
        }
        for (const field of ['priority', 'type', 'tags', 'teamId'] as const) {
          if (input[field] !== undefined) {
            assertCan(actor, 'ticket.classify', entity);
            break;
          }
        }
        if (input.assigneeId !== undefined) {
          const rule = assertCan(actor, 'ticket.assign', entity);
          if (rule === 'self') {
            const ok =
              input.assigneeId === actor.id ||
              (input.assigneeId === null && row.assigneeId === actor.id) ||
              (input.assigneeId === null && row.assigneeId === null);
            if (!ok) {
              throw new AccessDeniedError(
                'ticket.assign',
                entity,
                'Agents may take a ticket (assign it to themselves) or unassign themselves only.',
              );
            }
          } else if (input.assigneeId !== null && input.assigneeId !== row.assigneeId) {
            await assertActiveStaff(tx, input.assigneeId, 'body.assigneeId');
          }
        }
        if (input.teamId && input.teamId !== row.teamId && !(await tickets.teamExists(tx, input.teamId))) {
          throw new ValidationError([{ path: 'body.teamId', message: 'no such team' }]);
        }

        const set: TicketUpdate = {};
        for (const field of ['title', 'description', 'priority', 'type', 'tags', 'teamId'] as const) {
          const value = input[field];
          if (value !== undefined && !same(value, row[field]))
            (set as Record<string, unknown>)[field] = value;
        }

        // Assignment first, then the status change, judged on the state after the assignment.
        let status: TicketStatus = row.status;
        let assigneeId = row.assigneeId;
        if (input.assigneeId !== undefined && input.assigneeId !== row.assigneeId) {
          assigneeId = input.assigneeId;
          set.assigneeId = assigneeId;
          status = statusAfterAssignment(status, assigneeId);
          if (status === 'solved' && assigneeId === null && input.status === undefined) {
            throw new ConflictError(
              'INVALID_TRANSITION',
              'A solved ticket must keep an assignee; reopen it before unassigning.',
            );
          }
        }
        if (input.status !== undefined && input.status !== status) {
          const check = checkTransition(actor, { ...row, status, assigneeId }, input.status);
          if (!check.ok) {
            if (check.code === 'FORBIDDEN')
              throw new AccessDeniedError('ticket.changeStatus', entity, check.detail);
            throw new ConflictError(check.code, check.detail);
          }
          status = input.status;
        } else if (status === 'solved' && assigneeId === null) {
          throw new ConflictError(
            'INVALID_TRANSITION',
            'A solved ticket must keep an assignee; reopen it before unassigning.',
          );
        }
        if (status !== row.status) {
          set.status = status;
          const effects = statusSideEffects(row, status, clock.now());
          if (!same(effects.solvedAt, row.solvedAt)) set.solvedAt = effects.solvedAt;
          if (!same(effects.closedAt, row.closedAt)) set.closedAt = effects.closedAt;
        }

        const changes: Changes = {};
        for (const [field, value] of Object.entries(set)) {
          changes[field] = [row[field as keyof typeof row], value];
        }
        if (Object.keys(changes).length > 0) {
          await tickets.update(tx, id, set, clock.now());
          await audit.record(tx, ctx, {
            action: ticketAuditAction(changes),
            entityType: 'ticket',
            entityId: id,
            changes,
            metadata: { ticketId: String(id), version: row.version + 1 },
          });
        }
        const dto = toDto((await tickets.findView(tx, id))!, actor);
        if (Object.keys(changes).length > 0) {
          await changeFeed.record(tx, ctx, {
            type: ticketAuditAction(changes),
            ticketId: id,
            data: { ticket: dto },
          });
        }
        return dto;
      });
    },

    /** DELETE /tickets/{id}: admin soft delete (ticket.deleted). The ticket vanishes from every list and read. */
    async remove(ctx: AuthedContext, id: number): Promise<void> {
      assertCan(ctx.actor, 'ticket.delete', { type: 'ticket', id });
      await db.transaction(async (tx) => {
        const row = await lockForChange(ctx, tx, id);
        const now = clock.now();
        await tickets.update(tx, id, { deletedAt: now }, now);
        await audit.record(tx, ctx, {
          action: 'ticket.deleted',
          entityType: 'ticket',
          entityId: id,
          changes: { deletedAt: [null, now] },
          metadata: { ticketId: String(id), version: row.version + 1 },
        });
        const ticket = toDto((await tickets.findView(tx, id))!, ctx.actor);
        await changeFeed.record(tx, ctx, { type: 'ticket.deleted', ticketId: id, data: { ticket } });
      });
    },

    /** POST /tickets/{id}/restore: admin undoes a soft delete (ticket.restored). Restoring a live ticket → 409. */
    async restore(ctx: AuthedContext, id: number): Promise<TicketDto> {
      assertCan(ctx.actor, 'ticket.restore', { type: 'ticket', id });
      return db.transaction(async (tx) => {
        const row = await tickets.lockById(tx, id);
        if (!row) throw ticketNotFound(id);
        if (!row.deletedAt) throw new ConflictError('TICKET_NOT_DELETED', `Ticket #${id} is not deleted.`);
        await tickets.update(tx, id, { deletedAt: null }, clock.now());
        await audit.record(tx, ctx, {
          action: 'ticket.restored',
          entityType: 'ticket',
          entityId: id,
          changes: { deletedAt: [row.deletedAt, null] },
          metadata: { ticketId: String(id), version: row.version + 1 },
        });
        const ticket = toDto((await tickets.findView(tx, id))!, ctx.actor);
        await changeFeed.record(tx, ctx, { type: 'ticket.restored', ticketId: id, data: { ticket } });
        return ticket;
      });
    },
  };
}

export type TicketService = ReturnType<typeof createTicketService>;
