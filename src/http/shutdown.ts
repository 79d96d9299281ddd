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

/** Whether the server drains; read by the liveness fast path (src/http/liveness.ts) too. */
export interface DrainState {
  draining: boolean;
}

export function registerDraining(app: FastifyInstance, state: DrainState): void {
  app.decorate('startDraining', () => {
    state.draining = true;
  });
  // Callback hooks: they run on every request and almost always have nothing to do.
  app.addHook('onRequest', (request, _reply, done) => {
    if (state.draining && request.routeOptions.url === '/readyz') {
      done(new ServiceUnavailableError('The server is shutting down.', 5));
      return;
    }
    done();
  });
  app.addHook('onSend', (_request, reply, payload, done) => {
    if (state.draining) reply.header('connection', 'close');
    done(null, payload);
  });
}
