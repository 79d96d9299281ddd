import fastifySwagger from '@fastify/swagger';
import fastifySwaggerUi from '@fastify/swagger-ui';
import type { FastifyInstance } from 'fastify';
import { jsonSchemaTransform, jsonSchemaTransformObject } from 'fastify-type-provider-zod';

export const API_DESCRIPTION = `Self-hosted helpdesk / ticketing API.

* Authenticate with \`POST /api/v1/auth/login\`, then send \`Authorization: Bearer <accessToken>\`.
* Every error is RFC 9457 \`application/problem+json\` with a machine \`code\` and the request's \`traceId\`.
* Send \`X-Request-Id\` to correlate your logs with ours; it is echoed on every response.
* Unknown body fields are rejected (422 VALIDATION_FAILED), never silently ignored.`;

/**
 * OpenAPI 3.1 generated from the routes' zod schemas (fastify-type-provider-zod's transforms),
 * served at /openapi.json, with Swagger UI at /docs (assets bundled, no CDN).
 * Must be registered before the routes it documents.
 */
export async function registerDocs(app: FastifyInstance, version: string) {
  await app.register(fastifySwagger, {
    openapi: {
      openapi: '3.1.0',
      info: { title: 'Helpdesk API', version, description: API_DESCRIPTION },
      servers: [{ url: '/' }],
      tags: [
        { name: 'auth', description: 'Login, tokens and the current user' },
        { name: 'tickets', description: 'Tickets, their lifecycle and timeline' },
        { name: 'comments', description: 'Public replies and internal notes' },
        { name: 'attachments', description: 'Files on tickets and comments' },
        { name: 'users', description: 'User management' },
        { name: 'teams', description: 'Teams of agents' },
        { name: 'audit', description: 'The audit trail' },
        { name: 'health', description: 'Liveness, readiness and metrics' },
      ],
      components: {
        securitySchemes: {
          bearerAuth: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT' },
        },
      },
      security: [{ bearerAuth: [] }],
    },
    transform: jsonSchemaTransform,
    transformObject: jsonSchemaTransformObject,
  });

  await app.register(fastifySwaggerUi, {
    routePrefix: '/docs',
    uiConfig: { docExpansion: 'list', deepLinking: true, persistAuthorization: true },
    staticCSP: true,
  });

  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());
}
