import { and, arrayContains, eq, getTableColumns, gt, inArray, isNull, lt, type SQL, sql } from 'drizzle-orm';
import { alias } from 'drizzle-orm/pg-core';
import type { Executor } from '../../db/client.js';
import {
  type CompiledQuery,
  compile,
  pgClientOf,
  queryBuilder,
  runCompiled,
  sqlText,
} from '../../db/compiled.js';
import {
  type NewTicketRow,
  SEARCH_CONFIG,
  type SlaTargets,
  slaPolicies,
  type TicketPriority,
  type TicketRow,
  type TicketStatus,
  type TicketType,
  teams,
  ticketSla,
  tickets,
  users,
} from '../../db/schema/index.js';
import { fastTimestampTypes } from '../../db/timestamptz.js';
import type { BusinessHours } from '../../lib/business-time.js';
import type { TicketPatchSet } from './ticket-patch.js';

/**
 * Bounds of a ticket's comment search document, measured on its text form (about its binary size; at most
 * ~1.4× for the densest text). 192 KiB keeps it, with title and description, well under the 1 MiB tsvector
 * limit, and bounds the GIN entries every ticket update rewrites; a new comment's text form is estimated at 3×
 * its bytes. When full, it keeps the newest 48 KiB of comment text (hundreds of ordinary replies).
 */
export const COMMENT_SEARCH_MAX_TEXT = 192 * 1024;
export const COMMENT_SEARCH_KEEP_BYTES = 48 * 1024;

/** SLA bookkeeping kept on the row but not shown (the SLA service reads it on its own). */
type SlaClockColumns = 'slaResolutionStartedAt' | 'slaResolutionConsumedMs' | 'slaNextDueAt';

/** A ticket row without its search vectors, with the people it names and its SLA breach marks. */
export type TicketView = Omit<TicketRow, 'search' | 'commentSearch' | SlaClockColumns> & {
  slaFirstResponseBreachedAt: Date | null;
  slaResolutionBreachedAt: Date | null;
  requesterName: string;
  requesterEmail: string;
  assigneeName: string | null;
};

/** A ticket's own columns (without the search vectors). */
export type TicketState = Omit<TicketRow, 'search' | 'commentSearch'>;

const { search: _search, commentSearch: _commentSearch, ...stateColumns } = getTableColumns(tickets);

/** What a write may set: a planned ticket change, plus the columns comments, deletion and merges move. */
export type TicketUpdate = TicketPatchSet &
  Partial<Pick<TicketRow, 'firstResponseAt' | 'deletedAt' | 'mergedIntoId'>>;

export interface TicketFilters {
  status?: TicketStatus[];
  priority?: TicketPriority[];
  type?: TicketType[];
  /** A user id, or null for unassigned. */
  assigneeId?: string | null;
  requesterId?: string;
  teamId?: string;
  tag?: string;
  q?: string;
  createdAfter?: Date;
  createdBefore?: Date;
  updatedAfter?: Date;
  /** true: a target was missed; false: none was (so far). */
  slaBreached?: boolean;
}

export type SortKey = 'updatedAt' | 'createdAt' | 'priority' | 'rank' | 'slaDueAt';

export interface TicketOrder {
  key: SortKey;
  desc: boolean;
}

/** The keyset position after which the next page starts: the last row's sort value and id. */
export interface KeysetAfter {
  value: string | number;
  id: number;
}

const assignee = alias(users, 'assignee');

const viewColumns = {
  id: tickets.id,
  title: tickets.title,
  description: tickets.description,
  status: tickets.status,
  priority: tickets.priority,
  type: tickets.type,
  tags: tickets.tags,
  requesterId: tickets.requesterId,
  assigneeId: tickets.assigneeId,
  teamId: tickets.teamId,
  version: tickets.version,
  createdAt: tickets.createdAt,
  updatedAt: tickets.updatedAt,
  firstResponseAt: tickets.firstResponseAt,
  solvedAt: tickets.solvedAt,
  closedAt: tickets.closedAt,
  deletedAt: tickets.deletedAt,
  slaPolicyId: tickets.slaPolicyId,
  slaFirstResponseDueAt: tickets.slaFirstResponseDueAt,
  slaResolutionDueAt: tickets.slaResolutionDueAt,
  // Breach marks live in the narrow ticket_sla row (one primary-key probe each).
  slaFirstResponseBreachedAt:
    sql<Date | null>`(SELECT ${ticketSla.firstResponseBreachedAt} FROM ${ticketSla} WHERE ${ticketSla.ticketId} = ${tickets.id})`.mapWith(
      ticketSla.firstResponseBreachedAt,
    ),
  slaResolutionBreachedAt:
    sql<Date | null>`(SELECT ${ticketSla.resolutionBreachedAt} FROM ${ticketSla} WHERE ${ticketSla.ticketId} = ${tickets.id})`.mapWith(
      ticketSla.resolutionBreachedAt,
    ),
  mergedIntoId: tickets.mergedIntoId,
  requesterName: users.name,
  requesterEmail: users.email,
  assigneeName: assignee.name,
};

/**
 * LIMIT written into the SQL text instead of bound: with a bound LIMIT the cached generic plan always looks
 * costlier than a custom one, so PostgreSQL re-plans every prepared list (planning 0.45 ms vs executing
 * 0.23 ms). The value is a validated page size, so the distinct texts stay few.
 */
function literalLimit(n: number): number {
  if (!Number.isSafeInteger(n) || n < 1 || n > 1000) throw new RangeError(`invalid page size ${n}`);
  return sql.raw(String(n)) as unknown as number; // drizzle inlines an SQL object given as the limit
}

/** Up to this many matches, a searched page is sorted from the matches rather than walked in index order. */
const FEW_MATCHES = 2000;

/** viewColumns, each selected `AS "<key>"`: node-postgres then returns rows shaped as TicketView. */
const aliasedViewColumns = Object.fromEntries(
  Object.entries(viewColumns).map(([key, column]) => [key, sql`${column}`.as(key)]),
) as { [K in keyof typeof viewColumns]: SQL.Aliased<unknown> };

const ISO_MS = 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"';

function viewFrom() {
  return queryBuilder
    .select(aliasedViewColumns)
    .from(tickets)
    .innerJoin(users, eq(users.id, tickets.requesterId))
    .leftJoin(assignee, eq(assignee.id, tickets.assigneeId));
}

/** GET /tickets/{id} and every write's read-back: one ticket with its people. */
const viewByIdQuery = compile<{ id: number }>(
  viewFrom()
    .where(eq(tickets.id, sql.placeholder('id')))
    .limit(literalLimit(1)),
);

/** Fields a new ticket is inserted with (the rest take their column defaults). */
export type NewTicket = Pick<
  NewTicketRow,
  | 'title'
  | 'description'
  | 'priority'
  | 'type'
  | 'tags'
  | 'teamId'
  | 'requesterId'
  | 'createdAt'
  | 'updatedAt'
>;

const insertQuery = compile<Required<NewTicket>>(
  queryBuilder
    .insert(tickets)
    .values({
      title: sql.placeholder('title'),
      description: sql.placeholder('description'),
      priority: sql.placeholder('priority'),
      type: sql.placeholder('type'),
      tags: sql.placeholder('tags'),
      teamId: sql.placeholder('teamId'),
      requesterId: sql.placeholder('requesterId'),
      createdAt: sql.placeholder('createdAt'),
      updatedAt: sql.placeholder('updatedAt'),
    })
    .returning({ id: tickets.id }),
);

/**
 * Which SLA policies exist, as one short text: the md5 of every policy's id and row version (xmin; any
 * INSERT or UPDATE of a policy gives its row a new one, a DELETE removes it). Computed in the statement
 * that loads the policies and again in a new ticket's INSERT, so a ticket is never planned with policies
 * that changed meanwhile (on any instance).
 */
const POLICY_FINGERPRINT = sql`(SELECT md5(coalesce(string_agg(p.id::text || ':' || p.xmin::text, ',' ORDER BY p.id), '')) FROM ${slaPolicies} p)`;

/** The fields of a policy a new ticket's SLA is planned with, in matching order. */
export interface SlaPolicySnapshot {
  fingerprint: string;
  policies: Array<{
    id: string;
    appliesToTeamId: string | null;
    appliesToType: TicketType | null;
    targets: SlaTargets;
    businessHours: BusinessHours | null;
  }>;
}

const policySnapshotQuery = {
  text: sqlText(sql`
    SELECT f.fp, p.id, p.applies_to_team_id, p.applies_to_type, p.targets, p.business_hours
      FROM (SELECT ${POLICY_FINGERPRINT} AS fp) f
      LEFT JOIN ${slaPolicies} p ON true
     ORDER BY p.position, p.created_at, p.id`).sql,
};

/** The SLA clock a new ticket starts with, planned before its INSERT (see insertNew). */
export interface NewTicketSlaState {
  slaPolicyId: string | null;
  slaFirstResponseDueAt: Date | null;
  slaResolutionDueAt: Date | null;
  slaResolutionStartedAt: Date | null;
  slaResolutionConsumedMs: number;
  /** null: no unmet due time (stored as 'infinity'). */
  slaNextDueAt: Date | null;
  /** Set: the ticket gets its ticket_sla row (the breach job's queue) in the same statement. */
  slaBreachCheckAt: Date | null;
}

type InsertNewValues = Required<NewTicket> &
  Omit<NewTicketSlaState, 'slaNextDueAt' | 'slaBreachCheckAt'> & {
    slaNextDueAt: Date | null;
    slaBreachCheckAt: Date | null;
    policies: string;
  };

const ph = (name: keyof InsertNewValues) => sql.placeholder(name);

/**
 * A new ticket in one statement: the row with its SLA clock already planned (no second UPDATE of the fresh
 * row, which would move every one of its index entries again), its ticket_sla row when it has a due time to
 * watch, and its view (requester's name and email) read back. Inserts nothing when the policies'
 * fingerprint is no longer `policies`: the caller then plans again with the current ones.
 */
const insertNewQuery = compile<InsertNewValues>({
  toSQL: () =>
    sqlText(sql`
    WITH t AS (
      INSERT INTO ${tickets} (title, description, priority, type, tags, requester_id, team_id, created_at,
          updated_at, sla_policy_id, sla_first_response_due_at, sla_resolution_due_at,
          sla_resolution_started_at, sla_resolution_consumed_ms, sla_next_due_at)
      SELECT ${ph('title')}::text, ${ph('description')}::text, ${ph('priority')}::ticket_priority,
             ${ph('type')}::ticket_type, ${ph('tags')}::text[], ${ph('requesterId')}::uuid, ${ph('teamId')}::uuid,
             ${ph('createdAt')}::timestamptz, ${ph('updatedAt')}::timestamptz, ${ph('slaPolicyId')}::uuid,
             ${ph('slaFirstResponseDueAt')}::timestamptz, ${ph('slaResolutionDueAt')}::timestamptz,
             ${ph('slaResolutionStartedAt')}::timestamptz, ${ph('slaResolutionConsumedMs')}::bigint,
             coalesce(${ph('slaNextDueAt')}::timestamptz, 'infinity')
       WHERE ${POLICY_FINGERPRINT} = ${ph('policies')}::text
      RETURNING id, title, description, status, priority, type, tags, requester_id, assignee_id, team_id,
                version, created_at, updated_at, first_response_at, solved_at, closed_at, deleted_at,
                sla_policy_id, sla_first_response_due_at, sla_resolution_due_at, merged_into_id
    ), s AS (
      INSERT INTO ${ticketSla} (ticket_id, breach_check_at)
      SELECT t.id, ${ph('slaBreachCheckAt')}::timestamptz FROM t
       WHERE ${ph('slaBreachCheckAt')}::timestamptz IS NOT NULL
    )
    SELECT t.id AS "id", t.title AS "title", t.description AS "description", t.status AS "status",
           t.priority AS "priority", t.type AS "type", t.tags AS "tags", t.requester_id AS "requesterId",
           t.assignee_id AS "assigneeId", t.team_id AS "teamId", t.version AS "version",
           t.created_at AS "createdAt", t.updated_at AS "updatedAt", t.first_response_at AS "firstResponseAt",
           t.solved_at AS "solvedAt", t.closed_at AS "closedAt", t.deleted_at AS "deletedAt",
           t.sla_policy_id AS "slaPolicyId", t.sla_first_response_due_at AS "slaFirstResponseDueAt",
           t.sla_resolution_due_at AS "slaResolutionDueAt",
           NULL::timestamptz AS "slaFirstResponseBreachedAt", NULL::timestamptz AS "slaResolutionBreachedAt",
           t.merged_into_id AS "mergedIntoId", u.name AS "requesterName", u.email AS "requesterEmail",
           NULL::text AS "assigneeName"
      FROM t JOIN ${users} u ON u.id = t.requester_id`),
});

/**
 * The list shapes nearly every request asks for: newest activity first (the default sort), live tickets,
 * optionally one status (the agent's queue) and/or one requester (what a requester sees), with or without
 * a keyset cursor. Other filters and sorts go through the query builder in list().
 */
interface HotListShape {
  status: boolean;
  requester: boolean;
  after: boolean;
  limit: number;
}
type HotListValues = { status?: string; requesterId?: string; afterValue?: string; afterId?: number };

function hotListShape(
  filters: TicketFilters,
  order: TicketOrder,
  after: KeysetAfter | null,
  limit: number,
): HotListShape | null {
  if (order.key !== 'updatedAt' || !order.desc) return null;
  for (const key in filters) {
    const value = filters[key as keyof TicketFilters];
    if (value === undefined || key === 'requesterId') continue;
    if (key === 'status' && (value as TicketStatus[]).length <= 1) continue;
    return null;
  }
  return {
    status: filters.status?.length === 1,
    requester: filters.requesterId !== undefined,
    after: after !== null,
    limit,
  };
}

const hotLists = new Map<string, CompiledQuery<HotListValues>>();

function hotListQuery(shape: HotListShape): CompiledQuery<HotListValues> {
  const key = `${+shape.status}${+shape.requester}${+shape.after}:${shape.limit}`;
  let query = hotLists.get(key);
  if (!query) {
    const where: SQL[] = [isNull(tickets.deletedAt)];
    if (shape.status) where.push(eq(tickets.status, sql.placeholder('status')));
    if (shape.requester) where.push(eq(tickets.requesterId, sql.placeholder('requesterId')));
    if (shape.after) {
      where.push(
        sql`(${tickets.updatedAt}, ${tickets.id}) < (${sql.placeholder('afterValue')}::timestamptz, ${sql.placeholder('afterId')})`,
      );
    }
    query = compile(
      queryBuilder
        .select({
          ...aliasedViewColumns,
          sortValue:
            sql<string>`to_char(${tickets.updatedAt} AT TIME ZONE 'UTC', ${sql.raw(`'${ISO_MS}'`)})`.as(
              'sortValue',
            ),
        })
        .from(tickets)
        .innerJoin(users, eq(users.id, tickets.requesterId))
        .leftJoin(assignee, eq(assignee.id, tickets.assigneeId))
        .where(and(...where))
        .orderBy(sql`${tickets.updatedAt} DESC`, sql`${tickets.id} DESC`)
        .limit(literalLimit(shape.limit)),
    );
    hotLists.set(key, query);
  }
  return query;
}

/**
 * runCompiled for the hot reads (a ticket, a list page): their rows carry seven timestamps each, parsed with
 * the positional timestamptz parser instead of pg's regular-expression one (src/db/timestamptz.ts).
 */
async function readCompiled<R, P extends Record<string, unknown>>(
  ex: Executor,
  query: CompiledQuery<P>,
  values: P,
): Promise<R[]> {
  const result = await pgClientOf(ex).query({
    text: query.text,
    values: query.bind(values),
    types: fastTimestampTypes,
  });
  return result.rows as R[];
}

const tsQuery = (q: string) => sql`websearch_to_tsquery(${SEARCH_CONFIG}::regconfig, ${q})`;

/**
 * `compiled: false` sends every query through drizzle's builder (the equivalence test compares both).
 */
export function createTicketsRepository(opts: { compiled?: boolean } = {}) {
  const compiled = opts.compiled ?? true;
  function viewQuery(ex: Executor) {
    return ex
      .select(viewColumns)
      .from(tickets)
      .innerJoin(users, eq(users.id, tickets.requesterId))
      .leftJoin(assignee, eq(assignee.id, tickets.assigneeId));
  }

  return {
    async insert(ex: Executor, values: NewTicket): Promise<number> {
      if (!compiled) {
        const [row] = await ex.insert(tickets).values(values).returning({ id: tickets.id });
        return row!.id;
      }
      const [row] = await runCompiled<{ id: number }, Required<NewTicket>>(ex, insertQuery, {
        ...values,
        priority: values.priority ?? 'normal',
        type: values.type ?? 'question',
        tags: values.tags ?? [],
        teamId: values.teamId ?? null,
        createdAt: values.createdAt ?? new Date(),
        updatedAt: values.updatedAt ?? new Date(),
      });
      return row!.id;
    },

    /**
     * A new ticket with its planned SLA clock, in one statement (insertNewQuery); its view, or undefined when
     * the SLA policies changed since `policies` was taken (nothing was inserted: plan again and retry).
     */
    async insertNew(
      ex: Executor,
      values: Required<NewTicket>,
      sla: NewTicketSlaState,
      policies: string,
    ): Promise<TicketView | undefined> {
      const [row] = await runCompiled<TicketView, InsertNewValues>(ex, insertNewQuery, {
        ...values,
        ...sla,
        policies,
      });
      return row;
    },

    /** The SLA policies in matching order, with their fingerprint (one statement: one snapshot). */
    async slaPolicySnapshot(ex: Executor): Promise<SlaPolicySnapshot> {
      const { rows } = await pgClientOf(ex).query<{
        fp: string;
        id: string | null;
        applies_to_team_id: string | null;
        applies_to_type: TicketType | null;
        targets: SlaTargets;
        business_hours: BusinessHours | null;
      }>(policySnapshotQuery);
      return {
        fingerprint: rows[0]!.fp,
        policies: rows
          .filter((r) => r.id !== null)
          .map((r) => ({
            id: r.id!,
            appliesToTeamId: r.applies_to_team_id,
            appliesToType: r.applies_to_type,
            targets: r.targets,
            businessHours: r.business_hours,
          })),
      };
    },

    /** The ticket with requester and assignee names; soft-deleted ones included (callers decide visibility). */
    async findView(ex: Executor, id: number): Promise<TicketView | undefined> {
      if (!compiled) {
        const [row] = await viewQuery(ex).where(eq(tickets.id, id)).limit(1);
        return row;
      }
      const [row] = await readCompiled<TicketView, { id: number }>(ex, viewByIdQuery, { id });
      return row;
    },

    /** Several tickets' views at once (soft-deleted included), e.g. for events about many tickets. */
    async findViews(ex: Executor, ids: number[]): Promise<TicketView[]> {
      if (ids.length === 0) return [];
      // One array parameter: a batch of a thousand ids is planned like one.
      return viewQuery(ex).where(sql`${tickets.id} = ANY(${sql.param(ids)}::int[])`);
    },

    /**
     * Locks the ticket row for the rest of the transaction (SELECT … FOR UPDATE): concurrent changes of
     * one ticket serialize here, so none is lost.
     */
    /**
     * The ticket's row, locked for the rest of the transaction: FOR UPDATE (writers of the ticket
     * serialize), FOR SHARE (a concurrent change of the ticket waits, other sharers do not), or no lock.
     */
    async lockById(
      ex: Executor,
      id: number,
      mode: 'update' | 'share' | 'none' = 'update',
    ): Promise<TicketState | undefined> {
      const query = ex.select(stateColumns).from(tickets).where(eq(tickets.id, id));
      const [row] = await (mode === 'none' ? query : query.for(mode)).limit(1);
      return row;
    },

    /** Applies the change, bumps version and updated_at. */
    async update(ex: Executor, id: number, set: TicketUpdate, now: Date): Promise<void> {
      await ex
        .update(tickets)
        .set({ ...set, updatedAt: now, version: sql`${tickets.version} + 1` })
        .where(eq(tickets.id, id));
    },

    /**
     * A public comment's text joins the ticket's search document (weight C); call it after inserting the
     * comment, never for internal notes. The document is bounded so a long thread stays under PostgreSQL's
     * 1 MiB tsvector limit: while it is small the new text is appended; once it would pass
     * COMMENT_SEARCH_MAX_TEXT it is rebuilt from the newest COMMENT_SEARCH_KEEP_BYTES of public comment
     * text (always at least the newest comment), so the thread is found by its recent words.
     */
    async addPublicCommentText(ex: Executor, id: number, body: string): Promise<void> {
      await ex.execute(sql`
        UPDATE tickets SET comment_search = CASE
          WHEN octet_length(comment_search::text) + 3 * octet_length(${body}::text) <= ${COMMENT_SEARCH_MAX_TEXT}
            THEN comment_search || to_tsvector(${SEARCH_CONFIG}::regconfig, ${body}::text)
          ELSE coalesce((
            SELECT to_tsvector(${SEARCH_CONFIG}::regconfig, string_agg(body, E'\n' ORDER BY created_at, cid))
            FROM (
              SELECT body, created_at, id AS cid,
                     row_number() OVER newest AS rn,
                     sum(octet_length(body)) OVER newest AS upto
              FROM comments
              WHERE ticket_id = ${id} AND visibility = 'public'
              WINDOW newest AS (ORDER BY created_at DESC, id DESC)
            ) recent
            WHERE rn = 1 OR upto <= ${COMMENT_SEARCH_KEEP_BYTES}
          ), ''::tsvector)
        END
        WHERE id = ${id}`);
    },

    /**
     * Moves every comment and attachment of `sourceId` to `targetId`, and the source's public-comment search
     * text with them. Returns how many of each moved.
     */
    async moveConversation(
      ex: Executor,
      sourceId: number,
      targetId: number,
    ): Promise<{ comments: number; attachments: number }> {
      const c = await ex.execute(
        sql`UPDATE comments SET ticket_id = ${targetId} WHERE ticket_id = ${sourceId}`,
      );
      const a = await ex.execute(
        sql`UPDATE attachments SET ticket_id = ${targetId} WHERE ticket_id = ${sourceId}`,
      );
      await ex.execute(sql`UPDATE tickets t SET comment_search = t.comment_search || s.comment_search
        FROM tickets s WHERE t.id = ${targetId} AND s.id = ${sourceId}`);
      await ex.update(tickets).set({ commentSearch: sql`''::tsvector` }).where(eq(tickets.id, sourceId));
      return { comments: c.rowCount ?? 0, attachments: a.rowCount ?? 0 };
    },

    async teamExists(ex: Executor, id: string): Promise<boolean> {
      const [row] = await ex.select({ id: teams.id }).from(teams).where(eq(teams.id, id)).limit(1);
      return row !== undefined;
    },

    /**
     * One keyset page of live (not deleted) tickets. Every sort is (key, id) in one direction so the
     * partial (key, id) indexes drive it; `after` is the last row of the previous page.
     */
    async list(
      ex: Executor,
      filters: TicketFilters,
      order: TicketOrder,
      after: KeysetAfter | null,
      limit: number,
    ): Promise<Array<TicketView & { sortValue: string | number }>> {
      const hot = compiled ? hotListShape(filters, order, after, limit) : null;
      if (hot) {
        return readCompiled(ex, hotListQuery(hot), {
          status: filters.status?.[0],
          requesterId: filters.requesterId,
          afterValue: after ? String(after.value) : undefined,
          afterId: after?.id,
        });
      }
      const where: SQL[] = [isNull(tickets.deletedAt)];
      if (filters.status?.length)
        where.push(
          filters.status.length === 1
            ? eq(tickets.status, filters.status[0]!)
            : inArray(tickets.status, filters.status),
        );
      if (filters.priority?.length) where.push(inArray(tickets.priority, filters.priority));
      if (filters.type?.length) where.push(inArray(tickets.type, filters.type));
      if (filters.assigneeId === null) where.push(isNull(tickets.assigneeId));
      else if (filters.assigneeId !== undefined) where.push(eq(tickets.assigneeId, filters.assigneeId));
      if (filters.requesterId) where.push(eq(tickets.requesterId, filters.requesterId));
      if (filters.teamId) where.push(eq(tickets.teamId, filters.teamId));
      if (filters.tag) where.push(arrayContains(tickets.tags, [filters.tag]));
      if (filters.q) where.push(sql`${tickets.search} @@ ${tsQuery(filters.q)}`);
      if (filters.createdAfter) where.push(gt(tickets.createdAt, filters.createdAfter));
      if (filters.createdBefore) where.push(lt(tickets.createdAt, filters.createdBefore));
      if (filters.updatedAfter) where.push(gt(tickets.updatedAt, filters.updatedAfter));
      const breached = sql`EXISTS (SELECT 1 FROM ${ticketSla} WHERE ${ticketSla.ticketId} = ${tickets.id} AND (${ticketSla.firstResponseBreachedAt} IS NOT NULL OR ${ticketSla.resolutionBreachedAt} IS NOT NULL))`;

      // "Due next, not yet missed": walking tickets_sla_due_idx would first step over every breached ticket
      // (their missed due times sort first). An unbreached ticket's earliest unmet due time is also its
      // earliest unmarked one, which ticket_sla keeps (breach_check_at) in ticket_sla_unbreached_due_idx, an
      // index of unbreached rows only: the finite part walks it; tickets with no unmet due time ('infinity',
      // no ticket_sla row to speak of) come after it in id order. Desc walks the two parts the other way.
      if (filters.slaBreached === false && order.key === 'slaDueAt' && !filters.q) {
        const cmp = order.desc ? sql`<` : sql`>`;
        const dir = order.desc ? sql`DESC` : sql`ASC`;
        const afterValue = after ? sql`${String(after.value)}::timestamptz` : null;
        const due = sql`${ticketSla.breachCheckAt}`;
        const finite = (n: number) =>
          ex
            .select({
              ...viewColumns,
              sortValue: sql<string>`to_char(${due} AT TIME ZONE 'UTC', ${sql.raw(`'${ISO_MS}'`)})`,
            })
            .from(ticketSla)
            .innerJoin(tickets, eq(tickets.id, ticketSla.ticketId))
            .innerJoin(users, eq(users.id, tickets.requesterId))
            .leftJoin(assignee, eq(assignee.id, tickets.assigneeId))
            .where(
              and(
                ...where,
                sql`${due} IS NOT NULL AND ${ticketSla.firstResponseBreachedAt} IS NULL AND ${ticketSla.resolutionBreachedAt} IS NULL`,
                afterValue
                  ? sql`(${due}, ${ticketSla.ticketId}) ${cmp} (${afterValue}, ${after!.id})`
                  : undefined,
              ),
            )
            .orderBy(sql`${due} ${dir}`, sql`${ticketSla.ticketId} ${dir}`)
            .limit(literalLimit(n));
        const infinite = (n: number) =>
          ex
            .select({ ...viewColumns, sortValue: sql<string>`'infinity'` })
            .from(tickets)
            .innerJoin(users, eq(users.id, tickets.requesterId))
            .leftJoin(assignee, eq(assignee.id, tickets.assigneeId))
            .where(
              and(
                ...where,
                sql`${tickets.slaNextDueAt} = 'infinity'`,
                sql`NOT ${breached}`,
                afterValue
                  ? sql`(${tickets.slaNextDueAt}, ${tickets.id}) ${cmp} (${afterValue}, ${after!.id})`
                  : undefined,
              ),
            )
            .orderBy(sql`${tickets.slaNextDueAt} ${dir}`, sql`${tickets.id} ${dir}`)
            .limit(literalLimit(n));
        const parts = order.desc ? [infinite, finite] : [finite, infinite];
        const rows = await parts[0]!(limit);
        if (rows.length < limit) rows.push(...(await parts[1]!(limit - rows.length)));
        return rows;
      }

      if (filters.slaBreached !== undefined)
        where.push(filters.slaBreached ? breached : sql`NOT ${breached}`);

      const rank = filters.q
        ? sql<number>`ts_rank(${tickets.search}, ${tsQuery(filters.q)})`
        : sql<number>`0`;
      const keyExpr: SQL =
        order.key === 'updatedAt'
          ? sql`${tickets.updatedAt}`
          : order.key === 'createdAt'
            ? sql`${tickets.createdAt}`
            : order.key === 'priority'
              ? sql`${tickets.priority}`
              : order.key === 'slaDueAt'
                ? sql`${tickets.slaNextDueAt}`
                : rank;

      if (after) {
        const cmp = order.desc ? sql`<` : sql`>`;
        const value =
          order.key === 'priority'
            ? sql`${String(after.value)}::ticket_priority`
            : order.key === 'rank'
              ? sql`${Number(after.value)}::real`
              : sql`${String(after.value)}::timestamptz`;
        where.push(sql`(${keyExpr}, ${tickets.id}) ${cmp} (${value}, ${after.id})`);
      }

      const dir = order.desc ? sql`DESC` : sql`ASC`;
      const sortValue =
        order.key === 'updatedAt' || order.key === 'createdAt'
          ? sql<string>`to_char(${keyExpr} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')`
          : order.key === 'slaDueAt'
            ? sql<string>`CASE WHEN isfinite(${keyExpr}) THEN to_char(${keyExpr} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') ELSE 'infinity' END`
            : order.key === 'priority'
              ? sql<string>`${tickets.priority}::text`
              : rank;

      // Ranked search: rank and cut to one page over tickets alone, then join the people to those rows only
      // (the planner over-estimates rare terms' matches and would otherwise hash-join every user).
      const ranked = (on: Executor) => {
        const top = on
          .select({ id: tickets.id, rank: rank.as('rank') })
          .from(tickets)
          .where(and(...where))
          .orderBy(sql`${rank} DESC`, sql`${tickets.id} DESC`)
          .limit(limit)
          .as('top');
        return on
          .select({ ...viewColumns, sortValue: sql<number>`${top.rank}` })
          .from(top)
          .innerJoin(tickets, eq(tickets.id, top.id))
          .innerJoin(users, eq(users.id, tickets.requesterId))
          .leftJoin(assignee, eq(assignee.id, tickets.assigneeId))
          .orderBy(sql`${top.rank} DESC`, sql`${top.id} DESC`);
      };
      // A search in a date/priority order whose matches are few: collect them through the GIN index first
      // (OFFSET 0 keeps the subquery from being flattened), then sort just those. Walking the sort index and
      // testing every row would read ~N/matches rows per page: 2.8 s for a rare word at 1M tickets.
      const fewMatchesPage = (on: Executor) => {
        const m = on
          .select({ id: tickets.id })
          .from(tickets)
          .where(and(...where))
          .offset(0)
          .as('m');
        return on
          .select({ ...viewColumns, sortValue: sortValue as SQL<string | number> })
          .from(m)
          .innerJoin(tickets, eq(tickets.id, m.id))
          .innerJoin(users, eq(users.id, tickets.requesterId))
          .leftJoin(assignee, eq(assignee.id, tickets.assigneeId))
          .orderBy(sql`${keyExpr} ${dir}`, sql`${tickets.id} ${dir}`)
          .limit(literalLimit(limit));
      };
      const run = (on: Executor, fewMatches = false) =>
        order.key === 'rank'
          ? ranked(on)
          : fewMatches
            ? fewMatchesPage(on)
            : on
                .select({ ...viewColumns, sortValue: sortValue as SQL<string | number> })
                .from(tickets)
                .innerJoin(users, eq(users.id, tickets.requesterId))
                .leftJoin(assignee, eq(assignee.id, tickets.assigneeId))
                .where(and(...where))
                .orderBy(sql`${keyExpr} ${dir}`, sql`${tickets.id} ${dir}`)
                .limit(literalLimit(limit));
      if (!filters.q) return run(ex);
      // PostgreSQL over-estimates the matches of rare search terms and starts parallel workers whose
      // start-up dominates (≈90 ms vs <1 ms at 1M tickets); a server of concurrent requests gains
      // nothing from them, so search runs without.
      return ex.transaction(async (tx) => {
        await tx.execute(sql`SET LOCAL max_parallel_workers_per_gather = 0`);
        if (order.key === 'rank') return run(tx);
        // PostgreSQL estimates any word outside its statistics at 0.5 % of rows, so it cannot tell a rare
        // word from a common one: count (bounded) how many rows match before choosing the plan.
        const probe = await tx.execute<{ n: number }>(
          sql`SELECT count(*)::int AS n FROM (SELECT 1 FROM ${tickets} WHERE ${and(...where)} LIMIT ${sql.raw(String(FEW_MATCHES + 1))}) AS probe`,
        );
        return run(tx, Number(probe.rows[0]?.n ?? 0) <= FEW_MATCHES);
      });
    },
  };
}

export type TicketsRepository = ReturnType<typeof createTicketsRepository>;
