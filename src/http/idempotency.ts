import type { FastifyReply, FastifyRequest } from 'fastify';
import {
  fingerprint,
  type IdempotencyService,
  type Remember,
} from '../modules/idempotency/idempotency.service.js';
import { authed } from './reply.js';

declare module 'fastify' {
  interface FastifyInstance {
    idempotency: IdempotencyService;
  }
}

/**
 * Runs a create at most once per (caller, Idempotency-Key header): `run` receives the callback that
 * stores its result in the change's transaction. A retry of the same request answers the first result
 * again, byte for byte, marked `Idempotent-Replayed: true`; the route sets status and headers from the
 * returned value either way. The request is identified by the route's URL template, its params and body.
 */
export async function withIdempotency<T>(
  request: FastifyRequest,
  reply: FastifyReply,
  run: (remember: Remember<NoInfer<T>>) => Promise<T>,
): Promise<T> {
  const key = request.headers['idempotency-key'];
  const idem =
    typeof key === 'string'
      ? {
          userId: authed(request).actor.id,
          key,
          fingerprint: fingerprint(request.method, request.routeOptions.url ?? request.url, {
            params: request.params,
            body: request.body,
          }),
        }
      : null;
  const outcome = await request.server.idempotency.run(idem, run);
  if (!outcome.replayed) return outcome.result;
  sendReplay(reply, outcome.stored);
  return JSON.parse(outcome.stored) as T;
}

/** Marks the reply a replay and sends the stored JSON as it is, bypassing the schema serializer. */
function sendReplay(reply: FastifyReply, stored: string) {
  reply.header('idempotent-replayed', 'true').type('application/json; charset=utf-8');
  reply.serializer(() => stored);
}
