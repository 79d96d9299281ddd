import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { AUTHED_PROBLEMS, problemResponses } from '../../http/problem.js';
import { authed, sendPage } from '../../http/reply.js';
import { ticketIdParams } from '../tickets/tickets.schemas.js';
import type { AuditQueryService } from './audit-query.service.js';

export const auditEventSchema = z
  .object({
    id: z.uuid(),
    occurredAt: z.date(),
    actor: z.object({ id: z.uuid(), role: z.enum(['requester', 'agent', 'admin']) }).nullable(),
    action: z.string().describe('entity.verb, e.g. ticket.created, comment.created, access.denied'),
    entityType: z.string(),
    entityId: z.string().nullable(),
    traceId: z.string().nullable().describe('X-Request-Id of the request that wrote it'),
    ip: z.string().nullable(),
    changes: z.record(z.string(), z.tuple([z.unknown(), z.unknown()])).describe('field → [old, new]'),
    metadata: z.record(z.string(), z.unknown()),
  })
  .meta({ id: 'AuditEvent' });

const auditPageSchema = z.object({ data: z.array(auditEventSchema), nextCursor: z.string().nullable() });

const pageQuery = {
  limit: z.coerce.number().int().min(1).max(100).default(50),
  cursor: z.string().min(1).max(2048).optional(),
};

export const auditRoutes: FastifyPluginAsyncZod<{ auditQueries: AuditQueryService }> = async (
  app,
  { auditQueries },
) => {
  app.get(
    '/tickets/:id/events',
    {
      schema: {
        operationId: 'listTicketEvents',
        tags: ['audit', 'tickets'],
        summary: "A ticket's timeline (agents, admins)",
        description: `Audit events of the ticket and of its comments and attachments, oldest first. Each successful
change wrote exactly one event per changed entity in its own transaction, with the request's traceId; a ticket
PATCH is one event whose action is the most specific (ticket.status_changed > ticket.assigned > ticket.updated) and
whose \`changes\` hold every changed field. Requesters → 403.`,
        params: ticketIdParams,
        querystring: z.strictObject(pageQuery),
        response: { 200: auditPageSchema, ...problemResponses(...AUTHED_PROBLEMS, 403, 404) },
      },
    },
    async (request, reply) => {
      return sendPage(
        request,
        reply,
        await auditQueries.ticketTimeline(authed(request), request.params.id, request.query),
      );
    },
  );

  app.get(
    '/audit-events',
    {
      schema: {
        operationId: 'listAuditEvents',
        tags: ['audit'],
        summary: 'The audit trail (admins)',
        description: 'Newest first, keyset-paginated. `from` inclusive, `to` exclusive.',
        querystring: z.strictObject({
          actorId: z.uuid().optional(),
          action: z.string().min(1).max(100).optional(),
          entityType: z.string().min(1).max(100).optional(),
          entityId: z.string().min(1).max(200).optional(),
          traceId: z.string().min(1).max(128).optional(),
          from: z.iso.datetime({ offset: true }).optional(),
          to: z.iso.datetime({ offset: true }).optional(),
          ...pageQuery,
        }),
        response: { 200: auditPageSchema, ...problemResponses(...AUTHED_PROBLEMS, 403) },
      },
    },
    async (request, reply) => {
      const { limit, cursor, from, to, ...filters } = request.query;
      return sendPage(
        request,
        reply,
        await auditQueries.list(
          authed(request),
          { ...filters, from: from ? new Date(from) : undefined, to: to ? new Date(to) : undefined },
          { limit, cursor },
        ),
      );
    },
  );
};
