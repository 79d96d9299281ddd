import http from 'node:http';
import type { FastifyServerOptions } from 'fastify';
import { requestIdOf } from './request-id.js';

const BODY = Buffer.from('{"status":"ok"}');

/** Built once: a flat [name, value, …] list for writeHead, not a header object per request. */
const FIXED = [
  'content-type',
  'application/json; charset=utf-8',
  'content-length',
  String(BODY.length),
  'x-content-type-options',
  'nosniff',
  'cache-control',
  'no-store',
];

/**
 * The HTTP server, with `GET /healthz` (and HEAD) from a probe answered before the framework sees it. A
 * liveness probe is asked every few seconds by every orchestrator and load balancer and only says "this
 * process still answers": it needs no routing, hooks, auth, metrics or logging, and it should keep
 * answering while the app sheds load. Its answer carries X-Request-Id (as every response does),
 * `nosniff` and `no-store`, and `Connection: close` while the server drains; not the headers that only
 * mean something to a browser rendering a document (CSP, frame options, HSTS: they cost a probe a quarter
 * of its time). A request with an `Origin` (a browser's, which gets CORS), a query string or another
 * method goes to the app, which also serves `/healthz` to `inject()` and documents it.
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
  return (handler) => {
    const server = http.createServer((req, res) => {
      if (
        req.url === '/healthz' &&
        (req.method === 'GET' || req.method === 'HEAD') &&
        req.headers.origin === undefined
      ) {
        const headers = [...FIXED, 'x-request-id', requestIdOf(req.headers)];
        if (opts.draining()) headers.push('connection', 'close');
        res.writeHead(200, headers);
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
