import type { FastifyInstance } from 'fastify';
import { expect } from 'vitest';
import type { TestUser } from './factory.js';

/** Opens a ticket through the API as `user` (defaults for title and description) and returns its body. */
export async function createTicket(
  app: FastifyInstance,
  user: TestUser,
  body: Record<string, unknown> = {},
  // biome-ignore lint/suspicious/noExplicitAny: the ticket resource as the API answers it.
): Promise<any> {
  const res = await app.inject({
    method: 'POST',
    url: '/api/v1/tickets',
    headers: user.auth,
    payload: { title: 'Printer on fire', description: 'It smokes.', ...body },
  });
  expect(res.statusCode, res.body).toBe(201);
  return res.json();
}

/** PATCH /tickets/{id} as `user`; the raw response, for the test to assert. */
export function patchTicket(
  app: FastifyInstance,
  user: TestUser,
  id: number,
  payload: Record<string, unknown>,
  headers: Record<string, string> = {},
) {
  return app.inject({
    method: 'PATCH',
    url: `/api/v1/tickets/${id}`,
    headers: { ...user.auth, ...headers },
    payload,
  });
}

export interface AuditEventRow {
  action: string;
  entity_type: string;
  entity_id: string | null;
  actor_id: string | null;
  trace_id: string;
  changes: Record<string, [unknown, unknown]> | null;
  metadata: Record<string, unknown>;
}

/** Audit rows in insertion order, of one request (traceId) or one entity. */
export async function auditEvents(
  app: FastifyInstance,
  where: { traceId: string } | { entityType: string; entityId: string | number },
): Promise<AuditEventRow[]> {
  const [clause, params] =
    'traceId' in where
      ? ['trace_id = $1', [where.traceId]]
      : ['entity_type = $1 AND entity_id = $2', [where.entityType, String(where.entityId)]];
  const { rows } = await app.db.$client.query<AuditEventRow>(
    `SELECT action, entity_type, entity_id, actor_id, trace_id, changes, metadata
       FROM audit_events WHERE ${clause} ORDER BY seq`,
    params,
  );
  return rows;
}
