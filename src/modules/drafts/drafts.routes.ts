import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { etagOf, expectedVersionOf } from '../../http/conditional.js';
import { AUTHED_PROBLEMS, problemResponses } from '../../http/problem.js';
import { authed, setNextLink } from '../../http/reply.js';
import { ifMatchHeaders, ticketIdParams } from '../tickets/tickets.schemas.js';
import {
  approvalSchema,
  approveDraftBody,
  createDraftBody,
  draftIdParams,
  draftPageSchema,
  draftSchema,
  listDraftsQuery,
  rejectDraftBody,
} from './drafts.schemas.js';
import type { DraftService } from './drafts.service.js';

const DRAFTS = `Drafts are proposed replies and ticket changes (from an agent, or an assistant using an API token
with \`drafts:write\`) that a person approves or rejects. They are staff-only: requesters get 403 on every draft
route, and draft events in the change feed and live stream are staff-only (no requester ever sees one, nor a
mail about one).`;

export const draftsRoutes: FastifyPluginAsyncZod<{ drafts: DraftService }> = async (app, { drafts }) => {
  app.post(
    '/tickets/:id/drafts',
    {
      config: { scope: 'drafts:write' },
      schema: {
        operationId: 'createDraft',
        tags: ['drafts'],
        summary: 'Propose a reply and/or ticket changes',
        description: `${DRAFTS}

The draft records the ticket's \`version\`: approving it after the ticket changed needs a fresh look (409
DRAFT_STALE). \`changes\` are judged only at approval, by the approver's rights. A closed or deleted ticket → 409.
Audited as draft.created.`,
        params: ticketIdParams,
        body: createDraftBody,
        response: { 201: draftSchema, ...problemResponses(...AUTHED_PROBLEMS, 403, 404, 409) },
      },
    },
    async (request, reply) => {
      const draft = await drafts.create(authed(request), request.params.id, request.body);
      reply.code(201).header('location', `/api/v1/tickets/${draft.ticketId}/drafts`);
      return draft;
    },
  );

  app.get(
    '/tickets/:id/drafts',
    {
      config: { scope: 'tickets:read' },
      schema: {
        operationId: 'listTicketDrafts',
        tags: ['drafts'],
        summary: "A ticket's drafts (staff)",
        description: `${DRAFTS}\n\nOldest first, keyset-paginated (\`nextCursor\`, \`Link: rel="next"\`); \`state\` filters.`,
        params: ticketIdParams,
        querystring: listDraftsQuery,
        response: { 200: draftPageSchema, ...problemResponses(...AUTHED_PROBLEMS, 403, 404) },
      },
    },
    async (request, reply) => {
      const page = await drafts.listForTicket(authed(request), request.params.id, request.query);
      setNextLink(request, reply, page.nextCursor);
      return page;
    },
  );

  app.get(
    '/drafts',
    {
      config: { scope: 'tickets:read' },
      schema: {
        operationId: 'listDrafts',
        tags: ['drafts'],
        summary: 'The draft queue (staff)',
        description: `${DRAFTS}\n\nAll tickets' drafts in \`state\` (default \`pending\`), oldest first, keyset-paginated.`,
        querystring: listDraftsQuery,
        response: { 200: draftPageSchema, ...problemResponses(...AUTHED_PROBLEMS, 403) },
      },
    },
    async (request, reply) => {
      const page = await drafts.queue(authed(request), request.query);
      setNextLink(request, reply, page.nextCursor);
      return page;
    },
  );

  app.post(
    '/drafts/:id/approve',
    {
      config: { scope: 'tickets:write' },
      schema: {
        operationId: 'approveDraft',
        tags: ['drafts'],
        summary: 'Approve a draft: apply its reply and changes as the approver',
        description: `Applies the reply (\`body\` replaces the draft's text when given) and the changes in ONE transaction
as the approver, with exactly the rules of POST /tickets/{id}/comments and PATCH /tickets/{id}: an agent cannot
approve a change they could not make themselves (403, nothing applied); a transition outside the lifecycle → 409.
Audit: the comment and ticket events name the approver as actor and carry \`metadata.draftAuthorId\` and
\`metadata.draftId\`; the draft gets draft.approved. The ticket changed since the draft was written → 409
DRAFT_STALE, unless \`If-Match\` names the ticket's current version (the approver has seen it as it is now); an
If-Match naming another version → 412. A draft already decided → 409 DRAFT_DECIDED.`,
        params: draftIdParams,
        headers: ifMatchHeaders,
        body: approveDraftBody,
        response: { 200: approvalSchema, ...problemResponses(...AUTHED_PROBLEMS, 403, 404, 409, 412) },
      },
    },
    async (request, reply) => {
      const result = await drafts.approve(
        authed(request),
        request.params.id,
        request.body,
        expectedVersionOf(request.headers['if-match']),
      );
      reply.header('etag', etagOf(result.ticket.version));
      return result;
    },
  );

  app.post(
    '/drafts/:id/reject',
    {
      config: { scope: 'tickets:write' },
      schema: {
        operationId: 'rejectDraft',
        tags: ['drafts'],
        summary: 'Reject a draft',
        description:
          'Staff; the draft is kept with its `reason`, decided. Audited as draft.rejected. Already decided → 409 DRAFT_DECIDED.',
        params: draftIdParams,
        body: rejectDraftBody,
        response: { 200: draftSchema, ...problemResponses(...AUTHED_PROBLEMS, 403, 404, 409) },
      },
    },
    async (request) => drafts.reject(authed(request), request.params.id, request.body),
  );
};
