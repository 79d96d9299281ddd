import { z } from 'zod';
import { CHANGE_TYPES } from '../changes/changes.service.js';

/** Change event types a webhook can subscribe to (those of GET /changes), plus the ping. */
export const WEBHOOK_EVENT_TYPES = CHANGE_TYPES;
export const PING_EVENT = 'webhook.ping';

const url = z
  .url({ protocol: /^https?$/, hostname: z.regexes.hostname })
  .max(2048)
  .describe('Where deliveries are POSTed: http(s), a public address (https only in production)');
const events = z
  .array(z.enum([...WEBHOOK_EVENT_TYPES, '*']))
  .min(1)
  .max(WEBHOOK_EVENT_TYPES.length)
  .transform((e) => (e.includes('*') ? ['*'] : [...new Set(e)].sort()))
  .describe('Event types to receive, or ["*"] for all');
const description = z.string().trim().max(500).nullable();

export const webhookIdParams = z.strictObject({ id: z.uuid() });
export const deliveryParams = z.strictObject({ id: z.uuid(), deliveryId: z.uuid() });

export const createWebhookBody = z
  .strictObject({
    url,
    events,
    description: description.optional(),
    active: z.boolean().default(true),
  })
  .meta({
    example: { url: 'https://hooks.example.com/helpdesk', events: ['ticket.created', 'comment.created'] },
  });
export type CreateWebhookInput = z.infer<typeof createWebhookBody>;

export const patchWebhookBody = z
  .strictObject({
    url: url.optional(),
    events: events.optional(),
    description: description.optional(),
    active: z.boolean().optional().describe('true re-enables a disabled webhook (clears disabledReason)'),
  })
  .refine((b) => Object.values(b).some((v) => v !== undefined), { message: 'Send at least one field.' })
  .meta({ minProperties: 1, example: { active: true, events: ['ticket.created', 'comment.created'] } });
export type PatchWebhookInput = z.infer<typeof patchWebhookBody>;

export const webhookSchema = z
  .object({
    id: z.uuid(),
    url: z.string(),
    events: z.array(z.string()),
    description: z.string().nullable(),
    active: z.boolean(),
    disabledReason: z
      .string()
      .nullable()
      .describe('Why the server disabled it (410 Gone, 5 days of failures)'),
    createdAt: z.date(),
    updatedAt: z.date(),
  })
  .meta({ id: 'Webhook' });
export type WebhookDto = z.infer<typeof webhookSchema>;

export const webhookWithSecretSchema = webhookSchema
  .extend({
    secret: z
      .string()
      .describe('whsec_…: shown only now; verify signatures with it (any Standard Webhooks library)'),
  })
  .meta({ id: 'WebhookWithSecret' });

export const deliverySchema = z
  .object({
    id: z.uuid(),
    eventId: z.string(),
    eventType: z.string(),
    status: z.enum(['pending', 'succeeded', 'failed']),
    attempts: z.number().int(),
    lastResponseStatus: z.number().int().nullable(),
    lastError: z
      .string()
      .nullable()
      .describe('The last failure: network error, timeout, or the answer (first 1 KB)'),
    nextAttemptAt: z.date().nullable(),
    createdAt: z.date(),
    updatedAt: z.date(),
  })
  .meta({ id: 'WebhookDelivery' });
export type DeliveryDto = z.infer<typeof deliverySchema>;

export const pageQuery = z.strictObject({
  limit: z.coerce.number().int().min(1).max(100).default(25),
  cursor: z.string().min(1).max(2048).optional(),
});
