import type { FastifyReply, FastifyRequest } from 'fastify';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { AUTHED_PROBLEMS, problemResponses } from '../../http/problem.js';
import { authed } from '../../http/reply.js';
import { AppError, UnauthenticatedError } from '../../lib/errors.js';
import type { AccessClaims } from '../auth/token-signer.js';
import type { ChangeHub } from './change-hub.js';
import { LiveStream } from './change-stream.js';
import { comparePositions } from './changes.repository.js';
import { changesPageSchema, listChangesQuery, streamQuery, streamTokenSchema } from './changes.schemas.js';
import { type ChangesService, decodeCursor } from './changes.service.js';

export interface ChangesRoutesOptions {
  changes: ChangesService;
  hub: ChangeHub;
  /** A session access token's signature, expiry and kind (no database read); throws the 401. */
  verifyAccessClaims(token: string): AccessClaims & { exp: number };
  stream: { retryMs: number; bufferBytes: number; streamsPerUser: number };
}

class TooManyStreamsError extends AppError {
  constructor(max: number) {
    super(
      429,
      'TOO_MANY_STREAMS',
      'Too many streams',
      `At most ${max} open change streams per user; close one (or share one between tabs) first.`,
      { headers: { 'retry-after': '5' } },
    );
  }
}

function bearerOf(request: FastifyRequest): string | null {
  const header = request.headers.authorization;
  return header && /^Bearer\s+\S+$/i.test(header) ? header.replace(/^Bearer\s+/i, '') : null;
}

function setAfterLink(request: FastifyRequest, reply: FastifyReply, cursor: string) {
  const [path, search = ''] = request.url.split('?', 2);
  const params = new URLSearchParams(search);
  params.set('after', cursor);
  reply.header('link', `<${path}?${params.toString()}>; rel="next"`);
}

const STREAM_DESCRIPTION = `Server-Sent Events: one frame per change the caller may see, \`id:\` (the event's cursor),
\`event:\` (its type) and \`data:\` (the ChangeEvent as JSON), in feed order. Authenticate with
\`Authorization: Bearer <accessToken>\`, or — for EventSource, which cannot send headers — with \`?token=\` from
POST /changes/stream-tokens (single use, 60 s). Resume without loss with \`Last-Event-ID\` (EventSource sends it
on reconnect) or \`?after=\`; without either the stream starts at the present. A comment line (\`: heartbeat\`)
every 15 s keeps proxies from timing out; the first frame is a \`retry:\` hint. A change committed on any
instance arrives within about a second (PostgreSQL LISTEN/NOTIFY). The stream ends with an \`event: close\` frame
whose data names the reason: \`session ended\` (the access token would now be refused: expiry, logout,
deactivation — noticed within 5 s), \`slow consumer\` (the client stopped reading and its buffer filled) or
\`server shutting down\`. Filters and visibility are those of GET /changes. At most CHANGES_STREAMS_PER_USER
streams per user per instance → 429 TOO_MANY_STREAMS.`;

export const changesRoutes: FastifyPluginAsyncZod<ChangesRoutesOptions> = async (app, opts) => {
  const { changes, hub } = opts;

  app.get(
    '/changes',
    {
      config: { scope: 'tickets:read' },
      schema: {
        operationId: 'listChanges',
        tags: ['changes'],
        summary: 'The change feed',
        description: `Ticket, comment and attachment changes in commit order, oldest first, filtered to what the caller
may see: a requester gets only events of tickets they requested, never an internal note, its attachments, a draft
or a staff-only event; \`data\` holds the entity as the caller may see it. Poll with \`after=nextCursor\`: a cursor
never skips or repeats an event, even when transactions commit out of id order (\`nextCursor\` is always present;
\`Link: rel="next"\` is sent when more events are already waiting). Events are kept CHANGES_RETENTION_DAYS (≥ 7);
an older cursor → 410 CURSOR_EXPIRED.`,
        querystring: listChangesQuery,
        response: { 200: changesPageSchema, ...problemResponses(...AUTHED_PROBLEMS, 410) },
      },
    },
    async (request, reply) => {
      const page = await changes.list(authed(request).actor, request.query);
      if (page.more) setAfterLink(request, reply, page.nextCursor);
      return { data: page.data, nextCursor: page.nextCursor };
    },
  );

  app.post(
    '/changes/stream-tokens',
    {
      config: { scope: 'tickets:read' },
      schema: {
        operationId: 'createStreamToken',
        tags: ['changes'],
        summary: 'A single-use token to open the live stream from a browser',
        description: `EventSource cannot send an Authorization header: open \`GET /changes/stream?token=…\` with this
token instead. Single use, valid 60 s; the stream it opens ends when the access token that asked for it would be
refused (expiry, logout, deactivation). Never logged.`,
        response: { 201: streamTokenSchema, ...problemResponses(...AUTHED_PROBLEMS) },
      },
    },
    async (request, reply) => {
      const ctx = authed(request);
      reply.code(201);
      return changes.createStreamToken(ctx.actor, bearerOf(request)!);
    },
  );

  app.get(
    '/changes/stream',
    {
      schema: {
        operationId: 'streamChanges',
        tags: ['changes'],
        summary: 'Live change stream (Server-Sent Events)',
        description: STREAM_DESCRIPTION,
        querystring: streamQuery,
        headers: z.object({
          'last-event-id': z.string().max(64).optional().describe('The id of the last event received'),
        }),
        response: {
          200: {
            description: 'An endless text/event-stream',
            content: {
              'text/event-stream': {
                schema: z.string().meta({
                  example:
                    'retry: 3000\n\nid: 48213-1907\nevent: ticket.status_changed\ndata: {"id":"48213-1907","type":"ticket.status_changed",…}\n\n: heartbeat\n\n',
                }),
              },
            },
          },
          ...problemResponses(...AUTHED_PROBLEMS, 410),
        },
      },
    },
    async (request, reply) => {
      // Authenticated here, not by the global hook: a header or a single-use query token.
      const bearer = bearerOf(request);
      let accessToken: string | null = bearer;
      if (!accessToken && request.query.token) {
        accessToken = await changes.redeemStreamToken(request.query.token);
        if (!accessToken) {
          throw new UnauthenticatedError(
            'The stream token is invalid, expired or already used; ask for a new one.',
          );
        }
      }
      if (!accessToken) {
        throw new UnauthenticatedError(
          'Send Authorization: Bearer <accessToken>, or ?token= from POST /api/v1/changes/stream-tokens.',
        );
      }
      // The token here, its session and user through the hub: checks of streams opening together share a query.
      const claims = opts.verifyAccessClaims(accessToken);
      const actor = await hub.sessions.check(claims.sid, claims.sub);
      if (!actor) {
        throw new UnauthenticatedError('The session has ended or the account is deactivated; sign in again.');
      }
      request.ctx.actor = actor;

      const lastEventId = request.headers['last-event-id'];
      const from = lastEventId
        ? decodeCursor(lastEventId, 'headers.last-event-id')
        : request.query.after
          ? decodeCursor(request.query.after)
          : null;
      if (from) await changes.assertNotExpired(from);
      await hub.start();
      const cursor = from ?? (await hub.livePosition());
      if (!hub.reserve(actor.id)) throw new TooManyStreamsError(opts.stream.streamsPerUser);

      reply.hijack();
      const res = reply.raw;
      res.writeHead(200, {
        ...(reply.getHeaders() as Record<string, string>),
        'content-type': 'text/event-stream; charset=utf-8',
        'cache-control': 'no-cache, no-store',
        'x-accel-buffering': 'no',
        connection: 'keep-alive',
      });
      request.raw.socket.setTimeout(0);
      request.raw.socket.setNoDelay(true);
      res.write(`retry: ${opts.stream.retryMs}\n\n`);

      const filters = { types: request.query.types, ticketId: request.query.ticketId };
      const session = { sessionId: claims.sid, userId: claims.sub, expiresAtMs: claims.exp * 1000 };
      const stream = new LiveStream(res, actor, session, filters, cursor, {
        bufferBytes: opts.stream.bufferBytes,
        onClose: (s, reason) => {
          hub.remove(s);
          hub.release(actor.id);
          request.log.info({ reason, userId: actor.id }, 'change stream closed');
        },
      });
      hub.add(stream);
      // A new stream starts where the hub stands: it is level already, no catch-up query at all.
      if (!from && hub.current && comparePositions(hub.current, cursor) === 0) {
        stream.live = true;
        return;
      }

      // Catch up through the feed (the caller's view), then go live once level with the hub.
      try {
        for (;;) {
          const page = await changes.list(stream.actor, { ...filters, from: stream.cursor, limit: 500 });
          if (stream.closed) return;
          for (const event of page.data) stream.send(event);
          stream.cursor = page.position;
          if (page.more) continue;
          const live = hub.current;
          if (live && comparePositions(live, stream.cursor) > 0) continue;
          stream.live = true;
          return;
        }
      } catch (err) {
        request.log.warn({ err }, 'change stream catch-up failed');
        stream.close('error');
      }
    },
  );
};
