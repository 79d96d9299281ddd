import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { AUTHED_PROBLEMS, problemResponses } from '../../http/problem.js';
import type { AuthedContext } from '../auth/actor.js';
import type { TeamWithMembers } from './teams.repository.js';
import {
  createTeamBody,
  listTeamsQuery,
  teamIdParams,
  teamListSchema,
  teamSchema,
  updateTeamBody,
} from './teams.schemas.js';
import type { TeamsService } from './teams.service.js';

const authed = (ctx: { actor: unknown }) => ctx as AuthedContext;
const toTeamDto = (t: TeamWithMembers) => ({ id: t.id, name: t.name, memberIds: t.memberIds });

export const teamsRoutes: FastifyPluginAsyncZod<{ teams: TeamsService }> = async (app, { teams }) => {
  app.get(
    '/teams',
    {
      config: { scope: 'users:read' },
      schema: {
        operationId: 'listTeams',
        tags: ['teams'],
        summary: 'List teams',
        description: 'Agents and admins; requesters get 403. Oldest first, keyset pagination (`nextCursor`).',
        querystring: listTeamsQuery,
        response: { 200: teamListSchema, ...problemResponses(...AUTHED_PROBLEMS, 403) },
      },
    },
    async (request) => {
      const page = await teams.list(authed(request.ctx), request.query);
      return { data: page.data.map(toTeamDto), nextCursor: page.nextCursor };
    },
  );

  app.get(
    '/teams/:id',
    {
      config: { scope: 'users:read' },
      schema: {
        operationId: 'getTeam',
        tags: ['teams'],
        summary: 'Get a team',
        description: 'Agents and admins; requesters get 403.',
        params: teamIdParams,
        response: { 200: teamSchema, ...problemResponses(...AUTHED_PROBLEMS, 403, 404) },
      },
    },
    async (request) => toTeamDto(await teams.get(authed(request.ctx), request.params.id)),
  );

  app.post(
    '/teams',
    {
      config: { scope: 'admin' },
      schema: {
        operationId: 'createTeam',
        tags: ['teams'],
        summary: 'Create a team (admin)',
        description:
          'Admins only. Names are unique case-insensitively (409 TEAM_NAME_TAKEN); members must be active ' +
          'agents or admins (422).',
        body: createTeamBody,
        response: { 201: teamSchema, ...problemResponses(...AUTHED_PROBLEMS, 403, 409) },
      },
    },
    async (request, reply) => {
      const team = await teams.create(authed(request.ctx), request.body);
      return reply.code(201).header('location', `/api/v1/teams/${team.id}`).send(toTeamDto(team));
    },
  );

  app.patch(
    '/teams/:id',
    {
      config: { scope: 'admin' },
      schema: {
        operationId: 'updateTeam',
        tags: ['teams'],
        summary: 'Rename a team or replace its members (admin)',
        description: '`memberIds` is the complete new member set. Admins only.',
        params: teamIdParams,
        body: updateTeamBody,
        response: { 200: teamSchema, ...problemResponses(...AUTHED_PROBLEMS, 403, 404, 409) },
      },
    },
    async (request) => toTeamDto(await teams.update(authed(request.ctx), request.params.id, request.body)),
  );
};
