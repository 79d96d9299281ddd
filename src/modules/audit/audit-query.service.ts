import type { Database } from '../../db/client.js';
import type { AuditEventRow } from '../../db/schema/index.js';
import { type CursorCodec, InvalidCursorError } from '../../lib/cursor.js';
import { keysetPage } from '../../lib/keyset.js';
import type { AuthedContext } from '../auth/actor.js';
import { assertCan } from '../auth/permissions.js';
import type { TicketService } from '../tickets/tickets.service.js';
import type { AuditFilters, AuditRepository } from './audit.repository.js';

export interface AuditEventDto {
  id: string;
  occurredAt: Date;
  actor: { id: string; role: 'requester' | 'agent' | 'admin' } | null;
  action: string;
  entityType: string;
  entityId: string | null;
  traceId: string | null;
  ip: string | null;
  changes: Record<string, [unknown, unknown]>;
  metadata: Record<string, unknown>;
}

function toDto(row: AuditEventRow): AuditEventDto {
  return {
    id: row.id,
    occurredAt: row.occurredAt,
    actor: row.actorId && row.actorRole ? { id: row.actorId, role: row.actorRole } : null,
    action: row.action,
    entityType: row.entityType,
    entityId: row.entityId,
    traceId: row.traceId,
    ip: row.ip,
    changes: row.changes,
    metadata: row.metadata,
  };
}

/** Reading the audit trail: a ticket's timeline (agents, admins) and the whole trail (admins). */
export function createAuditQueryService(deps: {
  db: Database;
  audit: AuditRepository;
  tickets: Pick<TicketService, 'getVisibleTicket'>;
  cursor: CursorCodec;
}) {
  const { db, audit, tickets, cursor } = deps;

  function seqFrom(token: string | undefined, scope: string): number | null {
    if (!token) return null;
    const c = cursor.decode(token);
    if (c.k !== scope || typeof c.q !== 'number' || !Number.isInteger(c.q)) throw new InvalidCursorError();
    return c.q;
  }

  function page(rows: AuditEventRow[], limit: number, scope: string) {
    const { page, nextCursor } = keysetPage(rows, limit, (last) => cursor.encode({ k: scope, q: last.seq }));
    return { data: page.map(toDto), nextCursor };
  }

  return {
    /** GET /tickets/{id}/events: requesters → 403 (they never see events); unknown ticket → 404. */
    async ticketTimeline(ctx: AuthedContext, ticketId: number, query: { limit: number; cursor?: string }) {
      assertCan(ctx.actor, 'audit.readTicketTimeline', { type: 'ticket', id: ticketId });
      await tickets.getVisibleTicket(ctx, ticketId);
      const scope = `ticket:${ticketId}`;
      const rows = await audit.listForTicket(db, ticketId, seqFrom(query.cursor, scope), query.limit + 1);
      return page(rows, query.limit, scope);
    },

    /** GET /audit-events: admins only, newest first. */
    async list(ctx: AuthedContext, filters: AuditFilters, query: { limit: number; cursor?: string }) {
      assertCan(ctx.actor, 'audit.readAll', { type: 'audit_event' });
      const rows = await audit.list(db, filters, seqFrom(query.cursor, 'all'), query.limit + 1);
      return page(rows, query.limit, 'all');
    },
  };
}

export type AuditQueryService = ReturnType<typeof createAuditQueryService>;
