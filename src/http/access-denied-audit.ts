import type { FastifyInstance } from 'fastify';
import type { Database } from '../db/client.js';
import type { AuditService } from '../modules/audit/audit.service.js';
import { AccessDeniedError } from '../modules/auth/permissions.js';

/**
 * Every refusal by a permission check is audited as `access.denied`, with the attempted operation, on
 * its own (the refused change's transaction has rolled back).
 */
export function registerAccessDeniedAudit(app: FastifyInstance, audit: AuditService, db: Database): void {
  app.addHook('onError', async (request, _reply, err) => {
    if (!(err instanceof AccessDeniedError) || !request.ctx) return;
    await audit
      .record(db, request.ctx, {
        action: 'access.denied',
        entityType: err.entity?.type ?? 'route',
        entityId: err.entity?.id ?? null,
        metadata: {
          operation: err.operation,
          method: request.method,
          route: request.routeOptions.url ?? null,
        },
      })
      .catch((auditErr) => request.log.error({ err: auditErr }, 'could not record access.denied'));
  });
}
