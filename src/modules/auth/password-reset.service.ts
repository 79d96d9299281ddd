import type { Database } from '../../db/client.js';
import type { Clock } from '../../lib/clock.js';
import { UnprocessableError } from '../../lib/errors.js';
import type { AuditService } from '../audit/audit.service.js';
import type { JobsService } from '../jobs/jobs.service.js';
import { hashResetToken, MAIL_PASSWORD_RESET, type PasswordResetPayload } from '../mail/mail.jobs.js';
import type { MailRepository } from '../mail/mail.repository.js';
import type { UsersRepository } from '../users/users.repository.js';
import { assertStrongPassword, UserNotFoundError } from '../users/users.service.js';
import type { AuthedContext, RequestContext } from './actor.js';
import type { AuthRepository } from './auth.repository.js';
import { accountKey } from './auth.service.js';
import type { PasswordHasher } from './password.js';
import { assertCan } from './permissions.js';

/** The window of the per-email reset throttle. */
export const RESET_REQUEST_WINDOW_MS = 15 * 60 * 1000;

export class ResetTokenInvalidError extends UnprocessableError {
  constructor() {
    super(
      'RESET_TOKEN_INVALID',
      'This password-reset link is invalid, already used or expired; ask for a new one.',
      [{ path: 'body.token', message: 'invalid, used or expired' }],
    );
  }
}

export interface PasswordResetDeps {
  db: Database;
  mail: Pick<
    MailRepository,
    | 'countRequestsSince'
    | 'insertRequest'
    | 'pruneRequests'
    | 'findToken'
    | 'findTokenForUpdate'
    | 'useAllTokens'
  >;
  users: Pick<UsersRepository, 'findById' | 'update'>;
  auth: Pick<AuthRepository, 'revokeAllForUser'>;
  audit: AuditService;
  hasher: PasswordHasher;
  jobs: Pick<JobsService, 'enqueue'>;
  clock: Clock;
  /** Ends the sessions' access tokens at once (cached actor state) after the refresh tokens are revoked. */
  forgetActor?: (userId: string) => void;
  config: { passwordMinLength: number; perAccountPer15Min: number };
}

/**
 * Account recovery by email. The request never looks the account up: it records the request, enqueues
 * the mail job and answers 202, so neither the answer nor its timing tells whether the account exists.
 * The job issues the token (single use, 30 minutes, stored hashed) only for an active account.
 */
export function createPasswordResetService(deps: PasswordResetDeps) {
  const { db, mail, users, auth, audit, hasher, jobs, clock, config } = deps;
  let lastPrune = 0;

  return {
    /**
     * POST /auth/password-reset: always accepted. Beyond PASSWORD_RESET_RATE_LIMIT_PER_ACCOUNT requests
     * per email per 15 minutes nothing more is sent (still 202: the answer must not differ). Audited as
     * auth.password_reset_requested with the email key and whether it was throttled.
     */
    async request(ctx: RequestContext, email: string): Promise<void> {
      const key = accountKey(email);
      const now = clock.now();
      const since = new Date(now.getTime() - RESET_REQUEST_WINDOW_MS);
      await db.transaction(async (tx) => {
        if (now.getTime() - lastPrune > 60_000) {
          lastPrune = now.getTime();
          await mail.pruneRequests(tx, since);
        }
        const recent = await mail.countRequestsSince(tx, key, since);
        await mail.insertRequest(tx, key, now);
        const throttled = recent >= config.perAccountPer15Min;
        if (!throttled) {
          const payload: PasswordResetPayload = { emailKey: key };
          await jobs.enqueue(tx, MAIL_PASSWORD_RESET, payload);
        }
        await audit.record(tx, ctx, {
          action: 'auth.password_reset_requested',
          entityType: 'user',
          entityId: null,
          actor: null,
          metadata: { email: key, throttled },
        });
      });
    },

    /**
     * POST /users/{id}/password-reset (admin): mails the same reset link to that user. Returns the job id
     * (readable by the admin with GET /jobs/{id}). A deactivated account gets no mail.
     */
    async requestFor(ctx: AuthedContext, userId: string): Promise<{ jobId: string }> {
      assertCan(ctx.actor, 'user.manage', { type: 'user', id: userId });
      return db.transaction(async (tx) => {
        const user = await users.findById(tx, userId);
        if (!user) throw new UserNotFoundError(userId);
        const payload: PasswordResetPayload = { userId };
        const jobId = await jobs.enqueue(tx, MAIL_PASSWORD_RESET, payload, { createdBy: ctx.actor.id });
        await audit.record(tx, ctx, {
          action: 'user.password_reset_requested',
          entityType: 'user',
          entityId: userId,
          metadata: { jobId, active: user.active },
        });
        return { jobId };
      });
    },

    /**
     * POST /auth/password-reset/confirm: sets the new password with a valid token (single use, 30 min),
     * uses up every other outstanding token of the account, and ends every session (all refresh tokens
     * revoked, access tokens with them). Audited as user.password_reset. An unknown, used or expired token,
     * or a deactivated account, answers the same 422 RESET_TOKEN_INVALID.
     */
    async confirm(ctx: RequestContext, input: { token: string; newPassword: string }): Promise<void> {
      const tokenHash = hashResetToken(input.token);
      const now = clock.now();
      const usable = (row: { usedAt: Date | null; expiresAt: Date } | undefined) =>
        row !== undefined && row.usedAt === null && row.expiresAt.getTime() > now.getTime();

      // Check the token and the password before the slow hash; take the row lock only to commit.
      const peek = await mail.findToken(db, tokenHash);
      if (!peek || !usable(peek)) throw new ResetTokenInvalidError();
      const user = await users.findById(db, peek.userId);
      if (!user?.active) throw new ResetTokenInvalidError();
      assertStrongPassword(
        input.newPassword,
        config.passwordMinLength,
        { email: user.email, name: user.name },
        'body.newPassword',
      );
      const passwordHash = await hasher.hash(input.newPassword);

      await db.transaction(async (tx) => {
        const row = await mail.findTokenForUpdate(tx, tokenHash);
        if (!row || !usable(row)) throw new ResetTokenInvalidError(); // used by a concurrent confirm
        await users.update(tx, user.id, { passwordHash });
        await mail.useAllTokens(tx, user.id);
        const revoked = await auth.revokeAllForUser(tx, user.id);
        await audit.record(tx, ctx, {
          action: 'user.password_reset',
          entityType: 'user',
          entityId: user.id,
          actor: { id: user.id, role: user.role },
          metadata: { revokedRefreshTokens: revoked },
        });
      });
      deps.forgetActor?.(user.id);
    },
  };
}

export type PasswordResetService = ReturnType<typeof createPasswordResetService>;
