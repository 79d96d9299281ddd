import { createSigner } from 'fast-jwt';
import type { Database } from '../../db/client.js';
import { TtlCache } from '../../lib/ttl-cache.js';
import type { UsersRepository } from '../users/users.repository.js';
import type { Actor } from './actor.js';

export const JWT_ISSUER = 'helpdesk-api';
export const JWT_AUDIENCE = 'helpdesk-api';

/** The claims of an access token: who, in which role, and that it is an access token. */
export interface AccessClaims {
  sub: string;
  role: Actor['role'];
  typ: 'access';
}

export interface TokenSigner {
  signAccess(actor: Pick<Actor, 'id' | 'role'>): string;
  /** Forget cached actor state (after role change or deactivation in this process). */
  forget(userId: string): void;
}

/**
 * The current state of the user behind a token, cached for `cacheMs` so deactivation and demotion
 * bite within that time without a database round trip on every request.
 */
export function createActorDirectory({
  db,
  users,
  cacheMs = 2000,
}: {
  db: Database;
  users: Pick<UsersRepository, 'findById'>;
  cacheMs?: number;
}) {
  const cache = new TtlCache<string, Actor | null>(cacheMs);
  return {
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
    forget(id: string): void {
      cache.delete(id);
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
    signAccess: (actor) => sign({ sub: actor.id, role: actor.role, typ: 'access' } satisfies AccessClaims),
    forget: (userId) => opts.actors.forget(userId),
  };
}
