import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { AUTHED_PROBLEMS, problemResponses } from '../../http/problem.js';
import { authed, setNextLink } from '../../http/reply.js';
import {
  createWebhookBody,
  deliveryParams,
  deliverySchema,
  pageQuery,
  patchWebhookBody,
  webhookIdParams,
  webhookSchema,
  webhookWithSecretSchema,
} from './webhooks.schemas.js';
import type { WebhooksService } from './webhooks.service.js';

const ADMIN = [...AUTHED_PROBLEMS, 403] as const;

const SENDING = `Deliveries follow the Standard Webhooks spec: a POST of \`{type, timestamp, data}\` (data = the change
event as staff see it, internal notes included) with headers \`webhook-id\` (the same on every retry of one
delivery), \`webhook-timestamp\` (unix seconds of the attempt) and \`webhook-signature\` (\`v1,<base64 HMAC-SHA256 of
"{id}.{timestamp}.{body}">\`; during the 24 h after a secret rotation one signature per secret, space-separated).
Verify with any Standard Webhooks library (npm \`standardwebhooks\`). A 2xx answer within 10 s is success; anything
else is retried after 5 s, 5 min, 30 min, 2 h, 5 h, 10 h and 10 h, then the delivery is \`failed\`. Redirects are not
followed. 410 Gone disables the webhook at once, and so do 5 days in which every delivery failed
(\`disabledReason\`); PATCH \`{active: true}\` re-enables it. URLs must reach a public address (loopback, private,
link-local and multicast targets are refused when the webhook is saved and again when a delivery connects).`;

export const webhookRoutes: FastifyPluginAsyncZod<{ webhooks: WebhooksService }> = async (
  app,
  { webhooks },
) => {
  app.post(
    '/webhooks',
    {
      config: { scope: 'admin' },
      schema: {
        operationId: 'createWebhook',
        tags: ['webhooks'],
        summary: 'Create a webhook (admin)',
        description: `The answer holds the signing \`secret\` (\`whsec_…\`): it is shown only now and at rotation.\n\n${SENDING}`,
        body: createWebhookBody,
        response: { 201: webhookWithSecretSchema, ...problemResponses(...ADMIN, 413) },
      },
    },
    async (request, reply) => {
      const created = await webhooks.create(authed(request), request.body);
      reply.header('location', `/api/v1/webhooks/${created.id}`);
      return reply.code(201).send(created);
    },
  );

  app.get(
    '/webhooks',
    {
      config: { scope: 'admin' },
      schema: {
        operationId: 'listWebhooks',
        tags: ['webhooks'],
        summary: 'List webhooks (admin)',
        description: 'Newest first; never a secret.',
        querystring: pageQuery,
        response: {
          200: z.object({ data: z.array(webhookSchema), nextCursor: z.string().nullable() }),
          ...problemResponses(...ADMIN),
        },
      },
    },
    async (request, reply) => {
      const page = await webhooks.list(authed(request), request.query);
      setNextLink(request, reply, page.nextCursor);
      return page;
    },
  );

  app.get(
    '/webhooks/:id',
    {
      config: { scope: 'admin' },
      schema: {
        operationId: 'getWebhook',
        tags: ['webhooks'],
        summary: 'Get a webhook (admin)',
        params: webhookIdParams,
        response: { 200: webhookSchema, ...problemResponses(...ADMIN, 404) },
      },
    },
    async (request) => webhooks.get(authed(request), request.params.id),
  );

  app.patch(
    '/webhooks/:id',
    {
      config: { scope: 'admin' },
      schema: {
        operationId: 'updateWebhook',
        tags: ['webhooks'],
        summary: 'Change a webhook (admin)',
        description: '`active: true` re-enables a webhook the server disabled and clears `disabledReason`.',
        params: webhookIdParams,
        body: patchWebhookBody,
        response: { 200: webhookSchema, ...problemResponses(...ADMIN, 404, 413) },
      },
    },
    async (request) => webhooks.update(authed(request), request.params.id, request.body),
  );

  app.delete(
    '/webhooks/:id',
    {
      config: { scope: 'admin' },
      schema: {
        operationId: 'deleteWebhook',
        tags: ['webhooks'],
        summary: 'Delete a webhook and its delivery log (admin)',
        params: webhookIdParams,
        response: { 204: z.null().describe('Deleted'), ...problemResponses(...ADMIN, 404) },
      },
    },
    async (request, reply) => {
      await webhooks.remove(authed(request), request.params.id);
      return reply.code(204).send(null);
    },
  );

  app.post(
    '/webhooks/:id/rotate-secret',
    {
      config: { scope: 'admin' },
      schema: {
        operationId: 'rotateWebhookSecret',
        tags: ['webhooks'],
        summary: 'Rotate the signing secret (admin)',
        description:
          'Returns the new secret (shown only now). For 24 h deliveries carry two signatures, one per secret, so receivers can switch without missing a message.',
        params: webhookIdParams,
        response: { 200: z.object({ secret: z.string() }), ...problemResponses(...ADMIN, 404) },
      },
    },
    async (request) => webhooks.rotateSecret(authed(request), request.params.id),
  );

  app.post(
    '/webhooks/:id/ping',
    {
      config: { scope: 'admin' },
      schema: {
        operationId: 'pingWebhook',
        tags: ['webhooks'],
        summary: 'Send a webhook.ping event (admin)',
        description: 'Queued like any delivery (see its delivery log); sent even to a disabled webhook.',
        params: webhookIdParams,
        response: { 202: z.object({ deliveryId: z.uuid() }), ...problemResponses(...ADMIN, 404) },
      },
    },
    async (request, reply) => reply.code(202).send(await webhooks.ping(authed(request), request.params.id)),
  );

  app.get(
    '/webhooks/:id/deliveries',
    {
      config: { scope: 'admin' },
      schema: {
        operationId: 'listWebhookDeliveries',
        tags: ['webhooks'],
        summary: 'The delivery log of a webhook (admin)',
        description:
          'Newest first: status, attempts, the last answer status and error (answers cut to 1 KB).',
        params: webhookIdParams,
        querystring: pageQuery,
        response: {
          200: z.object({ data: z.array(deliverySchema), nextCursor: z.string().nullable() }),
          ...problemResponses(...ADMIN, 404),
        },
      },
    },
    async (request, reply) => {
      const page = await webhooks.listDeliveries(authed(request), request.params.id, request.query);
      setNextLink(request, reply, page.nextCursor);
      return page;
    },
  );

  app.post(
    '/webhooks/:id/deliveries/:deliveryId/redeliver',
    {
      config: { scope: 'admin' },
      schema: {
        operationId: 'redeliverWebhookDelivery',
        tags: ['webhooks'],
        summary: 'Send a delivery again now (admin)',
        description: 'The same message (same `webhook-id` and body), one more attempt, now.',
        params: deliveryParams,
        response: { 202: z.null().describe('Queued'), ...problemResponses(...ADMIN, 404) },
      },
    },
    async (request, reply) => {
      await webhooks.redeliver(authed(request), request.params.id, request.params.deliveryId);
      return reply.code(202).send(null);
    },
  );
};
