import type { Database, Executor } from '../../db/client.js';
import { isUniqueViolation } from '../../db/errors.js';
import type { UserRole, UserRow } from '../../db/schema/index.js';
import type { CursorCodec } from '../../lib/cursor.js';
import { ConflictError, NotFoundError, UnprocessableError } from '../../lib/errors.js';
import { createdAtKeyset, keysetPage } from '../../lib/keyset.js';
import type { AuditService } from '../audit/audit.service.js';
import type { AuthedContext, RequestContext } from '../auth/actor.js';
import type { PasswordHasher } from '../auth/password.js';
import { NO_PASSWORD, passwordProblem } from '../auth/password.js';
import { assertCan } from '../auth/permissions.js';
import type { UserListFilters, UsersRepository } from './users.repository.js';

export interface NewAccount {
  email: string;
  name: string;
  role: UserRole;
  password: string;
}

export interface UserPatch {
  name?: string;
  role?: UserRole;
  active?: boolean;
}

export interface UsersServiceDeps {
  db: Database;
  users: UsersRepository;
  refreshTokens: { revokeAllForUser(ex: Executor, userId: string): Promise<number> };
  audit: AuditService;
  hasher: PasswordHasher;
  cursor: CursorCodec;
  /** Drops this process's cached actor so a role change or deactivation bites at once. */
  forgetActor(userId: string): void;
  passwordMinLength: number;
}

export class UserNotFoundError extends NotFoundError {
  constructor(id: string) {
    super('USER_NOT_FOUND', 'User not found', `User ${id} does not exist.`);
  }
}

export function emailTakenError(): ConflictError {
  return new ConflictError(
    'EMAIL_TAKEN',
    'An account with this email address already exists.',
    'Email taken',
  );
}

/** 422 WEAK_PASSWORD unless the password meets the contract's policy. */
export function assertStrongPassword(
  password: string,
  minLength: number,
  context: { email?: string; name?: string },
  path = 'body.password',
): void {
  const problem = passwordProblem(password, minLength, context);
  if (problem) throw new UnprocessableError('WEAK_PASSWORD', problem, [{ path, message: problem }]);
}

function diff<T extends object>(before: T, patch: Partial<T>): Record<string, [unknown, unknown]> {
  const changes: Record<string, [unknown, unknown]> = {};
  for (const [k, v] of Object.entries(patch) as [keyof T & string, unknown][]) {
    if (v !== undefined && before[k] !== v) changes[k] = [before[k], v];
  }
  return changes;
}

export function createUsersService(deps: UsersServiceDeps) {
  const { db, users, audit, hasher, cursor } = deps;

  /**
   * Creates an account (any caller that has already been authorized: self sign-up, an admin, the
   * start-up bootstrap). Policy-checked password hashed with argon2id; emails unique case-insensitively
   * (409 EMAIL_TAKEN); `user.created` audited in the same transaction.
   */
  async function createAccount(
    ctx: RequestContext,
    input: NewAccount,
    meta: { source: 'signup' | 'admin' | 'bootstrap' | 'cli' },
  ): Promise<UserRow> {
    assertStrongPassword(input.password, deps.passwordMinLength, input);
    if (await users.findByEmail(db, input.email)) throw emailTakenError();
    const passwordHash = await hasher.hash(input.password);
    try {
      return await db.transaction(async (tx) => {
        const row = await users.insert(tx, {
          email: input.email,
          name: input.name,
          role: input.role,
          passwordHash,
        });
        await audit.record(tx, ctx, {
          action: 'user.created',
          entityType: 'user',
          entityId: row.id,
          changes: { email: [null, row.email], name: [null, row.name], role: [null, row.role] },
          metadata: { source: meta.source },
          ...(meta.source === 'signup' ? { actor: { id: row.id, role: row.role } } : {}),
        });
        return row;
      });
    } catch (err) {
      if (isUniqueViolation(err, 'users_email_lower_uq')) throw emailTakenError();
      throw err;
    }
  }

  return {
    createAccount,

    /**
     * A requester account without a password, inside the caller's transaction (an email from an unknown
     * sender). Nobody can sign in to it until its owner sets a password through a password reset, which
     * proves they read that mailbox. `user.created` audited with `source`.
     */
    async createRequesterWithoutPasswordIn(
      tx: Executor,
      ctx: RequestContext,
      input: { email: string; name: string },
      source: 'inbound_email',
    ): Promise<UserRow> {
      const row = await users.insert(tx, {
        email: input.email,
        name: input.name,
        role: 'requester',
        passwordHash: NO_PASSWORD,
      });
      await audit.record(tx, ctx, {
        action: 'user.created',
        entityType: 'user',
        entityId: row.id,
        changes: { email: [null, row.email], name: [null, row.name], role: [null, row.role] },
        metadata: { source, hasPassword: false },
        actor: null,
      });
      return row;
    },

    /** POST /users: admins only. */
    async create(ctx: AuthedContext, input: NewAccount): Promise<UserRow> {
      assertCan(ctx.actor, 'user.manage', { type: 'user' });
      return createAccount(ctx, input, { source: 'admin' });
    },

    /** Admins see everyone (filters role/active/q); agents only agents and admins; requesters nobody (403). */
    async list(
      ctx: AuthedContext,
      query: { role?: UserRole; active?: boolean; q?: string; limit: number; cursor?: string },
    ): Promise<{ data: UserRow[]; nextCursor: string | null }> {
      const rule = assertCan(ctx.actor, 'user.list', { type: 'user' });
      const filters: UserListFilters = { role: query.role, active: query.active, q: query.q };
      if (rule !== 'any') filters.roles = ['agent', 'admin'];
      const after = query.cursor ? createdAtKeyset(cursor.decode(query.cursor)) : undefined;
      const rows = await users.list(db, filters, query.limit + 1, after);
      const { page, nextCursor } = keysetPage(rows, query.limit, (last) =>
        cursor.encode({ t: last.sortKey, i: last.id }),
      );
      return { data: page, nextCursor };
    },

    /** GET /users/{id}: admins only (others 403, audited). */
    async get(ctx: AuthedContext, id: string): Promise<UserRow> {
      assertCan(ctx.actor, 'user.read', { type: 'user', id });
      const row = await users.findById(db, id);
      if (!row) throw new UserNotFoundError(id);
      return row;
    },

    /**
     * PATCH /users/{id}: admins only. One audit event: user.deactivated / user.activated /
     * user.role_changed / user.updated, with every changed field. Deactivation revokes all refresh
     * tokens; a role change or deactivation also drops the cached actor (access tokens stop working at
     * once here, within the 2 s actor cache elsewhere). The last active admin cannot be demoted or
     * deactivated (409 LAST_ADMIN), so the installation never locks itself out.
     */
    async update(ctx: AuthedContext, id: string, patch: UserPatch): Promise<UserRow> {
      assertCan(ctx.actor, 'user.manage', { type: 'user', id });
      const touchesAccess = patch.role !== undefined || patch.active !== undefined;
      const result = await db.transaction(async (tx) => {
        if (touchesAccess) await users.lockAdminSet(tx);
        const before = await users.findByIdForUpdate(tx, id);
        if (!before) throw new UserNotFoundError(id);
        const changes = diff(before, patch);
        if (Object.keys(changes).length === 0) return { row: before, changed: false };
        const losesAdmin =
          before.role === 'admin' &&
          before.active &&
          ((patch.role !== undefined && patch.role !== 'admin') || patch.active === false);
        if (losesAdmin && (await users.countOtherActiveAdmins(tx, id)) === 0) {
          throw new ConflictError(
            'LAST_ADMIN',
            'This is the last active admin; promote another admin first.',
            'Last admin',
          );
        }
        const row = await users.update(tx, id, patch);
        let revoked = 0;
        if (changes.active && patch.active === false)
          revoked = await deps.refreshTokens.revokeAllForUser(tx, id);
        const action = changes.active
          ? patch.active
            ? 'user.activated'
            : 'user.deactivated'
          : changes.role
            ? 'user.role_changed'
            : 'user.updated';
        await audit.record(tx, ctx, {
          action,
          entityType: 'user',
          entityId: id,
          changes,
          metadata: revoked ? { revokedRefreshTokens: revoked } : {},
        });
        return { row, changed: touchesAccess };
      });
      if (result.changed) deps.forgetActor(id);
      return result.row;
    },
  };
}

export type UsersService = ReturnType<typeof createUsersService>;
