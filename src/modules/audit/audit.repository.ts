import type { Executor } from '../../db/client.js';
import { type AuditEventRow, auditEvents, type NewAuditEvent } from '../../db/schema/index.js';

export function createAuditRepository() {
  return {
    async insert(ex: Executor, event: NewAuditEvent): Promise<AuditEventRow> {
      const [row] = await ex.insert(auditEvents).values(event).returning();
      return row!;
    },
  };
}

export type AuditRepository = ReturnType<typeof createAuditRepository>;
