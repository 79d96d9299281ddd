import type { Database, Executor } from '../../db/client.js';
import type { Clock } from '../../lib/clock.js';
import { type CursorCodec, InvalidCursorError } from '../../lib/cursor.js';
import { ConflictError, ValidationError } from '../../lib/errors.js';
import { keysetPage } from '../../lib/keyset.js';
import type { AuditService } from '../audit/audit.service.js';
import type { Actor, AuthedContext } from '../auth/actor.js';
import {
  AccessDeniedError,
  assertCan,
  assertCanPatchTicket,
  canViewTicket,
  isStaff,
  ruleFor,
} from '../auth/permissions.js';
import type { ChangeRecorder } from '../changes/changes.service.js';
import type { Remember } from '../idempotency/idempotency.service.js';
import { ticketSlaOf } from '../sla/sla.schemas.js';
import { NO_SLA, type SlaService } from '../sla/sla.service.js';
import type { UsersRepository } from '../users/users.repository.js';
import { createNewTicketSla } from './new-ticket-sla.js';
import { createTicketGate, type ExpectedVersion, ticketNotFound } from './ticket-gate.js';
import { transitionsFor } from './ticket-lifecycle.js';
import { planTicketPatch, ticketAuditAction } from './ticket-patch.js';
import { TICKET_PRIORITIES } from './ticket-values.js';
import type {
  KeysetAfter,
  SortKey,
  TicketFilters,
  TicketsRepository,
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
  users: Pick<UsersRepository, 'findById'>;
  audit: AuditService;
  changes: ChangeRecorder;
  cursor: CursorCodec;
  clock: Clock;
  /**
   * Keeps the ticket's SLA clock in step with its changes (same transaction). A new ticket's clock is
   * planned by new-ticket-sla.ts with the same rules and written by its INSERT; without `sla`, none is.
   */
  sla?: Pick<SlaService, 'onTicketChanged'>;
}

/** Plans of a new ticket's SLA redone at most this often when policies change under them. */
const MAX_SLA_REPLANS = 5;

export function createTicketService(deps: TicketServiceDeps) {
  const { db, tickets, users, audit, changes: changeFeed, cursor, clock, sla = NO_SLA } = deps;
  const gate = createTicketGate(tickets);
  const newTicketSla = createNewTicketSla({ track: sla !== NO_SLA, load: tickets.slaPolicySnapshot });

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
      sla: ticketSlaOf(view),
      mergedIntoId: view.mergedIntoId,
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
          ? typeof v === 'string' && (TICKET_PRIORITIES as readonly string[]).includes(v)
          : typeof v === 'string' &&
            (!Number.isNaN(Date.parse(v)) || (sort.endsWith('slaDueAt') && v === 'infinity'));
    if (!valid) throw new InvalidCursorError();
    return { value: v as string | number, id: c.i };
  }

  /**
   * PATCH /tickets/{id} inside the caller's transaction (drafts and bulk changes reuse it so their
   * changes follow the same rules). Runs under SELECT … FOR UPDATE so concurrent PATCHes serialize.
   * Order of answers: the ticket gate (404 invisible → 409 deleted → 412 stale expectedVersion → 409
   * TICKET_CLOSED) → 403 for a field the role may not set → 422 bad assignee/team → 409/403 for the
   * status change. Every rule is judged on the ticket as it was before the request; what changes is
   * planTicketPatch's. Every change bumps version and writes one audit event (see ticketAuditAction),
   * with `opts.metadata` added to the audit metadata.
   */
  async function patchIn(
    tx: Executor,
    ctx: AuthedContext,
    id: number,
    input: PatchTicketInput,
    opts: { expectedVersion?: ExpectedVersion; metadata?: Record<string, unknown> } = {},
  ): Promise<TicketDto> {
    const { actor } = ctx;
    const row = await gate.lockTicketForWrite(ctx, tx, id, { expectedVersion: opts.expectedVersion });
    assertCanPatchTicket(actor, row, input);
    const assignsOthers = ruleFor(actor, 'ticket.assign') === 'any';
    if (assignsOthers && input.assigneeId != null && input.assigneeId !== row.assigneeId) {
      await assertActiveStaff(tx, input.assigneeId, 'body.assigneeId');
    }
    if (input.teamId && input.teamId !== row.teamId && !(await tickets.teamExists(tx, input.teamId))) {
      throw new ValidationError([{ path: 'body.teamId', message: 'no such team' }]);
    }

    const plan = planTicketPatch(actor, row, input, clock.now());
    if (!plan.ok) {
      if (plan.code === 'FORBIDDEN') {
        throw new AccessDeniedError('ticket.changeStatus', { type: 'ticket', id }, plan.detail);
      }
      throw new ConflictError(plan.code, plan.detail);
    }
    if (Object.keys(plan.changes).length > 0) {
      const now = clock.now();
      await tickets.update(tx, id, plan.set, now);
      await sla.onTicketChanged(tx, id, row, now);
    }
    const dto = toDto((await tickets.findView(tx, id))!, actor);
    if (Object.keys(plan.changes).length > 0) {
      const action = ticketAuditAction(plan.changes);
      await changeFeed.record(tx, ctx, {
        type: action,
        ticketId: id,
        data: { ticket: dto },
        audit: audit.row(ctx, {
          action,
          entityType: 'ticket',
          entityId: id,
          changes: plan.changes,
          metadata: { ticketId: String(id), version: row.version + 1, ...opts.metadata },
        }),
      });
    }
    return dto;
  }

  /**
   * A soft delete or restore just written: its change event with its audit row (the `deletedAt` change,
   * the new version), carrying the ticket as it now reads; returns that ticket.
   */
  async function recordDeletedAt(
    tx: Executor,
    ctx: AuthedContext,
    id: number,
    type: 'ticket.deleted' | 'ticket.restored',
    deletedAt: [Date | null, Date | null],
    version: number,
  ): Promise<TicketDto> {
    const ticket = toDto((await tickets.findView(tx, id))!, ctx.actor);
    await changeFeed.record(tx, ctx, {
      type,
      ticketId: id,
      data: { ticket },
      audit: audit.row(ctx, {
        action: type,
        entityType: 'ticket',
        entityId: id,
        changes: { deletedAt },
        metadata: { ticketId: String(id), version },
      }),
    });
    return ticket;
  }

  /** The permission and reference checks of a new ticket; resolves whose ticket it is. */
  async function authorizeCreate(
    ex: Executor,
    ctx: AuthedContext,
    input: CreateTicketInput,
  ): Promise<string> {
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
      const requester = await users.findById(ex, input.requesterId);
      if (!requester?.active || requester.role !== 'requester') {
        throw new ValidationError([{ path: 'body.requesterId', message: 'must be an active requester' }]);
      }
      requesterId = requester.id;
    }
    if (input.teamId && !(await tickets.teamExists(ex, input.teamId))) {
      throw new ValidationError([{ path: 'body.teamId', message: 'no such team' }]);
    }
    return requesterId;
  }

  async function insertIn(
    tx: Executor,
    ctx: AuthedContext,
    input: CreateTicketInput,
    requesterId: string,
    metadata: Record<string, unknown>,
  ): Promise<TicketDto> {
    const now = clock.now();
    const values = {
      title: input.title,
      description: input.description,
      priority: input.priority ?? 'normal',
      type: input.type ?? 'question',
      tags: input.tags ?? [],
      teamId: input.teamId ?? null,
      requesterId,
      createdAt: now,
      updatedAt: now,
    };
    // The SLA clock is planned before the INSERT, which writes it with the row and reads the view back;
    // should the policies have changed since they were read, nothing is inserted and the plan is redone.
    let view: TicketView | undefined;
    for (let attempt = 0; !view; attempt++) {
      if (attempt === MAX_SLA_REPLANS) throw new Error('SLA policies kept changing during a ticket create');
      const plan = await newTicketSla.plan(tx, values, attempt > 0);
      view = await tickets.insertNew(tx, values, plan.state, plan.fingerprint);
    }
    const id = view.id;
    const auditRow = audit.row(ctx, {
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
      metadata: { ticketId: String(id), ...metadata },
    });
    const dto = toDto(view, ctx.actor);
    await changeFeed.record(tx, ctx, {
      type: 'ticket.created',
      ticketId: id,
      data: { ticket: dto },
      audit: auditRow,
    });
    return dto;
  }

  return {
    toDto,
    getVisibleTicket,
    lockTicketForWrite: gate.lockTicketForWrite,
    checkTicketWritable: gate.checkTicketWritable,

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
        slaBreached: query.slaBreached,
      };
      if (actor.role === 'requester') {
        if (query.requesterId && query.requesterId !== actor.id) return { data: [], nextCursor: null };
        filters.requesterId = actor.id;
      }
      const rows = await tickets.list(db, filters, { key, desc }, after, query.limit + 1);
      const { page, nextCursor } = keysetPage(rows, query.limit, (last) =>
        cursor.encode({ s: sort, v: last.sortValue, i: last.id }),
      );
      return { data: page.map((r) => toDto(r, actor)), nextCursor };
    },

    /**
     * POST /tickets. Requesters open tickets for themselves and may set priority/type; agents and admins
     * may open one for an active requester and set tags/team. Audited as ticket.created in the same
     * transaction; `remember` (an Idempotency-Key's store) keeps the result in that transaction too.
     */
    async create(
      ctx: AuthedContext,
      input: CreateTicketInput,
      remember: Remember<TicketDto> = async () => {},
    ): Promise<TicketDto> {
      const requesterId = await authorizeCreate(db, ctx, input);
      return db.transaction(async (tx) => {
        const dto = await insertIn(tx, ctx, input, requesterId, {});
        await remember(tx, dto);
        return dto;
      });
    },

    /**
     * POST /tickets' rules inside the caller's transaction (tickets by email are created with the mail's
     * other effects, all or nothing). `metadata` is added to the ticket.created audit event.
     */
    async createIn(
      tx: Executor,
      ctx: AuthedContext,
      input: CreateTicketInput,
      metadata: Record<string, unknown> = {},
    ): Promise<TicketDto> {
      const requesterId = await authorizeCreate(tx, ctx, input);
      return insertIn(tx, ctx, input, requesterId, metadata);
    },

    /** PATCH /tickets/{id} in its own transaction (rules: patchIn). */
    async patch(
      ctx: AuthedContext,
      id: number,
      input: PatchTicketInput,
      expectedVersion?: ExpectedVersion,
    ): Promise<TicketDto> {
      return db.transaction((tx) => patchIn(tx, ctx, id, input, { expectedVersion }));
    },

    patchIn,

    /** DELETE /tickets/{id}: admin soft delete (ticket.deleted). The ticket vanishes from every list and read. */
    async remove(ctx: AuthedContext, id: number): Promise<void> {
      assertCan(ctx.actor, 'ticket.delete', { type: 'ticket', id });
      await db.transaction(async (tx) => {
        const row = await gate.lockTicketForWrite(ctx, tx, id, { whenClosed: false });
        const now = clock.now();
        await tickets.update(tx, id, { deletedAt: now }, now);
        await recordDeletedAt(tx, ctx, id, 'ticket.deleted', [null, now], row.version + 1);
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
        return recordDeletedAt(tx, ctx, id, 'ticket.restored', [row.deletedAt, null], row.version + 1);
      });
    },
  };
}

export type TicketService = ReturnType<typeof createTicketService>;
