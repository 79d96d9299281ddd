import type { Executor } from '../../db/client.js';
import type { NewAuditEvent } from '../../db/schema/index.js';
import type { RequestContext } from '../auth/actor.js';
import type { AuditRepository } from './audit.repository.js';

export interface AuditEntry {
  action: string;
  entityType: string;
  entityId?: string | number | null;
  /** field → [old, new]; never a password, hash or token. */
  changes?: Record<string, [unknown, unknown]>;
  metadata?: Record<string, unknown>;
  /** Overrides ctx.actor, e.g. for a failed login where the account is known but not authenticated. */
  actor?: { id: string; role: 'requester' | 'agent' | 'admin' } | null;
}

const SECRET_FIELDS = /password|hash|token|secret/i;

/**
 * Writes audit events on the executor it is given: pass the transaction of the change so the
 * event and the change commit or roll back together.
 */
export function createAuditService({ audit }: { audit: AuditRepository }) {
  function rowOf(ctx: RequestContext, entry: AuditEntry) {
    const actor = entry.actor === undefined ? ctx.actor : entry.actor;
    const changes: Record<string, [unknown, unknown]> = {};
    for (const [field, pair] of Object.entries(entry.changes ?? {})) {
      if (!SECRET_FIELDS.test(field)) changes[field] = pair;
    }
    return {
      action: entry.action,
      entityType: entry.entityType,
      entityId: entry.entityId == null ? null : String(entry.entityId),
      actorId: actor?.id ?? null,
      actorRole: actor?.role ?? null,
      traceId: ctx.traceId,
      ip: ctx.ip,
      userAgent: ctx.userAgent,
      changes,
      metadata: entry.metadata ?? {},
    };
  }

  return {
    async record(ex: Executor, ctx: RequestContext, entry: AuditEntry): Promise<void> {
      await audit.insert(ex, rowOf(ctx, entry));
    },

    /**
     * The row record() would write, for a statement that writes it with something else: the change feed
     * inserts a change and its audit row together (ChangeFeed.record's `audit`).
     */
    row(ctx: RequestContext, entry: AuditEntry): NewAuditEvent {
      return rowOf(ctx, entry);
    },
  };
}

export type AuditService = ReturnType<typeof createAuditService>;
