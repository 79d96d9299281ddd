import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { AUTHED_PROBLEMS, problemResponses } from '../../http/problem.js';
import type { AuthedContext } from '../auth/actor.js';
import {
  createUserBody,
  listUsersQuery,
  toUserDto,
  updateUserBody,
  userIdParams,
  userListSchema,
  userSchema,
} from './users.schemas.js';
import type { UsersService } from './users.service.js';

const authed = (ctx: { actor: unknown }) => ctx as AuthedContext;

export const usersRoutes: FastifyPluginAsyncZod<{ users: UsersService }> = async (app, { users }) => {
  app.get(
    '/users',
    {
      config: { scope: 'users:read' },
      schema: {
        operationId: 'listUsers',
        tags: ['users'],
        summary: 'List users',
        description:
          'Admins: every user, filtered by `role`, `active` and `q` (substring of name or email). Agents: ' +
          'agents and admins only (to pick an assignee or a team member). Requesters: 403. Newest first; ' +
          'keyset pagination with the opaque `nextCursor`.',
        querystring: listUsersQuery,
        response: { 200: userListSchema, ...problemResponses(...AUTHED_PROBLEMS, 403) },
      },
    },
    async (request) => {
      const page = await users.list(authed(request.ctx), request.query);
      return { data: page.data.map(toUserDto), nextCursor: page.nextCursor };
    },
  );

  app.post(
    '/users',
    {
      config: { scope: 'admin' },
      schema: {
        operationId: 'createUser',
        tags: ['users'],
        summary: 'Create a user (admin)',
        description:
          'Admins create accounts with any role. Same password policy as sign-up (422 WEAK_PASSWORD); ' +
          '409 EMAIL_TAKEN when the email exists in any case.',
        body: createUserBody,
        response: { 201: userSchema, ...problemResponses(...AUTHED_PROBLEMS, 403, 409) },
      },
    },
    async (request, reply) => {
      const user = await users.create(authed(request.ctx), request.body);
      return reply.code(201).header('location', `/api/v1/users/${user.id}`).send(toUserDto(user));
    },
  );

  app.get(
    '/users/:id',
    {
      config: { scope: 'users:read' },
      schema: {
        operationId: 'getUser',
        tags: ['users'],
        summary: 'Get a user (admin)',
        description: 'Admins only; agents and requesters get 403 (use GET /auth/me for yourself).',
        params: userIdParams,
        response: { 200: userSchema, ...problemResponses(...AUTHED_PROBLEMS, 403, 404) },
      },
    },
    async (request) => toUserDto(await users.get(authed(request.ctx), request.params.id)),
  );

  app.patch(
    '/users/:id',
    {
      config: { scope: 'admin' },
      schema: {
        operationId: 'updateUser',
        tags: ['users'],
        summary: 'Update, change the role of, or deactivate a user (admin)',
        description:
          'Admins only. Users are never deleted: `active: false` deactivates (the user can no longer sign ' +
          'in or refresh, every refresh token is revoked, and access tokens already issued stop working ' +
          'within 5 seconds). `role` changes take effect on the next request. The last active admin cannot ' +
          'be demoted or deactivated (409 LAST_ADMIN).',
        params: userIdParams,
        body: updateUserBody,
        response: { 200: userSchema, ...problemResponses(...AUTHED_PROBLEMS, 403, 404, 409) },
      },
    },
    async (request) => toUserDto(await users.update(authed(request.ctx), request.params.id, request.body)),
  );
};
