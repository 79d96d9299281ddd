import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { AUTHED_PROBLEMS, problemResponses } from '../../http/problem.js';
import type { AuthedContext } from './actor.js';
import {
  apiTokenIdParams,
  apiTokenListSchema,
  createApiTokenBody,
  createdApiTokenSchema,
  listApiTokensQuery,
  toApiTokenDto,
} from './api-tokens.schemas.js';
import type { ApiTokensService } from './api-tokens.service.js';

const authed = (ctx: { actor: unknown }) => ctx as AuthedContext;
const SIGNED_IN_ONLY =
  'Needs a signed-in session (an access token from /auth/login); an API token gets 403 INSUFFICIENT_SCOPE, ' +
  'so a leaked token cannot mint more.';

// No `config.scope` on these routes: API tokens cannot manage API tokens.
export const apiTokenRoutes: FastifyPluginAsyncZod<{ tokens: ApiTokensService }> = async (
  app,
  { tokens },
) => {
  app.post(
    '/auth/tokens',
    {
      schema: {
        operationId: 'createApiToken',
        tags: ['auth'],
        summary: 'Create a personal API token',
        description:
          'A token for scripts and assistants: `Authorization: Bearer hd_pat_…`. It acts as you, limited to ' +
          'its scopes (a call outside them → 403 INSUFFICIENT_SCOPE) and never beyond your role; the `admin` ' +
          'scope is for admins only (422). The secret is in this response only and stored hashed. Expires ' +
          'after `expiresInDays` (1..365, default 90). At most 50 live tokens per user (409 TOKEN_LIMIT_REACHED). ' +
          `Revoked at once by DELETE, and stops working when your account is deactivated. ${SIGNED_IN_ONLY}`,
        body: createApiTokenBody,
        response: { 201: createdApiTokenSchema, ...problemResponses(...AUTHED_PROBLEMS, 403, 409) },
      },
    },
    async (request, reply) => {
      const { row, token } = await tokens.create(authed(request.ctx), request.body);
      return reply.code(201).send({ ...toApiTokenDto(row), token });
    },
  );

  app.get(
    '/auth/tokens',
    {
      schema: {
        operationId: 'listApiTokens',
        tags: ['auth'],
        summary: 'List your API tokens',
        description: `Your tokens that are not revoked (expired ones included), newest first; never the secret. ${SIGNED_IN_ONLY}`,
        querystring: listApiTokensQuery,
        response: { 200: apiTokenListSchema, ...problemResponses(...AUTHED_PROBLEMS, 403) },
      },
    },
    async (request, reply) => {
      const page = await tokens.list(authed(request.ctx), request.query);
      if (page.nextCursor) {
        const [path, search = ''] = request.url.split('?', 2);
        const params = new URLSearchParams(search);
        params.set('cursor', page.nextCursor);
        reply.header('link', `<${path}?${params.toString()}>; rel="next"`);
      }
      return { data: page.data.map(toApiTokenDto), nextCursor: page.nextCursor };
    },
  );

  app.delete(
    '/auth/tokens/:id',
    {
      schema: {
        operationId: 'revokeApiToken',
        tags: ['auth'],
        summary: 'Revoke an API token',
        description: `The very next request with the token is refused (401). 404 TOKEN_NOT_FOUND for an unknown, already revoked or someone else's token. ${SIGNED_IN_ONLY}`,
        params: apiTokenIdParams,
        response: {
          204: z.null().describe('Revoked'),
          ...problemResponses(...AUTHED_PROBLEMS, 403, 404),
        },
      },
    },
    async (request, reply) => {
      await tokens.revoke(authed(request.ctx), request.params.id);
      return reply.code(204).send(null);
    },
  );
};
