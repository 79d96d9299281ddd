import { and, asc, desc, eq, gte, lt, type SQL, sql } from 'drizzle-orm';
import type { Executor } from '../../db/client.js';
import { compile, queryBuilder, runCompiled } from '../../db/compiled.js';
import {
  type AuditEventRow,
  auditEvents,
  ENTITY_INDEXED,
  type NewAuditEvent,
  TICKET_OWN_ROW,
} from '../../db/schema/index.js';

export interface AuditFilters {
  actorId?: string;
  action?: string;
  entityType?: string;
  entityId?: string;
  traceId?: string;
  from?: Date;
  to?: Date;
}

export type AuditInsertValues = Required<
  Pick<
    NewAuditEvent,
    | 'actorId'
    | 'actorRole'
    | 'action'
    | 'entityType'
    | 'entityId'
    | 'traceId'
    | 'ip'
    | 'userAgent'
    | 'changes'
    | 'metadata'
  >
>;

/**
 * `entity_type = 'ticket' AND entity_id = id`, in two parts that each have an index: the ticket's own rows
 * (the ticket index, by metadata.ticketId) and the rest (the partial entity index). See auditEvents.
 */
export function isTicketEntity(id: string): SQL {
  return sql`((${auditEvents.entityType} = 'ticket' AND (${auditEvents.metadata} ->> 'ticketId') = ${id} AND ${TICKET_OWN_ROW})
    OR (${auditEvents.entityType} = 'ticket' AND ${auditEvents.entityId} = ${id} AND ${ENTITY_INDEXED}))`;
}

/**
 * The audit INSERT, its values named placeholders (`prefix` + field). Built once; the change feed also
 * writes it inside the statement that inserts a change event (changes.repository.ts), under a prefix.
 * Nothing comes back: no caller reads the row it wrote, and returning it cost the database its JSON and
 * the driver its parsing on every write.
 */
export function auditInsertStatement(prefix = '') {
  const ph = (name: keyof AuditInsertValues) => sql.placeholder(`${prefix}${name}`);
  return queryBuilder.insert(auditEvents).values({
    actorId: ph('actorId'),
    actorRole: ph('actorRole'),
    action: ph('action'),
    entityType: ph('entityType'),
    entityId: ph('entityId'),
    traceId: ph('traceId'),
    ip: ph('ip'),
    userAgent: ph('userAgent'),
    changes: ph('changes'),
    metadata: ph('metadata'),
  });
}

/** Every write's audit row (drizzle building a 13-column INSERT on each write cost more CPU than sending it). */
const insertQuery = compile<AuditInsertValues>(auditInsertStatement());

/** The placeholders' values of auditInsertStatement for one event. */
export function auditInsertValues(event: NewAuditEvent): AuditInsertValues {
  return {
    actorId: event.actorId ?? null,
    actorRole: event.actorRole ?? null,
    action: event.action,
    entityType: event.entityType,
    entityId: event.entityId ?? null,
    traceId: event.traceId ?? null,
    ip: event.ip ?? null,
    userAgent: event.userAgent ?? null,
    // jsonb parameters travel as JSON text (pg would send an array as a PostgreSQL array).
    changes: JSON.stringify(event.changes ?? {}) as unknown as AuditInsertValues['changes'],
    metadata: JSON.stringify(event.metadata ?? {}) as unknown as AuditInsertValues['metadata'],
  };
}

export function createAuditRepository() {
  return {
    async insert(ex: Executor, event: NewAuditEvent): Promise<void> {
      await runCompiled<never, AuditInsertValues>(ex, insertQuery, auditInsertValues(event));
    },

    /**
     * A ticket's timeline, oldest first: every event that names the ticket in metadata.ticketId
     * (ticket.*, comment.*, attachment.*), served by the expression index audit_events_ticket_idx.
     */
    async listForTicket(
      ex: Executor,
      ticketId: number,
      afterSeq: number | null,
      limit: number,
    ): Promise<AuditEventRow[]> {
      const where: SQL[] = [sql`(${auditEvents.metadata} ->> 'ticketId') = ${String(ticketId)}`];
      if (afterSeq !== null) where.push(sql`${auditEvents.seq} > ${afterSeq}`);
      return ex
        .select()
        .from(auditEvents)
        .where(and(...where))
        .orderBy(asc(auditEvents.seq))
        .limit(limit);
    },

    /** All events, newest first, keyset on seq. */
    async list(
      ex: Executor,
      filters: AuditFilters,
      beforeSeq: number | null,
      limit: number,
    ): Promise<AuditEventRow[]> {
      const where: SQL[] = [];
      if (filters.actorId) where.push(eq(auditEvents.actorId, filters.actorId));
      if (filters.action) where.push(eq(auditEvents.action, filters.action));
      if (filters.entityType === 'ticket' && filters.entityId) {
        where.push(isTicketEntity(filters.entityId));
      } else {
        if (filters.entityType) {
          where.push(eq(auditEvents.entityType, filters.entityType));
          // Implied by the type; said so that the partial entity index is seen to hold these rows.
          if (filters.entityType !== 'ticket') where.push(ENTITY_INDEXED);
        }
        if (filters.entityId) where.push(eq(auditEvents.entityId, filters.entityId));
      }
      if (filters.traceId) where.push(eq(auditEvents.traceId, filters.traceId));
      if (filters.from) where.push(gte(auditEvents.occurredAt, filters.from));
      if (filters.to) where.push(lt(auditEvents.occurredAt, filters.to));
      if (beforeSeq !== null) where.push(lt(auditEvents.seq, beforeSeq));
      return ex
        .select()
        .from(auditEvents)
        .where(where.length ? and(...where) : undefined)
        .orderBy(desc(auditEvents.seq))
        .limit(limit);
    },
  };
}

export type AuditRepository = ReturnType<typeof createAuditRepository>;
