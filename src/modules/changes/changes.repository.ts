import { and, eq, getTableColumns, gt, inArray, lt, type SQL, sql } from 'drizzle-orm';
import type { Executor } from '../../db/client.js';
import { compile, queryBuilder, runCompiled, sqlText } from '../../db/compiled.js';
import {
  type ChangeEventRow,
  changeEvents,
  changeFeedHorizon,
  changeStreamTokens,
  type NewAuditEvent,
  tickets,
  webhooks,
} from '../../db/schema/index.js';
import {
  type AuditInsertValues,
  auditInsertStatement,
  auditInsertValues,
} from '../audit/audit.repository.js';
import type { Actor } from '../auth/actor.js';

/**
 * A place in the feed: (transaction id, event id). Events are served in that order.
 *
 * Why (xid, id) and the snapshot horizon, not the id alone: ids are handed out when a row is inserted,
 * but rows become visible when their transaction commits, so id 7 can commit after id 8 has been read.
 * A reader that resumed "after 8" would never see 7 (the classic outbox gap). Every row stores its
 * writer's transaction id; a read serves only rows whose xid is below the oldest transaction of this
 * database still running (horizonXmin below), so every transaction below it has ended and can add nothing more. Any row
 * that appears later belongs to a transaction at or above that horizon, hence sorts after everything
 * already served: resuming from any cursor neither skips nor repeats.
 *
 * Why not a single sequencer (one lock or counter row taken by every writer until commit): it would
 * serialize every ticket, comment and upload write in the whole application. Here writers never wait for
 * each other; the price is that a long-running write transaction delays delivery (never loses it) until
 * it ends — bounded by the statement and idle-in-transaction timeouts.
 */
export interface Position {
  xid: string;
  id: number;
}

export const FEED_START: Position = { xid: '0', id: 0 };

/** Canonical decimal (no sign, no leading zero): such strings compare by length, then character by character. */
const CANONICAL = /^(0|[1-9][0-9]*)$/;

export function comparePositions(a: Position, b: Position): number {
  if (a.xid !== b.xid) {
    // Called for every stream on every live event: string comparison instead of two BigInt parses.
    if (CANONICAL.test(a.xid) && CANONICAL.test(b.xid)) {
      if (a.xid.length !== b.xid.length) return a.xid.length < b.xid.length ? -1 : 1;
      return a.xid < b.xid ? -1 : 1;
    }
    const ax = BigInt(a.xid);
    const bx = BigInt(b.xid);
    if (ax !== bx) return ax < bx ? -1 : 1;
  }
  return a.id === b.id ? 0 : a.id < b.id ? -1 : 1;
}

export function positionOf(row: Pick<ChangeEventRow, 'xid' | 'id'>): Position {
  return { xid: row.xid, id: row.id };
}

export interface FeedQuery {
  after: Position;
  types?: readonly string[];
  ticketId?: number;
  /** Requesters: only events of tickets they requested and never staff-only ones (pre-filter only). */
  requesterId?: string;
  limit: number;
}

export interface NewChangeEvent {
  type: string;
  ticketId: number | null;
  staffOnly: boolean;
  actorId: string | null;
  actorName: string | null;
  actorRole: ChangeEventRow['actorRole'];
  traceId: string | null;
  data: Record<string, unknown>;
}

/**
 * The oldest transaction of THIS database still running in the statement's snapshot (its xmax when none):
 * pg_snapshot_xmin() alone is cluster-wide, so one long write in another database on the same server
 * would hold back every delivery. A transaction is left out only when pg_stat_activity shows it running in
 * another database (it cannot write this table); one that ended meanwhile stays in, which is only ever
 * conservative. xid8 vs xid: the low 32 bits (running transactions lie well within one epoch of each other).
 */
export const FEED_HORIZON_SQL = `(WITH s AS (SELECT pg_current_snapshot() AS s)
    SELECT coalesce(
      (SELECT min(x) FROM s, pg_snapshot_xip(s.s) AS x
        WHERE NOT EXISTS (SELECT 1 FROM pg_stat_activity a
                           WHERE a.datid <> (SELECT oid FROM pg_database WHERE datname = current_database())
                             AND a.backend_xid::text::bigint = x::text::bigint % 4294967296)),
      (SELECT pg_snapshot_xmax(s) FROM s)))`;

const EVENT_COLUMNS = Object.entries(getTableColumns(changeEvents));
/** Every column of change_events under its property name (a raw statement's rows keyed as drizzle's). */
const EVENT_COLUMNS_SQL = sql.join(
  EVENT_COLUMNS.map(([key, column]) => sql`${column} AS ${sql.identifier(key)}`),
  sql`, `,
);

/** A raw row of EVENT_COLUMNS_SQL decoded as drizzle decodes a select of the table (bigint ids, dates, json). */
function eventRowOf(raw: Record<string, unknown>): ChangeEventRow {
  const row: Record<string, unknown> = {};
  for (const [key, column] of EVENT_COLUMNS) {
    const value = raw[key];
    row[key] = value === null || value === undefined ? null : column.mapFromDriverValue(value);
  }
  return row as ChangeEventRow;
}

type InsertEventParams = Omit<NewChangeEvent, 'data'> & { data: string };
interface InsertedEvent {
  id: number | string;
  xid: string;
  occurred_at: Date;
  requester_id: string | null;
  webhooks_wanted: boolean;
}

/** A change event as insert() wrote it. */
export type RecordedEventRow = ChangeEventRow & {
  /** Whether some active webhook wanted this type when it was written (see INSERT_EVENT). */
  webhooksWanted: boolean;
};

const param = <K extends keyof InsertEventParams>(name: K) => sql.placeholder(name);

const eventInsert = queryBuilder
  .insert(changeEvents)
  .values({
    type: param('type'),
    ticketId: param('ticketId'),
    staffOnly: param('staffOnly'),
    actorId: param('actorId'),
    actorName: param('actorName'),
    actorRole: param('actorRole'),
    traceId: param('traceId'),
    data: sql`${param('data')}::json`,
    // NULL without a ticket.
    requesterId: sql`(SELECT ${tickets.requesterId} FROM ${tickets} WHERE ${tickets.id} = ${param('ticketId')})`,
  })
  .returning({
    id: changeEvents.id,
    xid: changeEvents.xid,
    occurredAt: changeEvents.occurredAt,
    requesterId: changeEvents.requesterId,
    // The webhook subscriber's question (WebhookDelivery.onRecorded), asked by this statement: one round
    // trip less for every change. Same test as WebhooksRepository.anyActiveFor.
    webhooksWanted:
      sql<boolean>`EXISTS (SELECT 1 FROM ${webhooks} WHERE ${webhooks.active} AND ${webhooks.events} && ARRAY['*', ${param('type')}]::text[])`.as(
        'webhooks_wanted',
      ),
  });

const INSERT_EVENT = compile<InsertEventParams>(eventInsert);

/** The audit row's values, under their prefix in INSERT_EVENT_WITH_AUDIT. */
const AUDIT_PREFIX = 'audit_';
type PrefixedAuditValues = { [K in keyof AuditInsertValues as `audit_${K}`]: AuditInsertValues[K] };

/** A change event and its audit row in one statement: the same two rows, one round trip less. */
const INSERT_EVENT_WITH_AUDIT = compile<InsertEventParams & PrefixedAuditValues>({
  toSQL: () =>
    sqlText(sql`WITH audit_row AS (${auditInsertStatement(AUDIT_PREFIX).getSQL()}) ${eventInsert.getSQL()}`),
});

function prefixed(values: AuditInsertValues): PrefixedAuditValues {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(values)) out[`${AUDIT_PREFIX}${k}`] = v;
  return out as PrefixedAuditValues;
}

export interface LiveSession {
  sessionId: string;
  actor: Actor;
}

export function createChangesRepository() {
  const horizonXmin = sql.raw(FEED_HORIZON_SQL);

  return {
    /**
     * Of these sessions, those still live (not revoked, not expired) whose user is active, with that user:
     * one query however many streams ask (src/modules/changes/stream-sessions.ts batches them).
     */
    async liveSessions(ex: Executor, sessionIds: readonly string[]): Promise<LiveSession[]> {
      if (sessionIds.length === 0) return [];
      // One array parameter (not an IN list): the same statement text for any number of sessions.
      const { rows } = await ex.execute<{
        session_id: string;
        id: string;
        role: LiveSession['actor']['role'];
        name: string;
        email: string;
      }>(sql`SELECT s.id AS session_id, u.id, u.role, u.name, u.email
               FROM sessions s JOIN users u ON u.id = s.user_id
              WHERE s.id = ANY(${`{${sessionIds.join(',')}}`}::uuid[])
                AND s.revoked_at IS NULL AND s.expires_at > now() AND u.active`);
      return rows.map((r) => ({
        sessionId: r.session_id,
        actor: { id: r.id, role: r.role, name: r.name, email: r.email },
      }));
    },

    /**
     * One INSERT; the ticket's requester is copied in the same statement (no extra round trip). A compiled
     * statement (every write of the application runs it, and drizzle's query building was most of the
     * outbox's CPU), returning only what the database chose: the entity (`data`) does not travel back.
     * `audit`: the change's audit row, written by the same statement (INSERT_EVENT_WITH_AUDIT).
     */
    async insert(ex: Executor, event: NewChangeEvent, audit?: NewAuditEvent): Promise<RecordedEventRow> {
      const data = JSON.stringify(event.data);
      const [row] = audit
        ? await runCompiled<InsertedEvent, InsertEventParams & PrefixedAuditValues>(
            ex,
            INSERT_EVENT_WITH_AUDIT,
            { ...event, data, ...prefixed(auditInsertValues(audit)) },
          )
        : await runCompiled<InsertedEvent, InsertEventParams>(ex, INSERT_EVENT, { ...event, data });
      return {
        id: Number(row!.id),
        xid: row!.xid,
        occurredAt: row!.occurred_at,
        type: event.type,
        ticketId: event.ticketId,
        requesterId: row!.requester_id,
        staffOnly: event.staffOnly,
        actorId: event.actorId,
        actorName: event.actorName,
        actorRole: event.actorRole,
        traceId: event.traceId,
        // As stored: JSON values (a Date is its ISO string), not the caller's objects.
        data: JSON.parse(data),
        webhooksWanted: row!.webhooks_wanted,
      };
    },

    /** Events by id (for subscribers run after the writing transaction, see ChangesService.dispatch). */
    async findByIds(ex: Executor, ids: number[]): Promise<ChangeEventRow[]> {
      if (ids.length === 0) return [];
      return ex
        .select()
        .from(changeEvents)
        .where(inArray(changeEvents.id, ids))
        .orderBy(changeEvents.xid, changeEvents.id);
    },

    /**
     * Committed events after a position, in feed order, only below the snapshot horizon (see Position).
     * Also returns that horizon: when fewer than `limit` rows come back, every matching event before
     * (horizon, 0) has been read, so a reader may move its cursor there.
     *
     * One statement, so the rows and the horizon come from one snapshot even when no row matches. A horizon
     * read by a second statement could pass a transaction that was still running during the first (its rows
     * unseen) and ended in between: a reader moving its cursor there would skip that transaction's events.
     */
    async listAfter(ex: Executor, q: FeedQuery): Promise<{ rows: ChangeEventRow[]; horizon: Position }> {
      const where: SQL[] = [
        sql`(${changeEvents.xid}, ${changeEvents.id}) > (${q.after.xid}::xid8, ${q.after.id}::bigint)`,
        sql`${changeEvents.xid} < hz.h`,
      ];
      if (q.types?.length) where.push(inArray(changeEvents.type, [...q.types]));
      if (q.ticketId !== undefined) where.push(eq(changeEvents.ticketId, q.ticketId));
      if (q.requesterId !== undefined) {
        // Written out (not a parameter), so that even a generic plan sees the requester index's predicate.
        where.push(eq(changeEvents.requesterId, q.requesterId), sql`NOT ${changeEvents.staffOnly}`);
      }
      // The horizon is one row; the page is a LATERAL subquery on it (its own index order and LIMIT), left
      // joined so that the horizon comes back without any event too.
      const { rows } = await ex.execute<Record<string, unknown>>(sql`
        SELECT hz.h::text AS "feedHorizon", e.*
          FROM (SELECT ${horizonXmin} AS h) hz
          LEFT JOIN LATERAL (
            SELECT ${EVENT_COLUMNS_SQL} FROM ${changeEvents}
             WHERE ${and(...where)}
             ORDER BY ${changeEvents.xid}, ${changeEvents.id}
             LIMIT ${q.limit}) e ON true
         ORDER BY e."xid", e."id"`);
      const horizon = { xid: rows[0]!.feedHorizon as string, id: 0 };
      return { rows: rows[0]!.id === null ? [] : rows.map(eventRowOf), horizon };
    },

    /** The current end of the feed: everything before it is readable now, everything after is to come. */
    async head(ex: Executor): Promise<Position> {
      const { rows } = await ex.execute<{ h: string }>(sql`SELECT ${horizonXmin}::text AS h`);
      return { xid: rows[0]!.h, id: 0 };
    },

    /** The newest pruned position, or null when nothing was ever pruned. */
    async prunedUpTo(ex: Executor): Promise<Position | null> {
      const [row] = await ex
        .select({ xid: changeFeedHorizon.xid, id: changeFeedHorizon.eventId })
        .from(changeFeedHorizon)
        .where(eq(changeFeedHorizon.id, 1));
      return row ?? null;
    },

    /**
     * Deletes the events older than `before` among the oldest `batch` of the feed (feed order is the order
     * of writing, so that is where they are: no time index needed) and remembers the newest deleted position:
     * a cursor before it may have missed deleted events and gets 410, never a silent hole. Returns how many
     * went; 0 when the feed's oldest events are all still kept.
     */
    async prune(ex: Executor, before: Date, batch = 5000): Promise<number> {
      const { rows } = await ex.execute<{ n: number }>(sql`
        WITH head AS (
          SELECT ${changeEvents.id} AS id, ${changeEvents.xid} AS xid, ${changeEvents.occurredAt} AS occurred_at
          FROM ${changeEvents}
          WHERE ${changeEvents.xid} < ${horizonXmin}
          ORDER BY ${changeEvents.xid}, ${changeEvents.id}
          LIMIT ${batch}
        ), doomed AS (
          SELECT id, xid FROM head WHERE occurred_at < ${before.toISOString()}::timestamptz
        ), last AS (
          SELECT xid, id FROM doomed ORDER BY xid DESC, id DESC LIMIT 1
        ), mark AS (
          INSERT INTO ${changeFeedHorizon} (id, xid, event_id, pruned_at)
          SELECT 1, xid, id, now() FROM last
          ON CONFLICT (id) DO UPDATE SET xid = EXCLUDED.xid, event_id = EXCLUDED.event_id, pruned_at = now()
            WHERE (${changeFeedHorizon}.xid, ${changeFeedHorizon.eventId}) < (EXCLUDED.xid, EXCLUDED.event_id)
        ), gone AS (
          DELETE FROM ${changeEvents} WHERE ${changeEvents.id} IN (SELECT id FROM doomed) RETURNING 1
        )
        SELECT count(*)::int AS n FROM gone`);
      return rows[0]?.n ?? 0;
    },

    async insertStreamToken(
      ex: Executor,
      token: { tokenHash: string; userId: string; expiresAt: Date; accessTokenSealed: string },
    ): Promise<void> {
      await ex.insert(changeStreamTokens).values(token);
    },

    /** Takes a token out (single use): at most one caller, on any instance, gets the row. */
    async consumeStreamToken(ex: Executor, tokenHash: string, now: Date) {
      const [row] = await ex
        .delete(changeStreamTokens)
        .where(and(eq(changeStreamTokens.tokenHash, tokenHash), gt(changeStreamTokens.expiresAt, now)))
        .returning();
      return row ?? null;
    },

    async deleteExpiredStreamTokens(ex: Executor, now: Date): Promise<number> {
      const rows = await ex
        .delete(changeStreamTokens)
        .where(lt(changeStreamTokens.expiresAt, now))
        .returning({ h: changeStreamTokens.tokenHash });
      return rows.length;
    },
  };
}

export type ChangesRepository = ReturnType<typeof createChangesRepository>;
