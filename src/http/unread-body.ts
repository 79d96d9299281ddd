import type { FastifyInstance } from 'fastify';

/**
 * A reply can be sent before its request's body was read to the end: a file refused at its size limit
 * part-way through a multipart upload. Node reads and discards an unread body itself only when nothing
 * consumed the request, and the multipart parser did. Left unread, the rest of the body fills the socket's
 * buffers: the client cannot finish sending, the connection never becomes idle, and closing the server
 * waits for it until its hard timeout. After the reply, the rest is read and discarded (as Node does), so
 * the connection ends with the client or serves its next request.
 */
export function registerUnreadBodyDrain(app: FastifyInstance): void {
  // A callback hook: it runs on every request and almost always has nothing to do.
  app.addHook('onResponse', (request, _reply, done) => {
    const req = request.raw;
    if (!req.complete && !req.destroyed) req.resume();
    done();
  });
}
