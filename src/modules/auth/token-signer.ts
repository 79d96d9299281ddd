import { createSigner } from 'fast-jwt';
import type { Database } from '../../db/client.js';
import { TtlCache } from '../../lib/ttl-cache.js';
import type { UsersRepository } from '../users/users.repository.js';
import type { Actor } from './actor.js';
import type { AuthRepository } from './auth.repository.js';

export const JWT_ISSUER = 'helpdesk-api';
export const JWT_AUDIENCE = 'helpdesk-api';
/** A token missing any of these is refused, whatever else it carries. */
export const JWT_REQUIRED_CLAIMS = ['iss', 'aud', 'exp', 'iat', 'sub'] as const;

/**
 * The claims of an access token: who, in which role, that it is an access token, and the session
 * (login) it belongs to: it dies with that session.
 */
export interface AccessClaims {
  sub: string;
  role: Actor['role'];
  typ: 'access';
  sid: string;
}

export interface TokenSigner {
  signAccess(actor: Pick<Actor, 'id' | 'role'>, sessionId: string): string;
  /** Forget cached actor and session state (after role change, deactivation, sessions ended in this process). */
  forget(userId: string): void;
}

/**
 * The current state of the user and the session behind a token, cached for `cacheMs` so deactivation,
 * demotion and ended sessions bite within that time without a database round trip on every request.
 */
export function createActorDirectory({
  db,
  users,
  sessions,
  cacheMs = 2000,
}: {
  db: Database;
  users: Pick<UsersRepository, 'findById'>;
  sessions: Pick<AuthRepository, 'isSessionLive'>;
  cacheMs?: number;
}) {
  const cache = new TtlCache<string, Actor | null>(cacheMs);
  const liveSessions = new TtlCache<string, { userId: string; live: boolean }>(cacheMs);
  return {
    /** True while the session is neither revoked nor expired and belongs to the user. */
    async isSessionLive(sessionId: string, userId: string): Promise<boolean> {
      let hit = liveSessions.get(sessionId);
      if (hit === undefined || hit.userId !== userId) {
        hit = { userId, live: await sessions.isSessionLive(db, sessionId, userId) };
        liveSessions.set(sessionId, hit);
      }
      return hit.live;
    },
    /** The active user as an Actor; null when missing or deactivated. */
    async find(id: string): Promise<Actor | null> {
      let actor = cache.get(id);
      if (actor === undefined) {
        const user = await users.findById(db, id);
        actor = user?.active ? { id: user.id, role: user.role, name: user.name, email: user.email } : null;
        cache.set(id, actor);
      }
      return actor;
    },
    /** Drops the cached state of the user and of all their sessions (this process sees changes at once). */
    forget(id: string): void {
      cache.delete(id);
      liveSessions.deleteWhere((s) => s.userId === id);
    },
  };
}

export type ActorDirectory = ReturnType<typeof createActorDirectory>;

/**
 * Signs access tokens: HS256 with issuer and audience pinned, valid for `accessTokenTtl` seconds —
 * the same settings the auth hook (src/http/auth.ts) verifies with.
 */
export function createTokenSigner(opts: {
  secret: string;
  accessTokenTtl: number;
  actors: Pick<ActorDirectory, 'forget'>;
}): TokenSigner {
  const sign = createSigner({
    key: opts.secret,
    algorithm: 'HS256',
    iss: JWT_ISSUER,
    aud: JWT_AUDIENCE,
    expiresIn: opts.accessTokenTtl * 1000,
  });
  return {
    signAccess: (actor, sessionId) =>
      sign({ sub: actor.id, role: actor.role, typ: 'access', sid: sessionId } satisfies AccessClaims),
    forget: (userId) => opts.actors.forget(userId),
  };
}
