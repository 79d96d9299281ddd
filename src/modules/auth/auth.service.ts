import { randomUUID } from 'node:crypto';
import type { Database, Executor } from '../../db/client.js';
import type { UserRow } from '../../db/schema/index.js';
import type { Clock } from '../../lib/clock.js';
import {
  ForbiddenError,
  InvalidCredentialsError,
  RateLimitedError,
  UnauthenticatedError,
  ValidationError,
} from '../../lib/errors.js';
import type { AuditService } from '../audit/audit.service.js';
import type { UsersRepository } from '../users/users.repository.js';
import { assertStrongPassword, UserNotFoundError, type UsersService } from '../users/users.service.js';
import type { AuthedContext, RequestContext } from './actor.js';
import type { AuthRepository } from './auth.repository.js';
import type { PasswordHasher } from './password.js';
import { assertCan } from './permissions.js';
import { hashRefreshToken, newRefreshToken } from './refresh-token.js';
import type { TokenSigner } from './token-signer.js';

/** The window of the per-account failed-login throttle (the contract: per 15 min). */
export const LOGIN_FAILURE_WINDOW_MS = 15 * 60 * 1000;

export interface AuthServiceDeps {
  db: Database;
  users: UsersRepository;
  usersService: Pick<UsersService, 'createAccount'>;
  auth: AuthRepository;
  audit: AuditService;
  hasher: PasswordHasher;
  signer: TokenSigner;
  clock: Clock;
  config: {
    accessTokenTtl: number;
    refreshTokenTtl: number;
    allowSignup: boolean;
    passwordMinLength: number;
    loginRateLimitPerAccount: number;
  };
}

export interface TokenPair {
  accessToken: string;
  refreshToken: string;
  tokenType: 'Bearer';
  expiresIn: number;
  user: UserRow;
}

/** The throttle and audit key of an account: case- and width-insensitive, so "A@x" and "a@x" share it. */
export function accountKey(email: string): string {
  return email.normalize('NFKC').trim().toLowerCase();
}

export class SignupDisabledError extends ForbiddenError {
  constructor() {
    super('Self sign-up is turned off on this server; ask an admin for an account.', 'SIGNUP_DISABLED');
  }
}

export function createAuthService(deps: AuthServiceDeps) {
  const { db, users, auth, audit, hasher, signer, clock, config } = deps;
  let lastGlobalPrune = 0;

  /**
   * Reserves a failure slot for this account before the password is checked (so concurrent guesses
   * count too) and refuses with 429 once LOGIN_RATE_LIMIT_PER_ACCOUNT failures are in the window.
   * Returns the slot to release when the attempt succeeds.
   */
  async function reserveAttempt(ctx: RequestContext, key: string, user?: UserRow): Promise<string> {
    const now = clock.now();
    const since = new Date(now.getTime() - LOGIN_FAILURE_WINDOW_MS);
    await auth.pruneFailures(db, key, since);
    if (now.getTime() - lastGlobalPrune > 60_000) {
      lastGlobalPrune = now.getTime();
      await auth.pruneAllFailures(db, since);
    }
    const slot = await auth.insertFailure(db, key, now);
    const { count } = await auth.recentFailures(db, key, since);
    const limit = config.loginRateLimitPerAccount;
    if (count <= limit) return slot;
    await auth.deleteFailure(db, slot);
    // A slot frees when the (count - limit)-th oldest of the others leaves the window.
    const freedBy = await auth.nthFailureSince(db, key, since, count - limit);
    const retryAfter = freedBy ? (freedBy.getTime() + LOGIN_FAILURE_WINDOW_MS - now.getTime()) / 1000 : 60;
    await audit.record(db, ctx, {
      action: 'auth.login_failed',
      entityType: 'user',
      entityId: user?.id ?? null,
      actor: null,
      metadata: { reason: 'rate_limited', email: key },
    });
    throw new RateLimitedError(
      retryAfter,
      'Too many failed sign-in attempts for this account; try again later.',
    );
  }

  async function issuePair(
    ex: Executor,
    user: UserRow,
    familyId: string,
    expiresAt: Date,
  ): Promise<TokenPair> {
    const refreshToken = newRefreshToken();
    await auth.insertRefreshToken(ex, {
      userId: user.id,
      familyId,
      tokenHash: hashRefreshToken(refreshToken),
      expiresAt,
    });
    return {
      accessToken: signer.signAccess(user),
      refreshToken,
      tokenType: 'Bearer',
      expiresIn: config.accessTokenTtl,
      user,
    };
  }

  return {
    /** POST /auth/register: a requester account (403 SIGNUP_DISABLED when ALLOW_SIGNUP=false). */
    async register(ctx: RequestContext, input: { email: string; name: string; password: string }) {
      if (!config.allowSignup) throw new SignupDisabledError();
      return deps.usersService.createAccount(ctx, { ...input, role: 'requester' }, { source: 'signup' });
    },

    /**
     * POST /auth/login. Unknown email, wrong password and deactivated account all answer the same
     * 401 INVALID_CREDENTIALS after the same argon2 work (a dummy hash for unknown emails), and all
     * count against the per-account throttle, so neither the answer nor its timing tells whether an
     * account exists. Audited as auth.login / auth.login_failed (reason; never the password).
     */
    async login(ctx: RequestContext, input: { email: string; password: string }): Promise<TokenPair> {
      const key = accountKey(input.email);
      const user = await users.findByEmail(db, key);
      const slot = await reserveAttempt(ctx, key, user);

      let reason: 'unknown_email' | 'wrong_password' | 'inactive' | null = null;
      if (!user) {
        await hasher.verifyDummy(input.password);
        reason = 'unknown_email';
      } else if (!(await hasher.verify(user.passwordHash, input.password))) {
        reason = 'wrong_password';
      } else if (!user.active) {
        reason = 'inactive';
      }
      if (reason || !user) {
        await audit.record(db, ctx, {
          action: 'auth.login_failed',
          entityType: 'user',
          entityId: user?.id ?? null,
          actor: null,
          metadata: { reason, email: key },
        });
        throw new InvalidCredentialsError();
      }

      await auth.deleteFailure(db, slot);
      const rehash = hasher.needsRehash(user.passwordHash) ? await hasher.hash(input.password) : null;
      const familyId = randomUUID();
      const expiresAt = new Date(clock.now().getTime() + config.refreshTokenTtl * 1000);
      return db.transaction(async (tx) => {
        if (rehash) await users.update(tx, user.id, { passwordHash: rehash });
        const pair = await issuePair(tx, user, familyId, expiresAt);
        await audit.record(tx, ctx, {
          action: 'auth.login',
          entityType: 'user',
          entityId: user.id,
          actor: { id: user.id, role: user.role },
          metadata: { familyId },
        });
        return pair;
      });
    },

    /**
     * POST /auth/refresh: rotation. The presented token is marked used and a new one of the same family
     * is issued, expiring with the family (absolute lifetime REFRESH_TOKEN_TTL from login). Presenting a
     * token that was already used means it leaked (or the client raced itself): the whole family is
     * revoked, auth.refresh_reuse_detected is audited, and the caller gets 401.
     */
    async refresh(ctx: RequestContext, token: string): Promise<TokenPair> {
      const now = clock.now();
      const outcome = await db.transaction(async (tx) => {
        const row = await auth.findRefreshTokenForUpdate(tx, hashRefreshToken(token));
        if (!row || row.revokedAt) return { kind: 'invalid' as const };
        if (row.usedAt) {
          const revoked = await auth.revokeFamily(tx, row.familyId);
          const owner = await users.findById(tx, row.userId);
          await audit.record(tx, ctx, {
            action: 'auth.refresh_reuse_detected',
            entityType: 'user',
            entityId: row.userId,
            actor: owner ? { id: owner.id, role: owner.role } : null,
            metadata: { familyId: row.familyId, revokedTokens: revoked },
          });
          return { kind: 'reused' as const };
        }
        if (row.expiresAt.getTime() <= now.getTime()) return { kind: 'expired' as const };
        const user = await users.findById(tx, row.userId);
        if (!user?.active) return { kind: 'invalid' as const };
        await auth.markUsed(tx, row.id);
        return { kind: 'ok' as const, pair: await issuePair(tx, user, row.familyId, row.expiresAt) };
      });
      if (outcome.kind === 'ok') return outcome.pair;
      if (outcome.kind === 'expired')
        throw new UnauthenticatedError('The refresh token has expired; sign in again.', 'TOKEN_EXPIRED');
      if (outcome.kind === 'reused')
        throw new UnauthenticatedError(
          'This refresh token was already used; the session has been revoked. Sign in again.',
        );
      throw new UnauthenticatedError('The refresh token is invalid or revoked; sign in again.');
    },

    /** POST /auth/logout: revokes the token's whole family when it is the caller's; always 204. */
    async logout(ctx: AuthedContext, token: string): Promise<void> {
      await db.transaction(async (tx) => {
        const row = await auth.findRefreshTokenForUpdate(tx, hashRefreshToken(token));
        const own = row && row.userId === ctx.actor.id;
        const revoked = own ? await auth.revokeFamily(tx, row.familyId) : 0;
        await audit.record(tx, ctx, {
          action: 'auth.logout',
          entityType: 'user',
          entityId: ctx.actor.id,
          metadata: { familyId: own ? row.familyId : null, revokedTokens: revoked },
        });
      });
    },

    async me(ctx: AuthedContext): Promise<UserRow> {
      assertCan(ctx.actor, 'user.readSelf', { type: 'user', id: ctx.actor.id });
      const row = await users.findById(db, ctx.actor.id);
      if (!row) throw new UserNotFoundError(ctx.actor.id);
      return row;
    },

    /**
     * PATCH /auth/me: name, and/or password (needs currentPassword, checked under the same per-account
     * throttle as login; a wrong one answers 401 INVALID_CREDENTIALS). A password change revokes every
     * refresh token of the user (all sessions sign in again) and is audited as user.password_changed.
     */
    async updateMe(
      ctx: AuthedContext,
      input: { name?: string; currentPassword?: string; newPassword?: string },
    ): Promise<UserRow> {
      assertCan(ctx.actor, 'user.updateSelf', { type: 'user', id: ctx.actor.id });
      if ((input.newPassword === undefined) !== (input.currentPassword === undefined)) {
        const missing = input.newPassword === undefined ? 'newPassword' : 'currentPassword';
        throw new ValidationError(
          [{ path: `body.${missing}`, message: 'currentPassword and newPassword go together' }],
          'To change the password send both currentPassword and newPassword.',
        );
      }
      const user = await users.findById(db, ctx.actor.id);
      if (!user) throw new UserNotFoundError(ctx.actor.id);
      let passwordHash: string | undefined;
      if (input.newPassword !== undefined && input.currentPassword !== undefined) {
        assertStrongPassword(
          input.newPassword,
          config.passwordMinLength,
          { email: user.email, name: input.name ?? user.name },
          'body.newPassword',
        );
        const key = accountKey(user.email);
        const slot = await reserveAttempt(ctx, key, user);
        if (!(await hasher.verify(user.passwordHash, input.currentPassword))) {
          await audit.record(db, ctx, {
            action: 'auth.login_failed',
            entityType: 'user',
            entityId: user.id,
            metadata: { reason: 'wrong_current_password', email: key },
          });
          throw new InvalidCredentialsError();
        }
        await auth.deleteFailure(db, slot);
        passwordHash = await hasher.hash(input.newPassword);
      }
      const nameChanged = input.name !== undefined && input.name !== user.name;
      if (!nameChanged && !passwordHash) return user;
      return db.transaction(async (tx) => {
        const row = await users.update(tx, user.id, {
          ...(nameChanged ? { name: input.name } : {}),
          ...(passwordHash ? { passwordHash } : {}),
        });
        const changes: Record<string, [unknown, unknown]> = nameChanged
          ? { name: [user.name, row.name] }
          : {};
        if (passwordHash) {
          const revoked = await auth.revokeAllForUser(tx, user.id);
          await audit.record(tx, ctx, {
            action: 'user.password_changed',
            entityType: 'user',
            entityId: user.id,
            changes,
            metadata: { revokedRefreshTokens: revoked },
          });
        } else {
          await audit.record(tx, ctx, {
            action: 'user.updated',
            entityType: 'user',
            entityId: user.id,
            changes,
          });
        }
        return row;
      });
    },
  };
}

export type AuthService = ReturnType<typeof createAuthService>;
