import { createHash } from 'node:crypto';
import type { Database, Executor } from '../../db/client.js';
import type { Clock } from '../../lib/clock.js';
import { ConflictError, UnprocessableError } from '../../lib/errors.js';
import type { IdempotencyRepository, IdempotencyRequest } from './idempotency.repository.js';

export type { IdempotencyRequest } from './idempotency.repository.js';

/**
 * Stores the result of an idempotent write: the service calls it on the transaction of the change,
 * so the stored result commits (or rolls back) with what it describes.
 */
export type Remember<T> = (ex: Executor, result: T) => Promise<void>;

/** What run() gives back: the fresh result, or the JSON of the first run's result. */
export type IdempotentOutcome<T> = { replayed: false; result: T } | { replayed: true; stored: string };

const DAY_MS = 24 * 60 * 60 * 1000;

/** Canonical JSON (sorted keys) so the same body in another key order is the same request. */
export function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`;
  if (value && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonical(v)}`).join(',')}}`;
  }
  return JSON.stringify(value ?? null);
}

/** SHA-256 of the method, the route and the canonical request (its params and body). */
export function fingerprint(method: string, route: string, request: unknown): string {
  return createHash('sha256')
    .update(`${method} ${route}\n${canonical(request)}`)
    .digest('hex');
}

const inProgress = () =>
  new ConflictError(
    'IDEMPOTENCY_IN_PROGRESS',
    'A request with this Idempotency-Key is still being processed; retry shortly.',
  );

/**
 * Idempotency-Key semantics (../shared/API.md "Headers"), stored in PostgreSQL so they hold across
 * instances. A request claims its key (of parallel requests exactly one wins); the winner runs the
 * change, which stores its result inside its own transaction. A failed request releases its claim, so
 * a retry runs again (only successes are replayed). Keys are kept 24 h; an in_progress claim whose
 * instance died is re-claimable after `lockMs`.
 */
export function createIdempotencyService({
  db,
  keys,
  clock,
  ttlMs = DAY_MS,
  lockMs = 60_000,
}: {
  db: Database;
  keys: IdempotencyRepository;
  clock: Clock;
  ttlMs?: number;
  lockMs?: number;
}) {
  /** Claims the key, or answers the stored result: 422 for another request, 409 while the first runs. */
  async function claim(
    req: IdempotencyRequest,
  ): Promise<{ claimed: true } | { claimed: false; stored: string }> {
    for (let attempt = 0; attempt < 3; attempt++) {
      const now = clock.now();
      const claimed = await keys.tryClaim(db, req, {
        now,
        lockedUntil: new Date(now.getTime() + lockMs),
        expiresAt: new Date(now.getTime() + ttlMs),
      });
      if (claimed) return { claimed: true };
      const row = await keys.find(db, req);
      if (!row) continue; // released between our two statements: try to claim again
      if (row.requestHash !== req.fingerprint) {
        throw new UnprocessableError(
          'IDEMPOTENCY_KEY_REUSED',
          'This Idempotency-Key was already used with a different request; use a new key.',
        );
      }
      if (row.status === 'in_progress') throw inProgress();
      return { claimed: false, stored: row.result ?? 'null' };
    }
    throw inProgress();
  }

  /** Removes keys past their 24 h retention (the maintenance.purge job does it every 10 minutes). */
  async function purgeExpired(): Promise<number> {
    return keys.deleteExpired(db, clock.now());
  }

  return {
    purgeExpired,

    /**
     * Runs `exec` at most once per (user, key): its result, or the stored result of the first run.
     * Without a key it simply runs. `exec` must call `remember` on its transaction.
     */
    async run<T>(
      req: IdempotencyRequest | null,
      exec: (remember: Remember<T>) => Promise<T>,
    ): Promise<IdempotentOutcome<T>> {
      if (!req) return { replayed: false, result: await exec(async () => {}) };
      const claimed = await claim(req);
      if (!claimed.claimed) return { replayed: true, stored: claimed.stored };
      try {
        const result = await exec((ex, value) => keys.complete(ex, req, JSON.stringify(value)));
        return { replayed: false, result };
      } catch (err) {
        await keys.release(db, req).catch(() => {});
        throw err;
      }
    },
  };
}

export type IdempotencyService = ReturnType<typeof createIdempotencyService>;
