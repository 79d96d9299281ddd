import type { FastifyBaseLogger } from 'fastify';
import type { Database, Executor } from '../../db/client.js';
import type { ChangeEventRow, NewAuditEvent } from '../../db/schema/index.js';
import type { Clock } from '../../lib/clock.js';
import { AppError, ValidationError } from '../../lib/errors.js';
import type { Actor, RequestContext } from '../auth/actor.js';
import { canSeeInternal, canViewTicket, isStaff, ruleFor } from '../auth/permissions.js';
import { ChangeAnnouncer } from './change-announcer.js';
import {
  type ChangesRepository,
  comparePositions,
  FEED_START,
  type Position,
  positionOf,
} from './changes.repository.js';
import { newStreamToken, seal, streamTokenHash, unseal } from './stream-tokens.js';

export const STREAM_TOKEN_TTL_SECONDS = 60;

export const CHANGE_TYPES = [
  'ticket.created',
  'ticket.updated',
  'ticket.status_changed',
  'ticket.assigned',
  'ticket.deleted',
  'ticket.restored',
  'ticket.merged',
  'comment.created',
  'attachment.created',
  'ticket.sla_breached',
  'draft.created',
  'draft.approved',
  'draft.rejected',
] as const;
export type ChangeType = (typeof CHANGE_TYPES)[number];

/** A recorded change as subscribers (mail, webhooks) and the feed see it: the staff view. */
export interface ChangeEvent {
  /** The opaque cursor of this event (SSE `id:`, `after=`). */
  id: string;
  seq: number;
  type: ChangeType;
  occurredAt: Date;
  ticketId: number | null;
  actor: { id: string; name: string; role: Actor['role'] } | null;
  staffOnly: boolean;
  /** The requester of the ticket when the event was written. */
  requesterId: string | null;
  data: Record<string, unknown>;
  traceId: string | null;
  /**
   * Set on an event just recorded (record()): whether some active webhook wanted its type, asked by the
   * inserting statement. Unset on events read back from the feed.
   */
  webhooksWanted?: boolean;
}

/** What a caller receives: the contract's ChangeEvent. */
export interface ChangeEventDto {
  id: string;
  type: ChangeType;
  occurredAt: Date;
  ticketId: number | null;
  actor: { id: string; name: string; role: Actor['role'] } | null;
  data: Record<string, unknown>;
}

export type ChangeHandler = (ex: Executor, event: ChangeEvent) => Promise<void>;
/** A subscriber's way of taking a whole batch of events at once (see dispatch). */
export type ChangeBatchHandler = (ex: Executor, events: ChangeEvent[]) => Promise<void>;

export interface ChangeFilters {
  types?: readonly string[];
  ticketId?: number;
}

export class CursorExpiredError extends AppError {
  constructor() {
    super(
      410,
      'CURSOR_EXPIRED',
      'Cursor expired',
      'Events after this cursor are past retention and were deleted; start again without a cursor (and reload what you show).',
    );
  }
}

const CURSOR = /^([0-9]{1,20})-([0-9]{1,18})$/;

export function encodeCursor(p: Position): string {
  return `${p.xid}-${p.id}`;
}

/** Parses a cursor; anything else → 422 naming the parameter it came in. */
export function decodeCursor(token: string, path = 'querystring.after'): Position {
  const m = CURSOR.exec(token);
  if (!m || BigInt(m[1]!) > 2n ** 63n - 1n) {
    throw new ValidationError(
      [{ path, message: 'not a change cursor (use an event id or nextCursor you received)' }],
      'The cursor is malformed.',
      'INVALID_CURSOR',
    );
  }
  return { xid: m[1]!, id: Number(m[2]) };
}

export function toChangeEvent(row: ChangeEventRow): ChangeEvent {
  return {
    id: encodeCursor(positionOf(row)),
    seq: row.id,
    type: row.type as ChangeType,
    occurredAt: row.occurredAt,
    ticketId: row.ticketId,
    actor:
      row.actorId && row.actorRole
        ? { id: row.actorId, name: row.actorName ?? '', role: row.actorRole }
        : null,
    staffOnly: row.staffOnly,
    requesterId: row.requesterId,
    data: row.data,
    traceId: row.traceId,
  };
}

/**
 * Whether this caller may see an event: the same permission functions as GET. The ticket is judged as the
 * event shows it (its requester, and deletedAt for a deleted one: admins only, as GET); staff-only events
 * and internal notes (and their attachments) never reach a requester; an event that names no ticket is for
 * staff only.
 */
export function visibleTo(actor: Pick<Actor, 'id' | 'role'>, event: ChangeEvent): boolean {
  if (event.staffOnly && !canSeeInternal(actor)) return false;
  if (event.ticketId === null) {
    if (!isStaff(actor.role)) return false;
  } else {
    const ticket = event.data.ticket as { deletedAt?: string | null } | undefined;
    const gate = {
      requesterId: event.requesterId ?? '',
      deletedAt: ticket?.deletedAt ? new Date(ticket.deletedAt) : null,
    };
    if (!canViewTicket(actor, gate)) return false;
  }
  const comment = event.data.comment as { visibility?: string } | undefined;
  return !(comment?.visibility === 'internal' && !canSeeInternal(actor));
}

/**
 * Callers with the same key see the same events: visibleTo depends on the role, and on the caller's id only
 * where the role may read its own tickets alone. Live streams of one audience share one rendering per batch.
 */
export function audienceOf(actor: Pick<Actor, 'id' | 'role'>): string {
  return ruleFor(actor, 'ticket.read') === 'any' ? actor.role : `${actor.role}:${actor.id}`;
}

/** The event as callers receive it (the same entity for everyone who may see it: visibility decides whether). */
export function toDto(event: ChangeEvent): ChangeEventDto {
  return {
    id: event.id,
    type: event.type,
    occurredAt: event.occurredAt,
    ticketId: event.ticketId,
    actor: event.actor,
    data: event.data,
  };
}

/** What this caller may see of an event, or null. */
export function viewFor(actor: Pick<Actor, 'id' | 'role'>, event: ChangeEvent): ChangeEventDto | null {
  return visibleTo(actor, event) ? toDto(event) : null;
}

export function matchesFilters(event: Pick<ChangeEvent, 'type' | 'ticketId'>, f: ChangeFilters): boolean {
  if (f.types?.length && !f.types.includes(event.type)) return false;
  return f.ticketId === undefined || event.ticketId === f.ticketId;
}

/** The entity as staff see it: allowedTransitions depends on the reader, so it is never stored. */
function staffView(data: Record<string, unknown>): Record<string, unknown> {
  const ticket = data.ticket;
  if (!ticket || typeof ticket !== 'object' || !('allowedTransitions' in ticket)) return data;
  const { allowedTransitions: _, ...rest } = ticket as Record<string, unknown>;
  return { ...data, ticket: rest };
}

export interface ChangesServiceDeps {
  db: Database;
  changes: ChangesRepository;
  clock: Clock;
  retentionDays: number;
  log: FastifyBaseLogger;
}

export function createChangesService({ db, changes, clock, retentionDays, log }: ChangesServiceDeps) {
  const handlers: Array<{ one: ChangeHandler; many?: ChangeBatchHandler }> = [];
  const announcer = new ChangeAnnouncer(db, (err) =>
    log.warn({ err }, 'change announcement failed; open streams get it by their fallback poll'),
  );

  async function assertNotExpired(after: Position) {
    const pruned = await changes.prunedUpTo(db);
    if (pruned && comparePositions(after, pruned) < 0) throw new CursorExpiredError();
  }

  return {
    /**
     * Writes a change event on the executor it is given — the transaction of the change, beside its audit
     * event, so both commit or roll back together — then runs the in-transaction subscribers (which enqueue
     * their jobs on the same transaction), and has the live streams woken a moment later (change-announcer.ts:
     * the hub looks until the transaction has ended). `data` is the entity as staff see it.
     */
    async record(
      ex: Executor,
      ctx: RequestContext,
      e: {
        type: ChangeType;
        ticketId: number | null;
        data: Record<string, unknown>;
        staffOnly?: boolean;
        /** The change's audit row (AuditService.row), written by the same statement as the event. */
        audit?: NewAuditEvent;
      },
    ): Promise<ChangeEvent> {
      const row = await changes.insert(
        ex,
        {
          type: e.type,
          ticketId: e.ticketId,
          staffOnly: e.staffOnly ?? false,
          actorId: ctx.actor?.id ?? null,
          actorName: ctx.actor?.name ?? null,
          actorRole: ctx.actor?.role ?? null,
          traceId: ctx.traceId,
          data: staffView(e.data),
        },
        e.audit,
      );
      const event: ChangeEvent = { ...toChangeEvent(row), webhooksWanted: row.webhooksWanted };
      for (const handler of handlers) await handler.one(ex, event);
      announcer.announce(row.xid);
      return event;
    },

    /** Wakes the live streams after events written without record() (a breach pass), once committed. */
    announce(xid?: string): void {
      announcer.announce(xid);
    },

    /**
     * Runs the subscribers of events written without record() (a breach pass writes a batch's events in
     * its own statement), on `ex` (a job's transaction). Events
     * already pruned are skipped. Subscribers are idempotent per event id (mail keys its Message-IDs on
     * it, webhook fan-out its job key), so a retried dispatch sends nothing twice. A subscriber that has
     * a batch handler gets all the events in one call (one job, one lookup for thousands of events).
     */
    async dispatch(ex: Executor, ids: number[]): Promise<number> {
      const events = (await changes.findByIds(ex, ids)).map(toChangeEvent);
      if (events.length === 0) return 0;
      for (const handler of handlers) {
        if (handler.many) await handler.many(ex, events);
        else for (const event of events) await handler.one(ex, event);
      }
      return events.length;
    },

    /**
     * Subscribes to every recorded change, inside the writing transaction (a throw rolls the change back).
     * `many`, when given, takes the batches of dispatch() instead of `handler` once per event; it must do
     * for each event what `handler` does.
     */
    onRecorded(handler: ChangeHandler, many?: ChangeBatchHandler): void {
      handlers.push({ one: handler, many });
    },

    /**
     * One page of the feed for this caller. Scans at most a few batches so a caller who may see little
     * of a busy feed still gets an answer quickly; `nextCursor` is always where to resume (past what was
     * scanned), `more` says whether events are already waiting after it.
     */
    async list(
      actor: Pick<Actor, 'id' | 'role'>,
      q: ChangeFilters & { after?: string; from?: Position; limit: number },
    ): Promise<{ data: ChangeEventDto[]; nextCursor: string; more: boolean; position: Position }> {
      const given = q.from ?? (q.after !== undefined ? decodeCursor(q.after) : null);
      // Without a cursor: from the oldest event still kept.
      let cursor = given ?? (await changes.prunedUpTo(db)) ?? FEED_START;
      if (given) await assertNotExpired(given);
      const data: ChangeEventDto[] = [];
      const batch = Math.min(500, q.limit + 1);
      let more = false;
      for (let round = 0; ; round++) {
        const { rows, horizon } = await changes.listAfter(db, {
          after: cursor,
          types: q.types,
          ticketId: q.ticketId,
          requesterId: actor.role === 'requester' ? actor.id : undefined,
          limit: batch,
        });
        for (const row of rows) {
          if (data.length === q.limit) {
            more = true;
            break;
          }
          cursor = positionOf(row);
          const view = viewFor(actor, toChangeEvent(row));
          if (view) data.push(view);
        }
        if (more) break;
        if (rows.length < batch) {
          // Everything before the horizon has been read: resume from there.
          if (comparePositions(horizon, cursor) > 0) cursor = horizon;
          break;
        }
        if (round === 4) {
          more = true;
          break;
        }
      }
      return { data, nextCursor: encodeCursor(cursor), more, position: cursor };
    },

    /** Where a stream without a cursor starts: after everything committed so far. */
    head: () => changes.head(db),

    decodeCursor,
    assertNotExpired,

    /**
     * A single-use, 60-second token for GET /changes/stream?token= (EventSource cannot send headers). It
     * carries the caller's access token (sealed): the stream it opens lives exactly as long as that token
     * would be accepted.
     */
    async createStreamToken(actor: Pick<Actor, 'id'>, accessToken: string) {
      const token = newStreamToken();
      await changes.insertStreamToken(db, {
        tokenHash: streamTokenHash(token),
        userId: actor.id,
        expiresAt: new Date(clock.now().getTime() + STREAM_TOKEN_TTL_SECONDS * 1000),
        accessTokenSealed: seal(token, accessToken),
      });
      return { token, expiresIn: STREAM_TOKEN_TTL_SECONDS } as const;
    },

    /** Uses a stream token up: the access token it carries, or null when unknown, used or expired. */
    async redeemStreamToken(token: string): Promise<string | null> {
      const row = await changes.consumeStreamToken(db, streamTokenHash(token), clock.now());
      return row ? unseal(token, row.accessTokenSealed) : null;
    },

    /** Deletes events past retention (in batches) and expired stream tokens; returns how many events went. */
    async prune(): Promise<number> {
      const now = clock.now();
      const before = new Date(now.getTime() - retentionDays * 86_400_000);
      let total = 0;
      for (;;) {
        const n = await changes.prune(db, before);
        total += n;
        if (n === 0) break;
      }
      await changes.deleteExpiredStreamTokens(db, now);
      return total;
    },
  };
}

export type ChangesService = ReturnType<typeof createChangesService>;
/** The narrow part other services depend on. */
export type ChangeRecorder = Pick<ChangesService, 'record'>;
