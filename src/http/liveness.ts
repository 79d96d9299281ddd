import http from 'node:http';
import type { FastifyServerOptions } from 'fastify';
import { requestIdOf } from './request-id.js';
import { helmetHeaders } from './security.js';

const BODY = Buffer.from('{"status":"ok"}');

/**
 * The HTTP server, with `GET /healthz` (and HEAD) answered before the framework sees it. A liveness
 * probe is asked every few seconds by every orchestrator and load balancer and only says "this process
 * still answers": it needs no routing, hooks, auth, metrics or logging, and it should keep answering
 * while the app sheds load. It carries what every response carries: X-Request-Id and the security
 * headers, and `Connection: close` while the server drains. Anything else (a query string, another
 * method) goes to the app, which also serves `/healthz` to `inject()` and documents it.
 *
 * The timeouts are Fastify's options for the server it would have made: it does not apply them to a
 * factory's server.
 */
export function livenessServerFactory(opts: {
  draining: () => boolean;
  keepAliveTimeout: number;
  requestTimeout: number;
  connectionTimeout: number;
}): NonNullable<FastifyServerOptions['serverFactory']> {
  const security = Object.entries(helmetHeaders());
  return (handler) => {
    const server = http.createServer((req, res) => {
      if (req.url === '/healthz' && (req.method === 'GET' || req.method === 'HEAD')) {
        res.statusCode = 200;
        for (const [name, value] of security) res.setHeader(name, value);
        res.setHeader('x-request-id', requestIdOf(req.headers));
        res.setHeader('content-type', 'application/json; charset=utf-8');
        res.setHeader('content-length', BODY.length);
        if (opts.draining()) res.setHeader('connection', 'close');
        res.end(req.method === 'GET' ? BODY : undefined);
        return;
      }
      handler(req, res);
    });
    server.keepAliveTimeout = opts.keepAliveTimeout;
    server.requestTimeout = opts.requestTimeout;
    server.setTimeout(opts.connectionTimeout);
    return server;
  };
}
