import { and, asc, desc, eq, gte, lt, type SQL, sql } from 'drizzle-orm';
import type { Executor } from '../../db/client.js';
import { type AuditEventRow, auditEvents, type NewAuditEvent } from '../../db/schema/index.js';

export interface AuditFilters {
  actorId?: string;
  action?: string;
  entityType?: string;
  entityId?: string;
  traceId?: string;
  from?: Date;
  to?: Date;
}

export function createAuditRepository() {
  return {
    async insert(ex: Executor, event: NewAuditEvent): Promise<AuditEventRow> {
      const [row] = await ex.insert(auditEvents).values(event).returning();
      return row!;
    },

    /** Several events in one statement (a job's batch), in the given order. */
    async insertMany(ex: Executor, events: NewAuditEvent[]): Promise<void> {
      if (events.length > 0) await ex.insert(auditEvents).values(events);
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
      if (filters.entityType) where.push(eq(auditEvents.entityType, filters.entityType));
      if (filters.entityId) where.push(eq(auditEvents.entityId, filters.entityId));
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
