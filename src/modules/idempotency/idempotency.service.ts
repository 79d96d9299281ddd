import { createHash } from 'node:crypto';
import { and, eq, lte, sql } from 'drizzle-orm';
import type { Database, Executor } from '../../db/client.js';
import { idempotencyKeys } from '../../db/schema/index.js';
import type { Clock } from '../../lib/clock.js';
import { ConflictError, UnprocessableError } from '../../lib/errors.js';

/** A response as it was first sent, replayed byte for byte on a retry with the same key. */
export interface StoredResponse {
  status: number;
  body: string;
  headers: Record<string, string>;
}

export interface IdempotencyRequest {
  userId: string;
  key: string;
  /** fingerprint(method, route, body): same key with another request → 422 IDEMPOTENCY_KEY_REUSED. */
  fingerprint: string;
}

export type Claim = { kind: 'claimed' } | { kind: 'replay'; response: StoredResponse };

const DAY_MS = 24 * 60 * 60 * 1000;

/** Canonical JSON (sorted keys) so the same body in another key order is the same request. */
function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`;
  if (value && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonical(v)}`).join(',')}}`;
  }
  return JSON.stringify(value ?? null);
}

export function fingerprint(method: string, route: string, body: unknown): string {
  return createHash('sha256')
    .update(`${method} ${route}\n${canonical(body)}`)
    .digest('hex');
}

/**
 * Idempotency-Key semantics (../shared/API.md "Headers"), stored in PostgreSQL so they hold across
 * instances. claim() inserts an in_progress row (INSERT … ON CONFLICT DO NOTHING: of parallel requests
 * exactly one wins); the winner runs the change and calls complete() inside the change's transaction,
 * so the stored response commits with the ticket/comment it describes. A failed request releases its
 * claim, so a retry runs again (only successes are replayed). Keys are kept 24 h; an in_progress claim
 * whose instance died is re-claimable after `lockMs`.
 */
export function createIdempotencyService({
  db,
  clock,
  ttlMs = DAY_MS,
  lockMs = 60_000,
}: {
  db: Database;
  clock: Clock;
  ttlMs?: number;
  lockMs?: number;
}) {
  async function tryClaim(req: IdempotencyRequest): Promise<boolean> {
    const now = clock.now();
    const rows = await db
      .insert(idempotencyKeys)
      .values({
        userId: req.userId,
        key: req.key,
        requestHash: req.fingerprint,
        status: 'in_progress',
        createdAt: now,
        lockedUntil: new Date(now.getTime() + lockMs),
        expiresAt: new Date(now.getTime() + ttlMs),
      })
      .onConflictDoUpdate({
        target: [idempotencyKeys.userId, idempotencyKeys.key],
        set: {
          requestHash: sql`excluded.request_hash`,
          status: 'in_progress',
          responseStatus: null,
          responseBody: null,
          responseHeaders: null,
          createdAt: sql`excluded.created_at`,
          lockedUntil: sql`excluded.locked_until`,
          expiresAt: sql`excluded.expires_at`,
        },
        // Only an expired key, or a claim abandoned by a crashed instance, can be taken over.
        setWhere: sql`${idempotencyKeys.expiresAt} <= ${now} OR (${idempotencyKeys.status} = 'in_progress' AND ${idempotencyKeys.lockedUntil} <= ${now})`,
      })
      .returning({ key: idempotencyKeys.key });
    return rows.length === 1;
  }

  const service = {
    async claim(req: IdempotencyRequest): Promise<Claim> {
      for (let attempt = 0; attempt < 3; attempt++) {
        if (await tryClaim(req)) return { kind: 'claimed' };
        const [row] = await db
          .select()
          .from(idempotencyKeys)
          .where(and(eq(idempotencyKeys.userId, req.userId), eq(idempotencyKeys.key, req.key)))
          .limit(1);
        if (!row) continue; // released between our two statements: try to claim again
        if (row.requestHash !== req.fingerprint) {
          throw new UnprocessableError(
            'IDEMPOTENCY_KEY_REUSED',
            'This Idempotency-Key was already used with a different request; use a new key.',
          );
        }
        if (row.status === 'in_progress') {
          throw new ConflictError(
            'IDEMPOTENCY_IN_PROGRESS',
            'A request with this Idempotency-Key is still being processed; retry shortly.',
          );
        }
        return {
          kind: 'replay',
          response: {
            status: row.responseStatus ?? 200,
            body: row.responseBody ?? 'null',
            headers: row.responseHeaders ?? {},
          },
        };
      }
      throw new ConflictError(
        'IDEMPOTENCY_IN_PROGRESS',
        'A request with this Idempotency-Key is still being processed; retry shortly.',
      );
    },

    /** Stores the response; call it on the transaction of the change so both commit together. */
    async complete(ex: Executor, req: IdempotencyRequest, response: StoredResponse): Promise<void> {
      await ex
        .update(idempotencyKeys)
        .set({
          status: 'completed',
          responseStatus: response.status,
          responseBody: response.body,
          responseHeaders: response.headers,
        })
        .where(and(eq(idempotencyKeys.userId, req.userId), eq(idempotencyKeys.key, req.key)));
    },

    /** Gives the key back after a failed request, so the client's retry runs again. */
    async release(req: IdempotencyRequest): Promise<void> {
      await db
        .delete(idempotencyKeys)
        .where(
          and(
            eq(idempotencyKeys.userId, req.userId),
            eq(idempotencyKeys.key, req.key),
            eq(idempotencyKeys.status, 'in_progress'),
            eq(idempotencyKeys.requestHash, req.fingerprint),
          ),
        );
    },

    /** Removes keys past their 24 h retention (the maintenance.purge job does it every 10 minutes). */
    async purgeExpired(): Promise<number> {
      const rows = await db
        .delete(idempotencyKeys)
        .where(lte(idempotencyKeys.expiresAt, clock.now()))
        .returning({ key: idempotencyKeys.key });
      return rows.length;
    },

    /**
     * Runs `exec` at most once per (user, key): returns its result, or the stored response of the
     * first run. Without a key it simply runs.
     */
    async run<T>(
      req: IdempotencyRequest | null,
      exec: (complete: (ex: Executor, response: StoredResponse) => Promise<void>) => Promise<T>,
    ): Promise<{ result: T; replay: null } | { result: null; replay: StoredResponse }> {
      if (!req) return { result: await exec(async () => {}), replay: null };
      const claim = await service.claim(req);
      if (claim.kind === 'replay') return { result: null, replay: claim.response };
      try {
        const result = await exec((ex, response) => service.complete(ex, req, response));
        return { result, replay: null };
      } catch (err) {
        await service.release(req).catch(() => {});
        throw err;
      }
    },
  };
  return service;
}

export type IdempotencyService = ReturnType<typeof createIdempotencyService>;
