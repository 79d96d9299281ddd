import { randomUUID } from 'node:crypto';
import type { Database } from '../../db/client.js';
import type { UserRow } from '../../db/schema/index.js';
import { createAuditRepository } from '../audit/audit.repository.js';
import { createAuditService } from '../audit/audit.service.js';
import type { RequestContext } from '../auth/actor.js';
import { createPasswordHasher } from '../auth/password.js';
import { createUsersRepository } from './users.repository.js';
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

/**
 * Creates an admin account outside any HTTP request (start-up bootstrap and `npm run create-admin`).
 * Under the admin-set advisory lock, so several instances starting at once create at most one.
 * - onlyIfNoAdmin: the start-up rule — do nothing when an active admin exists.
 * An existing account with that email is never promoted (someone may have signed up with the admin's
 * address first): 'email-taken' for the bootstrap, 409 EMAIL_TAKEN for the CLI.
 */
export async function createAdminAccount(
  db: Database,
  account: AdminAccount,
  opts: { passwordMinLength: number; source: 'bootstrap' | 'cli'; onlyIfNoAdmin: boolean },
): Promise<AdminBootstrapResult> {
  const users = createUsersRepository();
  const audit = createAuditService({ audit: createAuditRepository() });
  const hasher = createPasswordHasher();
  const name = account.name?.trim() || 'Administrator';
  const ctx: RequestContext = {
    actor: null,
    traceId: `${opts.source}-${randomUUID()}`,
    ip: null,
    userAgent: null,
  };
  assertStrongPassword(account.password, opts.passwordMinLength, { email: account.email, name }, 'password');
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

/** Start-up: when ADMIN_EMAIL and ADMIN_PASSWORD are set and no active admin exists, create that admin. */
export async function bootstrapAdmin(
  db: Database,
  config: { admin?: { email: string; password: string }; passwordMinLength: number },
  log: { info(msg: string): void; error(msg: string): void },
): Promise<void> {
  if (!config.admin) return;
  const result = await createAdminAccount(db, config.admin, {
    passwordMinLength: config.passwordMinLength,
    source: 'bootstrap',
    onlyIfNoAdmin: true,
  });
  if (result.kind === 'created') log.info(`bootstrap admin ${result.user.email} created from ADMIN_EMAIL`);
  if (result.kind === 'email-taken') {
    log.error(
      'ADMIN_EMAIL belongs to an existing non-admin account; it was NOT promoted. ' +
        'Create an admin with `npm run create-admin -- --email ... --password ...` instead.',
    );
  }
}
