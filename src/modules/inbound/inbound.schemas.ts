import { z } from 'zod';

export const inboundCreatedSchema = z
  .object({
    action: z
      .enum(['created', 'replied'])
      .describe('created: a new ticket; replied: a public comment on an existing ticket'),
    ticketId: z.number().int(),
    commentId: z.uuid().nullable().describe('The new comment (replied), null for a new ticket'),
  })
  .meta({
    id: 'InboundEmailProcessed',
    example: { action: 'replied', ticketId: 1042, commentId: '3f2a1b0c-9d8e-4f7a-8b6c-5d4e3f2a1b0c' },
  });
export type InboundCreated = z.infer<typeof inboundCreatedSchema>;

export const IGNORE_REASONS = [
  'auto_submitted',
  'auto_reply',
  'bulk',
  'bounce',
  'own_address',
  'no_sender',
  'sender_deactivated',
  'unknown_sender',
] as const;

export const inboundIgnoredSchema = z
  .object({
    action: z.literal('ignored'),
    reason: z
      .enum(IGNORE_REASONS)
      .describe(
        'auto_submitted (Auto-Submitted other than "no"), auto_reply (X-Autoreply and the like), bulk ' +
          '(Precedence bulk/junk/auto_reply), bounce (null Return-Path, MAILER-DAEMON, delivery reports), ' +
          'own_address (sent from the helpdesk itself), no_sender, sender_deactivated, unknown_sender ' +
          '(INBOUND_CREATE_REQUESTERS=false)',
      ),
  })
  .meta({ id: 'InboundEmailIgnored', example: { action: 'ignored', reason: 'auto_submitted' } });
export type InboundIgnored = z.infer<typeof inboundIgnoredSchema>;

export type InboundResult =
  | { status: 201; body: InboundCreated; replayed: boolean }
  | { status: 202; body: InboundIgnored; replayed: boolean };
