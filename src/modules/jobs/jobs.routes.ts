import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { JOB_STATES } from '../../db/schema/index.js';
import { AUTHED_PROBLEMS, problemResponses } from '../../http/problem.js';
import { authed } from '../../http/reply.js';
import type { JobsService } from './jobs.service.js';

export const jobSchema = z
  .object({
    id: z.string().describe('The job id (digits)'),
    kind: z.string().describe('What the job does, e.g. maintenance.purge'),
    state: z.enum(JOB_STATES),
    progress: z.object({ done: z.number().int(), total: z.number().int() }),
    result: z.unknown().nullable().describe('What the job returned, once it succeeded'),
    error: z.string().nullable().describe('The last error (kept when the job failed)'),
    createdAt: z.date(),
    finishedAt: z.date().nullable(),
  })
  .meta({ id: 'Job' });

export const jobsRoutes: FastifyPluginAsyncZod<{ jobs: JobsService }> = async (app, { jobs }) => {
  app.get(
    '/jobs/:id',
    {
      schema: {
        operationId: 'getJob',
        tags: ['jobs'],
        summary: 'A background job (its creator or an admin)',
        description: `State of a durable job: \`queued\` (waiting, or waiting for a retry after an error, which is
then shown in \`error\`), \`running\`, \`succeeded\` (with \`result\`) or \`failed\` (with the error kept). Jobs a
user started are visible to that user and to admins; system jobs to admins only, and once they succeeded only if
they were tracked. Anyone else gets 404.`,
        params: z.strictObject({ id: z.string().regex(/^[1-9][0-9]{0,17}$/, 'must be a job id (digits)') }),
        response: { 200: jobSchema, ...problemResponses(...AUTHED_PROBLEMS, 404) },
      },
    },
    async (request) => jobs.get(authed(request).actor, request.params.id),
  );
};
