import { randomUUID } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import type { FastifyInstance, FastifyServerOptions } from 'fastify';
import { LogController } from 'fastify';

const REQUEST_ID = /^[A-Za-z0-9._-]{1,128}$/;

/**
 * X-Request-Id: a well-formed inbound id is kept, otherwise one is made. It is the trace id of every
 * log line (traceId) and problem body of the request.
 */
export function requestIdOf(headers: IncomingHttpHeaders): string {
  const inbound = headers['x-request-id'];
  return typeof inbound === 'string' && REQUEST_ID.test(inbound) ? inbound : randomUUID();
}

/** Server options for Fastify(): the request id as above, logged as traceId. */
export const requestIdOptions: Pick<FastifyServerOptions, 'genReqId' | 'logController'> = {
  genReqId: (req) => requestIdOf(req.headers),
  logController: new LogController({ requestIdLogLabel: 'traceId' }),
};

/** Echoes the request id on every response. */
export function registerRequestIdHeader(app: FastifyInstance): void {
  app.addHook('onRequest', (request, reply, done) => {
    reply.header('x-request-id', request.id);
    done();
  });
}
