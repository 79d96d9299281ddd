import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { AUTHED_PROBLEMS, problemResponses } from '../../http/problem.js';
import { authed } from '../../http/reply.js';
import { bulkAcceptedSchema, bulkBody, bulkPreviewSchema } from './bulk.schemas.js';
import type { BulkService } from './bulk.service.js';

export const bulkRoutes: FastifyPluginAsyncZod<{ bulk: BulkService }> = async (app, { bulk }) => {
  app.post(
    '/tickets/bulk',
    {
      config: { scope: 'tickets:write' },
      schema: {
        operationId: 'bulkChangeTickets',
        tags: ['tickets'],
        summary: 'Change up to 1,000 tickets: preview, then confirm',
        description: `Two steps. (1) \`dryRun: true\` with \`ids\` (≤ 1,000, unique) or \`filter\` (the filters of GET /tickets;
more than 1,000 matches → 422 TOO_MANY_TICKETS) → 200 with each ticket's outcome — \`change\`, \`skip\` (nothing
would change) or \`error\` with the code PATCH /tickets/{id} would answer (403 FORBIDDEN, 409 INVALID_TRANSITION,
TICKET_CLOSED, TICKET_NOT_FOUND, 422 TOO_MANY_TAGS, …). The outcomes are computed by running each ticket's change
through PATCH's own code and rolling it back, so nothing changes. It also answers a \`confirmationToken\`
(HMAC-signed, 10 minutes, single use) bound to this exact request: the resolved ids (a filter is resolved once,
here; executing changes exactly these tickets), the changes and the caller.
(2) The same body with \`confirmationToken\` instead of \`dryRun\` → 202 \`{jobId}\`: a tracked job changes each
ticket in its own transaction with PATCH's rules as they are then (lifecycle, permissions; one audit event per
ticket with \`metadata.bulkId\`), reports progress in GET /jobs/{jobId}, and ends with per-ticket outcomes in its
\`result\`. A ticket that fails does not stop the others. Token errors: forged, altered, another user's or another
request's → 422 CONFIRMATION_TOKEN_INVALID; older than 10 minutes → 422 CONFIRMATION_TOKEN_EXPIRED; already used →
409 CONFIRMATION_TOKEN_USED. \`addTags\`/\`removeTags\` apply to each ticket's own tags.`,
        body: bulkBody,
        response: {
          200: bulkPreviewSchema,
          202: bulkAcceptedSchema,
          ...problemResponses(...AUTHED_PROBLEMS, 409),
        },
      },
    },
    async (request, reply) => {
      const ctx = authed(request);
      if (request.body.dryRun === true) return bulk.preview(ctx, request.body);
      const accepted = await bulk.execute(ctx, request.body);
      reply.code(202).header('location', `/api/v1/jobs/${accepted.jobId}`);
      return accepted;
    },
  );
};
