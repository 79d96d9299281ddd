import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { AUTHED_PROBLEMS, problemResponses } from '../../http/problem.js';
import type { AuthedContext } from '../auth/actor.js';
import {
  createSlaPolicyBody,
  listSlaPoliciesQuery,
  slaPolicyIdParams,
  slaPolicyListSchema,
  slaPolicySchema,
  updateSlaPolicyBody,
} from './sla.schemas.js';
import type { SlaService } from './sla.service.js';

const authed = (ctx: unknown) => ctx as AuthedContext;

const POLICY_RULES = `The first policy by \`position\` (then oldest first) whose \`appliesTo\` matches a ticket governs it
(an absent or null \`teamId\`/\`type\` matches every ticket). Due times count business minutes of \`businessHours\`
(intervals per weekday in local time of an IANA timezone, DST-correct; holidays as local dates), or every minute
when \`businessHours\` is null. A ticket's policy is chosen at creation and chosen again when its priority, team or
type changes; editing or deleting a policy does not move due times already computed until then.`;

export const slaRoutes: FastifyPluginAsyncZod<{ sla: SlaService }> = async (app, { sla }) => {
  app.get(
    '/sla-policies',
    {
      config: { scope: 'tickets:read' },
      schema: {
        operationId: 'listSlaPolicies',
        tags: ['sla'],
        summary: 'List SLA policies',
        description: `Agents and admins; requesters get 403. In matching order (position, then creation).\n\n${POLICY_RULES}`,
        querystring: listSlaPoliciesQuery,
        response: { 200: slaPolicyListSchema, ...problemResponses(...AUTHED_PROBLEMS, 403) },
      },
    },
    async (request) => sla.list(authed(request.ctx), request.query),
  );

  app.get(
    '/sla-policies/:id',
    {
      config: { scope: 'tickets:read' },
      schema: {
        operationId: 'getSlaPolicy',
        tags: ['sla'],
        summary: 'Get an SLA policy',
        description: 'Agents and admins; requesters get 403.',
        params: slaPolicyIdParams,
        response: { 200: slaPolicySchema, ...problemResponses(...AUTHED_PROBLEMS, 403, 404) },
      },
    },
    async (request) => sla.get(authed(request.ctx), request.params.id),
  );

  app.post(
    '/sla-policies',
    {
      config: { scope: 'admin' },
      schema: {
        operationId: 'createSlaPolicy',
        tags: ['sla'],
        summary: 'Create an SLA policy (admin)',
        description: `Admins only; audited \`sla_policy.created\`. Times are \`HH:MM\` (an interval may end at \`24:00\`),
each day's intervals in order and not overlapping; the timezone an IANA name; holidays \`YYYY-MM-DD\`; targets
1..525600 minutes per priority.\n\n${POLICY_RULES}`,
        body: createSlaPolicyBody,
        response: { 201: slaPolicySchema, ...problemResponses(...AUTHED_PROBLEMS, 403) },
      },
    },
    async (request, reply) => {
      const policy = await sla.create(authed(request.ctx), request.body);
      return reply.code(201).header('location', `/api/v1/sla-policies/${policy.id}`).send(policy);
    },
  );

  app.patch(
    '/sla-policies/:id',
    {
      config: { scope: 'admin' },
      schema: {
        operationId: 'updateSlaPolicy',
        tags: ['sla'],
        summary: 'Change an SLA policy (admin)',
        description:
          'Admins only; audited `sla_policy.updated` with the fields that changed. A field sent replaces the stored one whole (`targets`, `businessHours`, `appliesTo`).',
        params: slaPolicyIdParams,
        body: updateSlaPolicyBody,
        response: { 200: slaPolicySchema, ...problemResponses(...AUTHED_PROBLEMS, 403, 404) },
      },
    },
    async (request) => sla.update(authed(request.ctx), request.params.id, request.body),
  );

  app.delete(
    '/sla-policies/:id',
    {
      config: { scope: 'admin' },
      schema: {
        operationId: 'deleteSlaPolicy',
        tags: ['sla'],
        summary: 'Delete an SLA policy (admin)',
        description:
          'Admins only; audited `sla_policy.deleted`. Tickets it governed keep their due times until their priority, team or type changes.',
        params: slaPolicyIdParams,
        response: { 204: z.null().describe('Deleted'), ...problemResponses(...AUTHED_PROBLEMS, 403, 404) },
      },
    },
    async (request, reply) => {
      await sla.remove(authed(request.ctx), request.params.id);
      return reply.code(204).send(null);
    },
  );
};
