import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { etagOf, expectedVersionOf } from '../../http/conditional.js';
import { withIdempotency } from '../../http/idempotency.js';
import { AUTHED_PROBLEMS, problemResponses } from '../../http/problem.js';
import { authed, sendPage } from '../../http/reply.js';
import {
  createTicketBody,
  idempotencyHeaders,
  ifMatchHeaders,
  listTicketsQuery,
  patchTicketBody,
  type TicketDto,
  ticketIdParams,
  ticketPageSchema,
  ticketSchema,
} from './tickets.schemas.js';
import type { TicketService } from './tickets.service.js';

const TICKET_DESCRIPTION = `Tickets have integer ids (the ticket number). Every ticket carries \`allowedTransitions\`:
the statuses the caller may move it to now. Audit: each successful change writes exactly one event for the
ticket in the change's transaction — the most specific action wins (\`ticket.status_changed\` >
\`ticket.assigned\` > \`ticket.updated\`) and its \`changes\` holds every field that changed, e.g. a PATCH of
status and title is one \`ticket.status_changed\` with both fields.`;

export const ticketsRoutes: FastifyPluginAsyncZod<{ tickets: TicketService }> = async (app, { tickets }) => {
  app.get(
    '/tickets',
    {
      schema: {
        operationId: 'listTickets',
        tags: ['tickets'],
        summary: 'List tickets',
        description: `Keyset-paginated list, newest activity first by default. Requesters see only tickets they
requested; soft-deleted tickets are never listed. \`cursor\` is the opaque, signed \`nextCursor\` of the previous
page (a mangled or forged one → 422); the next page's URL is also in \`Link: <…>; rel="next"\`. Every sort ends with
the id as tie-breaker, so walking pages returns each ticket exactly once. \`q\` is a PostgreSQL full-text search
(websearch syntax: "quoted phrases", -exclusions, or) over title, description and public comments; its matches
come in the requested order (default newest activity first), or best match first with \`sort=relevance\` (ranking
costs grow with the number of matches: prefer a date order for very common words). Internal notes are never searched.`,
        querystring: listTicketsQuery,
        response: { 200: ticketPageSchema, ...problemResponses(...AUTHED_PROBLEMS) },
      },
    },
    async (request, reply) => {
      return sendPage(request, reply, await tickets.list(authed(request), request.query));
    },
  );

  app.post(
    '/tickets',
    {
      schema: {
        operationId: 'createTicket',
        tags: ['tickets'],
        summary: 'Open a ticket',
        description: `Requesters open tickets for themselves and may set \`priority\`/\`type\` (at creation only);
\`tags\`, \`teamId\` or another \`requesterId\` from a requester → 403. Agents and admins may open a ticket on behalf
of an active requester (\`requesterId\`). With \`Idempotency-Key\` (scoped to the caller, kept 24 h) a retry with
the same body replays the first 201 with \`Idempotent-Replayed: true\`; another body → 422
IDEMPOTENCY_KEY_REUSED; while the first is running → 409 IDEMPOTENCY_IN_PROGRESS. Failed requests are not
stored (a retry runs again).`,
        headers: idempotencyHeaders,
        body: createTicketBody,
        response: { 201: ticketSchema, ...problemResponses(...AUTHED_PROBLEMS, 403, 409) },
      },
    },
    async (request, reply) => {
      const ticket = await withIdempotency<TicketDto>(request, reply, (remember) =>
        tickets.create(authed(request), request.body, remember),
      );
      reply
        .code(201)
        .header('location', `/api/v1/tickets/${ticket.id}`)
        .header('etag', etagOf(ticket.version));
      return ticket;
    },
  );

  app.get(
    '/tickets/:id',
    {
      schema: {
        operationId: 'getTicket',
        tags: ['tickets'],
        summary: 'Read a ticket',
        description: `Answers the ticket with \`ETag: "<version>"\`. A ticket the caller may not see → 404 (never 403).
Soft-deleted tickets are 404 for everyone except admins, who can read them (with \`deletedAt\`) to restore them.`,
        params: ticketIdParams,
        response: { 200: ticketSchema, ...problemResponses(...AUTHED_PROBLEMS, 404) },
      },
    },
    async (request, reply) => {
      const ticket = await tickets.get(authed(request), request.params.id);
      reply.header('etag', etagOf(ticket.version));
      return ticket;
    },
  );

  app.patch(
    '/tickets/:id',
    {
      schema: {
        operationId: 'updateTicket',
        tags: ['tickets'],
        summary: 'Change a ticket',
        description: `${TICKET_DESCRIPTION}

Field rules: requesters may edit \`title\`/\`description\` of their own ticket while it is \`new\`, cancel it
(new/open → cancelled) or reopen it (solved → open); any other field → 403. Agents may take an unassigned
ticket (\`assigneeId\` = themselves) or unassign themselves, and change the status of tickets assigned to them or
unassigned; taking a ticket another agent holds → 403 (an admin reassigns it). Every rule is judged on the ticket
as it was before the request. Admins may do everything. \`assigneeId\` and \`status\` together: the assignment applies first
(assigning a \`new\` ticket opens it), so "assign + solve" works. A transition outside the lifecycle → 409
INVALID_TRANSITION (allowed targets in \`detail\`); a closed/cancelled ticket → 409 TICKET_CLOSED.
\`If-Match: "<version>"\` (optional) → 412 VERSION_MISMATCH when stale, nothing changed. Concurrent PATCHes are
serialized; none is lost.`,
        params: ticketIdParams,
        headers: ifMatchHeaders,
        body: patchTicketBody,
        response: { 200: ticketSchema, ...problemResponses(...AUTHED_PROBLEMS, 403, 404, 409, 412) },
      },
    },
    async (request, reply) => {
      const ticket = await tickets.patch(
        authed(request),
        request.params.id,
        request.body,
        expectedVersionOf(request.headers['if-match']),
      );
      reply.header('etag', etagOf(ticket.version));
      return ticket;
    },
  );

  app.delete(
    '/tickets/:id',
    {
      schema: {
        operationId: 'deleteTicket',
        tags: ['tickets'],
        summary: 'Soft-delete a ticket (admin)',
        description:
          'Hides the ticket from every list and read (admins can still read it, and restore it). Audited as ticket.deleted.',
        params: ticketIdParams,
        response: {
          204: z.null().describe('Deleted'),
          ...problemResponses(...AUTHED_PROBLEMS, 403, 404, 409),
        },
      },
    },
    async (request, reply) => {
      await tickets.remove(authed(request), request.params.id);
      return reply.code(204).send(null);
    },
  );

  app.post(
    '/tickets/:id/restore',
    {
      schema: {
        operationId: 'restoreTicket',
        tags: ['tickets'],
        summary: 'Restore a soft-deleted ticket (admin)',
        description: 'Audited as ticket.restored. A ticket that is not deleted → 409 TICKET_NOT_DELETED.',
        params: ticketIdParams,
        response: { 200: ticketSchema, ...problemResponses(...AUTHED_PROBLEMS, 403, 404, 409) },
      },
    },
    async (request, reply) => {
      const ticket = await tickets.restore(authed(request), request.params.id);
      reply.header('etag', etagOf(ticket.version));
      return ticket;
    },
  );
};
