import { timingSafeEqual } from 'node:crypto';
import type { FastifySchemaCompiler } from 'fastify';
import { type FastifyPluginAsyncZod, validatorCompiler } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { COMMON_PROBLEMS, problemResponses } from '../../http/problem.js';
import { NotFoundError, UnauthenticatedError, UnsupportedMediaTypeError } from '../../lib/errors.js';
import { inboundCreatedSchema, inboundIgnoredSchema } from './inbound.schemas.js';
import type { InboundService } from './inbound.service.js';

export interface InboundRoutesOptions {
  inbound: InboundService;
  /** INBOUND_EMAIL_TOKEN; undefined → the route answers 404 as if it did not exist. */
  token: string | undefined;
  maxBytes: number;
}

/** The body is raw bytes handed to the mail parser as they are; its schema is documentation only. */
// biome-ignore lint/suspicious/noExplicitAny: the route's schema type is the whole route schema object.
const docsOnlyBody: FastifySchemaCompiler<any> = (req) =>
  req.httpPart === 'body' ? (value: unknown) => ({ value }) : validatorCompiler(req);

/** Constant-time comparison (of SHA-256-sized inputs would leak length only; tokens are compared whole). */
function sameToken(given: string, expected: string): boolean {
  const a = Buffer.from(given);
  const b = Buffer.from(expected);
  return a.length === b.length && timingSafeEqual(a, b);
}

export const inboundRoutes: FastifyPluginAsyncZod<InboundRoutesOptions> = async (app, opts) => {
  const { inbound, token, maxBytes } = opts;
  // Only this plugin's route reads message/rfc822, as bytes.
  app.addContentTypeParser('message/rfc822', { parseAs: 'buffer', bodyLimit: maxBytes }, (_req, body, done) =>
    done(null, body),
  );

  app.post(
    '/inbound/email',
    {
      validatorCompiler: docsOnlyBody,
      bodyLimit: maxBytes,
      // Before the body is read: without a token the route does not exist; with one, the caller must send it.
      onRequest: async (request) => {
        if (!token)
          throw new NotFoundError(
            'NOT_FOUND',
            'Not found',
            'Inbound email is not enabled (INBOUND_EMAIL_TOKEN).',
          );
        const m = /^Bearer\s+(\S+)$/i.exec(request.headers.authorization ?? '');
        if (!m || !sameToken(m[1]!, token))
          throw new UnauthenticatedError(
            'Send the inbound email token: Authorization: Bearer <INBOUND_EMAIL_TOKEN>.',
          );
      },
      schema: {
        operationId: 'receiveInboundEmail',
        tags: ['inbound'],
        summary: 'Receive an email (tickets and replies by mail)',
        description: `For a mail server's pipe or a provider's forwarder: the body is one raw RFC 5322 message, \`Content-Type: message/rfc822\`, authenticated by \`Authorization: Bearer <INBOUND_EMAIL_TOKEN>\` (compared in constant time). Without INBOUND_EMAIL_TOKEN the route answers 404. At most ${maxBytes} bytes (one upload's worth of base64 plus headroom) → else 413.

* **Ignored → 202** \`{action: "ignored", reason}\` (audited as \`inbound_email.ignored\`): \`Auto-Submitted\` other than \`no\`, \`Precedence: bulk|junk|auto_reply\`, \`X-Autoreply\`, bounces (empty Return-Path, MAILER-DAEMON/postmaster, delivery reports), mail from the helpdesk's own addresses, a deactivated sender, or an unknown sender when \`INBOUND_CREATE_REQUESTERS=false\`.
* **Reply → 201** \`{action: "replied", ticketId, commentId}\`: a public comment by the sender on the ticket named by the signed Reply-To address it was sent to, by In-Reply-To/References naming one of our messages, or by \`[#N]\` in the subject — only when the sender may reply to that ticket (its requester, or staff); otherwise the mail becomes a ticket of its own. A requester's reply reopens a pending or solved ticket, as on the web. A reply to a closed ticket starts a new ticket that names it (\`Follow-up to #N\`).
* **New → 201** \`{action: "created", ticketId, commentId: null}\`: a ticket from the sender (subject → title, text → description); an unknown sender gets a requester account without a password, claimed through a password reset.
* The text part is preferred; HTML-only mail is turned into text. Quoted history and signatures are cut. Attachments and inline images go through the upload checks (type from the content, size, daily quota); refused files are listed in the text, the mail is kept.
* The same Message-ID twice (or, without one, the same bytes) is processed once: the repeat gets the first answer with \`Idempotent-Replayed: true\`. All of a mail's effects commit together or not at all.
* A body that cannot be read as a message → 422 INVALID_MESSAGE; another Content-Type → 415.`,
        security: [{ inboundToken: [] }],
        consumes: ['message/rfc822'],
        body: z
          .string()
          .meta({ format: 'binary' })
          .describe('The raw message as received (headers and body, CRLF or LF line ends)'),
        response: {
          201: inboundCreatedSchema,
          202: inboundIgnoredSchema,
          ...problemResponses(...COMMON_PROBLEMS, 401, 404, 413, 415),
        },
      },
    },
    async (request, reply) => {
      if (!Buffer.isBuffer(request.body) || request.body.length === 0)
        throw new UnsupportedMediaTypeError('Send the raw email with Content-Type: message/rfc822.');
      const result = await inbound.receive(request.ctx, request.body);
      if (result.replayed) reply.header('idempotent-replayed', 'true');
      return reply.code(result.status).send(result.body);
    },
  );
};
