import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { withIdempotency } from '../../http/idempotency.js';
import { AUTHED_PROBLEMS, problemResponses } from '../../http/problem.js';
import { authed, sendPage } from '../../http/reply.js';
import { idempotencyHeaders, ticketIdParams } from '../tickets/tickets.schemas.js';
import {
  type CommentDto,
  commentPageSchema,
  commentSchema,
  createCommentBody,
  listCommentsQuery,
} from './comments.schemas.js';
import type { CommentService } from './comments.service.js';

export const commentsRoutes: FastifyPluginAsyncZod<{ comments: CommentService }> = async (
  app,
  { comments },
) => {
  app.get(
    '/tickets/:id/comments',
    {
      schema: {
        operationId: 'listComments',
        tags: ['comments'],
        summary: "A ticket's comments, oldest first",
        description: `Requesters see public replies only; internal notes are never shown to them (nor counted).
Keyset-paginated: pass \`nextCursor\` as \`cursor\` (also in \`Link: <…>; rel="next"\`).`,
        params: ticketIdParams,
        querystring: listCommentsQuery,
        response: { 200: commentPageSchema, ...problemResponses(...AUTHED_PROBLEMS, 404) },
      },
    },
    async (request, reply) => {
      return sendPage(request, reply, await comments.list(authed(request), request.params.id, request.query));
    },
  );

  app.post(
    '/tickets/:id/comments',
    {
      schema: {
        operationId: 'createComment',
        tags: ['comments'],
        summary: 'Reply or add an internal note',
        description: `\`visibility: "public"\` (default) is a reply the requester sees; \`"internal"\` is a note for agents
and admins only (a requester asking for one → 403). Requesters reply on their own tickets only. The first public
reply of an agent/admin sets the ticket's \`firstResponseAt\`; a requester's reply on a pending or solved ticket
reopens it. Closed/cancelled tickets → 409 TICKET_CLOSED; a soft-deleted ticket is 404 (admins: 409
TICKET_DELETED). Internal notes do not change the ticket (no updatedAt/version change, never searchable).
A public reply moves the ticket's updatedAt and version. Audit: one comment.created event, plus one ticket event
only when a ticket field changed (status reopened → ticket.status_changed; firstResponseAt → ticket.updated).
\`Idempotency-Key\` works as on POST /tickets.`,
        params: ticketIdParams,
        headers: idempotencyHeaders,
        body: createCommentBody,
        response: { 201: commentSchema, ...problemResponses(...AUTHED_PROBLEMS, 403, 404, 409) },
      },
    },
    async (request, reply) => {
      const comment = await withIdempotency<CommentDto>(request, reply, (remember) =>
        comments.create(authed(request), request.params.id, request.body, remember),
      );
      return reply.code(201).send(comment);
    },
  );
};
