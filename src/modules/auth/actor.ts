import type { ApiTokenScope, UserRole } from '../../db/schema/index.js';

/** Who is calling: built once per request by the auth hook (src/http/auth.ts) from a verified token. */
export interface Actor {
  id: string;
  role: UserRole;
  name: string;
  email: string;
  /** Set when the call is made with a personal API token: it acts as its owner, within these scopes. */
  apiToken?: { id: string; scopes: readonly ApiTokenScope[] };
}

/** What services know about a request: the actor (null on public routes) and audit metadata. */
export interface RequestContext {
  actor: Actor | null;
  traceId: string;
  ip: string | null;
  userAgent: string | null;
}

/** A context whose actor is known to be authenticated (every non-public route). */
export interface AuthedContext extends RequestContext {
  actor: Actor;
}
