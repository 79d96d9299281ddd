import type { FastifyReply, FastifyRequest } from 'fastify';
import type { AuthedContext } from '../modules/auth/actor.js';

/**
 * Small reply grammar shared by the route modules: the caller's context and the `Link` header of
 * keyset pages. Status codes and headers of single resources stay in their routes.
 */

/** The authenticated context of a non-public route (the auth hook refused anything else). */
export function authed(request: FastifyRequest): AuthedContext {
  return request.ctx as AuthedContext;
}

/** `Link: <…>; rel="next"` with the caller's own query and the next cursor. */
export function setNextLink(request: FastifyRequest, reply: FastifyReply, nextCursor: string | null) {
  if (!nextCursor) return;
  const [path, search = ''] = request.url.split('?', 2);
  const params = new URLSearchParams(search);
  params.set('cursor', nextCursor);
  reply.header('link', `<${path}?${params.toString()}>; rel="next"`);
}

/** A keyset page as the reply: its `Link` header set, the page itself as the body. */
export function sendPage<P extends { nextCursor: string | null }>(
  request: FastifyRequest,
  reply: FastifyReply,
  page: P,
): P {
  setNextLink(request, reply, page.nextCursor);
  return page;
}
