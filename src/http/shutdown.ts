import type { FastifyInstance } from 'fastify';
import { ServiceUnavailableError } from '../lib/errors.js';

declare module 'fastify' {
  interface FastifyInstance {
    /**
     * First step of a graceful shutdown: keep serving, but report not-ready (/readyz 503) so a load
     * balancer stops sending new traffic, and answer with `Connection: close` so clients stop reusing
     * kept-alive sockets (which closing the server would otherwise cut under a request being sent).
     */
    startDraining(): void;
  }
}

export function registerDraining(app: FastifyInstance): void {
  let draining = false;
  app.decorate('startDraining', () => {
    draining = true;
  });
  // Callback hooks: they run on every request and almost always have nothing to do.
  app.addHook('onRequest', (request, _reply, done) => {
    if (draining && request.routeOptions.url === '/readyz') {
      done(new ServiceUnavailableError('The server is shutting down.', 5));
      return;
    }
    done();
  });
  app.addHook('onSend', (_request, reply, payload, done) => {
    if (draining) reply.header('connection', 'close');
    done(null, payload);
  });
}
