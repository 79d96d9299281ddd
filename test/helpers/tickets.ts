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
  actor_id: string | null;
  actor_role: string | null;
  entity_type: string;
  entity_id: string | null;
  trace_id: string | null;
  ip: string | null;
  user_agent: string | null;
  changes: Record<string, [unknown, unknown]>;
  metadata: Record<string, unknown>;
}

/** Audit rows straight from the table, in insertion order, matching every filter given. */
export async function auditEvents(
  app: FastifyInstance,
  where: { action?: string; traceId?: string; entityType?: string; entityId?: string | number },
): Promise<AuditEventRow[]> {
  const columns = { action: 'action', traceId: 'trace_id', entityType: 'entity_type', entityId: 'entity_id' };
  const clauses: string[] = [];
  const params: string[] = [];
  for (const [key, column] of Object.entries(columns)) {
    const value = where[key as keyof typeof where];
    if (value === undefined) continue;
    params.push(String(value));
    clauses.push(`${column} = $${params.length}`);
  }
  if (clauses.length === 0) throw new Error('auditEvents needs a filter');
  const { rows } = await app.db.$client.query<AuditEventRow>(
    `SELECT action, actor_id, actor_role, entity_type, entity_id, trace_id, ip, user_agent, changes, metadata
       FROM audit_events WHERE ${clauses.join(' AND ')} ORDER BY seq`,
    params,
  );
  return rows;
}
