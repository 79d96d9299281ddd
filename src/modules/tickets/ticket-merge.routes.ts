import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { etagOf } from '../../http/conditional.js';
import { AUTHED_PROBLEMS, problemResponses } from '../../http/problem.js';
import { authed } from '../../http/reply.js';
import type { TicketMergeService } from './ticket-merge.service.js';
import { ticketIdParams, ticketSchema } from './tickets.schemas.js';

export const ticketMergeRoutes: FastifyPluginAsyncZod<{ merge: TicketMergeService }> = async (
  app,
  { merge },
) => {
  app.post(
    '/tickets/:id/merge',
    {
      config: { scope: 'tickets:write' },
      schema: {
        operationId: 'mergeTicket',
        tags: ['tickets'],
        summary: 'Merge this ticket into another (staff)',
        description: `The ticket in the path (the source, typically a duplicate) is closed with \`mergedIntoId\` and
its comments and attachments are MOVED to \`targetId\`; the target is answered. Moved rather than linked: each
comment and file keeps one home, so the target's comment list, search, attachment downloads and permission checks
work unchanged, with no second code path that could show a note where it should not be (internal notes stay
internal). The consequence: the source's requester no longer reads that conversation through the source (it is a
closed stub pointing at the target), so merge duplicates of the same requester, or accept that the target's
requester now sees the source's public replies. Not reversible. Audited as \`ticket.merged\` on both tickets
(counts moved in the metadata); a \`ticket.merged\` change event on both notifies both requesters. Into itself →
422 MERGE_INTO_SELF; a deleted source or target → 409 TICKET_DELETED; a closed or cancelled one (also an already
merged one) → 409 TICKET_CLOSED; requesters → 403.`,
        params: ticketIdParams,
        body: z
          .strictObject({ targetId: z.number().int().min(1).max(2_147_483_647) })
          .meta({ example: { targetId: 1042 } }),
        response: { 200: ticketSchema, ...problemResponses(...AUTHED_PROBLEMS, 403, 404, 409) },
      },
    },
    async (request, reply) => {
      const ticket = await merge.merge(authed(request), request.params.id, request.body.targetId);
      reply.header('etag', etagOf(ticket.version));
      return ticket;
    },
  );
};
