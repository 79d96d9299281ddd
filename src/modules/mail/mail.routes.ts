import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { AUTHED_PROBLEMS, problemResponses } from '../../http/problem.js';
import type { AuthedContext } from '../auth/actor.js';
import type { MailService } from './mail.service.js';

const KINDS = [
  'ticketCreated',
  'publicReply',
  'ticketSolved',
  'requesterReply',
  'assigned',
  'slaBreach',
] as const;

const DESCRIPTIONS: Record<(typeof KINDS)[number], string> = {
  ticketCreated: 'Receipt for your own new tickets; for agents, new tickets of their teams',
  publicReply: 'A public staff reply on a ticket you requested',
  ticketSolved: 'A ticket you requested was solved',
  requesterReply: 'The requester replied on a ticket assigned to you',
  assigned: 'Someone else assigned a ticket to you',
  slaBreach: 'A ticket assigned to you (or unassigned in your team) missed an SLA target',
};

export const notificationPreferencesSchema = z
  .object(
    Object.fromEntries(KINDS.map((k) => [k, z.boolean().describe(DESCRIPTIONS[k])])) as {
      [K in (typeof KINDS)[number]]: z.ZodBoolean;
    },
  )
  .meta({
    id: 'NotificationPreferences',
    example: {
      ticketCreated: true,
      publicReply: true,
      ticketSolved: true,
      requesterReply: true,
      assigned: true,
      slaBreach: false,
    },
  });

export const notificationPreferencesPatch = z
  .strictObject(
    Object.fromEntries(KINDS.map((k) => [k, z.boolean().optional()])) as {
      [K in (typeof KINDS)[number]]: z.ZodOptional<z.ZodBoolean>;
    },
  )
  .refine((b) => Object.keys(b).length > 0, { message: 'send at least one preference' })
  .meta({ minProperties: 1, example: { slaBreach: false } });

const authed = (ctx: { actor: unknown }) => ctx as AuthedContext;

export const mailRoutes: FastifyPluginAsyncZod<{ mail: MailService }> = async (app, { mail }) => {
  app.get(
    '/auth/me/notifications',
    {
      schema: {
        operationId: 'getNotificationPreferences',
        tags: ['auth'],
        summary: 'Your email notification switches',
        description:
          'Which notification emails you receive. Every switch is on until you turn it off. Mail is never ' +
          'sent for your own actions (except the receipt for a ticket you open), nor to a deactivated account.',
        response: { 200: notificationPreferencesSchema, ...problemResponses(...AUTHED_PROBLEMS) },
      },
    },
    async (request) => mail.getPreferences(authed(request.ctx)),
  );

  app.patch(
    '/auth/me/notifications',
    {
      schema: {
        operationId: 'updateNotificationPreferences',
        tags: ['auth'],
        summary: 'Change your email notification switches',
        description:
          'Send the switches to change (booleans); the others stay as they are. Answers with all of them. ' +
          'Audited as `user.notifications_updated`.',
        body: notificationPreferencesPatch,
        response: { 200: notificationPreferencesSchema, ...problemResponses(...AUTHED_PROBLEMS) },
      },
    },
    async (request) => mail.updatePreferences(authed(request.ctx), request.body),
  );
};
