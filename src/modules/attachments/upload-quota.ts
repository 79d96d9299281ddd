import type { Executor } from '../../db/client.js';
import { AppError } from '../../lib/errors.js';
import type { Actor } from '../auth/actor.js';
import type { UploadQuotaRepository } from './upload-quota.repository.js';

export interface UploadQuotaLimits {
  /** Bytes a requester may upload in any 24 hours; 0 = no limit. */
  perUserPerDay: number;
  /** The same for agents and admins, who attach logs and screenshots all day; 0 = no limit. */
  perStaffPerDay: number;
}

const DAY_SECONDS = 86_400;

export class QuotaExceededError extends AppError {
  constructor(limit: number, retryAfterSeconds: number) {
    super(
      413,
      'QUOTA_EXCEEDED',
      'Upload quota exceeded',
      `Each account may upload at most ${limit} bytes in 24 hours; this upload would pass that. ` +
        'Retry-After says when enough of the last day’s uploads have aged out.',
      {
        headers: { 'retry-after': String(Math.min(DAY_SECONDS, Math.max(1, Math.ceil(retryAfterSeconds)))) },
      },
    );
  }
}

/**
 * The rolling 24-hour upload quota per account. Counted in bytes received, whether or not the store
 * already held identical bytes — otherwise the quota would tell a user whether someone else had
 * uploaded a given file.
 */
export function createUploadQuota(repo: UploadQuotaRepository, limits: UploadQuotaLimits) {
  const limitFor = (actor: Pick<Actor, 'role'>) =>
    actor.role === 'requester' ? limits.perUserPerDay : limits.perStaffPerDay;

  async function refuse(ex: Executor, actor: Pick<Actor, 'id'>, need: number, limit: number): Promise<never> {
    const wait = await repo.secondsUntilRoom(ex, actor.id, need, limit);
    throw new QuotaExceededError(limit, wait ?? DAY_SECONDS);
  }

  return {
    /** Before reading a byte: an account already at its limit is refused at once. */
    async precheck(ex: Executor, actor: Pick<Actor, 'id' | 'role'>): Promise<void> {
      const limit = limitFor(actor);
      if (limit === 0) return;
      if ((await repo.usedToday(ex, actor.id)) >= limit) await refuse(ex, actor, 1, limit);
    },

    /**
     * Inside the upload's transaction, before any blob is committed: takes the account's lock, checks
     * that `bytes` more fit, and books them. Concurrent uploads of one account cannot both pass.
     */
    async charge(tx: Executor, actor: Pick<Actor, 'id' | 'role'>, bytes: number): Promise<void> {
      const limit = limitFor(actor);
      if (limit === 0) return;
      await repo.lockAccount(tx, actor.id);
      const used = await repo.usedToday(tx, actor.id);
      if (used + bytes > limit) await refuse(tx, actor, bytes, limit);
      await repo.record(tx, actor.id, bytes);
    },

    /**
     * Like charge(), for files that arrive together but are judged one by one (the attachments of an
     * email): under the account's lock, admits each file while it fits, books the admitted bytes, and
     * says which fit. Never throws for the quota: a mail is not lost because one file is too much.
     */
    async admit(
      tx: Executor,
      actor: Pick<Actor, 'id' | 'role'>,
      sizes: readonly number[],
    ): Promise<boolean[]> {
      const limit = limitFor(actor);
      if (limit === 0) return sizes.map(() => true);
      await repo.lockAccount(tx, actor.id);
      let used = await repo.usedToday(tx, actor.id);
      const admitted = sizes.map((size) => {
        if (used + size > limit) return false;
        used += size;
        return true;
      });
      const total = sizes.reduce((sum, size, i) => (admitted[i] ? sum + size : sum), 0);
      if (total > 0) await repo.record(tx, actor.id, total);
      return admitted;
    },
  };
}

export type UploadQuota = ReturnType<typeof createUploadQuota>;
