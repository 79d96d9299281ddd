import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { problemResponses } from '../../http/problem.js';
import type { HealthRepository } from './health.repository.js';

const statusSchema = z.object({ status: z.literal('ok') });

export const healthRoutes: FastifyPluginAsyncZod<{ health: HealthRepository }> = async (app, { health }) => {
  app.get(
    '/healthz',
    {
      schema: {
        operationId: 'getHealth',
        tags: ['health'],
        summary: 'Liveness',
        description: 'Answers 200 while the process is alive; does not touch the database.',
        security: [],
        response: { 200: statusSchema },
      },
    },
    async () => ({ status: 'ok' as const }),
  );

  app.get(
    '/readyz',
    {
      schema: {
        operationId: 'getReadiness',
        tags: ['health'],
        summary: 'Readiness',
        description:
          'Answers 200 when the database answers a query, else 503 SERVICE_UNAVAILABLE with Retry-After.',
        security: [],
        response: { 200: statusSchema.extend({ database: z.literal('up') }), ...problemResponses(503) },
      },
    },
    async () => {
      await health.checkDatabase();
      return { status: 'ok' as const, database: 'up' as const };
    },
  );
};
