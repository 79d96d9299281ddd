import { randomUUID } from 'node:crypto';
import type { Database } from '../../db/client.js';
import type { UserRow } from '../../db/schema/index.js';
import type { AuditService } from '../audit/audit.service.js';
import type { RequestContext } from '../auth/actor.js';
import type { PasswordHasher } from '../auth/password.js';
import type { UsersRepository } from './users.repository.js';
import { assertStrongPassword, emailTakenError } from './users.service.js';

export interface AdminAccount {
  email: string;
  password: string;
  name?: string;
}

export type AdminBootstrapResult =
  | { kind: 'created'; user: UserRow }
  | { kind: 'admin-exists' }
  | { kind: 'email-taken' };

export interface AdminAccountsDeps {
  db: Database;
  users: Pick<UsersRepository, 'lockAdminSet' | 'anyActiveAdmin' | 'findByEmail' | 'insert'>;
  audit: AuditService;
  hasher: PasswordHasher;
  passwordMinLength: number;
}

/** Admin accounts made outside any HTTP request: the start-up bootstrap and `npm run create-admin`. */
export function createAdminAccounts({ db, users, audit, hasher, passwordMinLength }: AdminAccountsDeps) {
  /**
   * Creates an admin account under the admin-set advisory lock, so several instances starting at
   * once create at most one.
   * - onlyIfNoAdmin: the start-up rule — do nothing when an active admin exists.
   * An existing account with that email is never promoted (someone may have signed up with the
   * admin's address first): 'email-taken' for the bootstrap, 409 EMAIL_TAKEN for the CLI.
   */
  async function create(
    account: AdminAccount,
    opts: { source: 'bootstrap' | 'cli'; onlyIfNoAdmin: boolean },
  ): Promise<AdminBootstrapResult> {
    const name = account.name?.trim() || 'Administrator';
    const ctx: RequestContext = {
      actor: null,
      traceId: `${opts.source}-${randomUUID()}`,
      ip: null,
      userAgent: null,
    };
    assertStrongPassword(account.password, passwordMinLength, { email: account.email, name }, 'password');
    const passwordHash = await hasher.hash(account.password);
    return db.transaction(async (tx) => {
      await users.lockAdminSet(tx);
      if (opts.onlyIfNoAdmin && (await users.anyActiveAdmin(tx))) return { kind: 'admin-exists' as const };
      if (await users.findByEmail(tx, account.email)) {
        if (opts.onlyIfNoAdmin) return { kind: 'email-taken' as const };
        throw emailTakenError();
      }
      const user = await users.insert(tx, { email: account.email.trim(), name, role: 'admin', passwordHash });
      await audit.record(tx, ctx, {
        action: 'user.created',
        entityType: 'user',
        entityId: user.id,
        changes: { email: [null, user.email], name: [null, user.name], role: [null, user.role] },
        metadata: { source: opts.source },
      });
      return { kind: 'created' as const, user };
    });
  }

  return {
    create,

    /** Start-up: when ADMIN_EMAIL and ADMIN_PASSWORD are set and no active admin exists, create that admin. */
    async bootstrap(
      admin: { email: string; password: string } | undefined,
      log: { info(msg: string): void; error(msg: string): void },
    ): Promise<void> {
      if (!admin) return;
      const result = await create(admin, { source: 'bootstrap', onlyIfNoAdmin: true });
      if (result.kind === 'created')
        log.info(`bootstrap admin ${result.user.email} created from ADMIN_EMAIL`);
      if (result.kind === 'email-taken') {
        log.error(
          'ADMIN_EMAIL belongs to an existing non-admin account; it was NOT promoted. ' +
            'Create an admin with `npm run create-admin -- --email ... --password ...` instead.',
        );
      }
    },
  };
}

export type AdminAccounts = ReturnType<typeof createAdminAccounts>;
