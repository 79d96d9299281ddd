import type { Database } from '../../db/client.js';
import type { ApiTokenRow, ApiTokenScope } from '../../db/schema/index.js';
import type { Clock } from '../../lib/clock.js';
import { type CursorCodec, InvalidCursorError } from '../../lib/cursor.js';
import { ConflictError, NotFoundError, ValidationError } from '../../lib/errors.js';
import type { AuditService } from '../audit/audit.service.js';
import type { AuthedContext } from './actor.js';
import { hashApiToken, newApiToken } from './api-token-secret.js';
import type { ApiTokenKeyset, ApiTokensRepository } from './api-tokens.repository.js';
import { AccessDeniedError } from './permissions.js';

const TIMESTAMP = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$/;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const DAY_MS = 86_400_000;
/** Live (unrevoked, unexpired) tokens one user may hold: enough for any set of scripts, bounded. */
export const MAX_LIVE_TOKENS_PER_USER = 50;

export interface ApiTokensServiceDeps {
  db: Database;
  tokens: ApiTokensRepository;
  audit: AuditService;
  cursor: CursorCodec;
  clock: Clock;
}

export class ApiTokenNotFoundError extends NotFoundError {
  constructor(id: string) {
    super('TOKEN_NOT_FOUND', 'Token not found', `API token ${id} does not exist or is not yours.`);
  }
}

/** Only people manage tokens: a token cannot mint, list or revoke tokens (no escalation by a leaked one). */
function assertSignedIn(ctx: AuthedContext, operation: string): void {
  if (ctx.actor.apiToken) {
    throw new AccessDeniedError(
      operation,
      { type: 'api_token' },
      'API tokens are managed only after signing in, not with another API token.',
      'INSUFFICIENT_SCOPE',
    );
  }
}

export function createApiTokensService(deps: ApiTokensServiceDeps) {
  const { db, tokens, audit, cursor, clock } = deps;

  return {
    /** The token with this hash and its owner's current state (read on every request: no cache). */
    findByHash: (hash: string) => tokens.findByHashWithOwner(db, hash),

    /** Records a use (the auth hook calls it at most once a minute per token and process). */
    recordUse: (id: string) => tokens.touch(db, id),

    /**
     * POST /auth/tokens: a new token acting as the caller within `scopes`, valid `expiresInDays` (default
     * 90). The secret is returned once; only its hash is kept. `admin` is only for admins (a token never
     * exceeds its owner). Audited as api_token.created (name, scopes, expiry; never the secret).
     */
    async create(
      ctx: AuthedContext,
      input: { name: string; scopes: ApiTokenScope[]; expiresInDays?: number },
    ): Promise<{ row: ApiTokenRow; token: string }> {
      assertSignedIn(ctx, 'api_token.create');
      if (input.scopes.includes('admin') && ctx.actor.role !== 'admin') {
        throw new ValidationError(
          [{ path: 'body.scopes', message: 'the admin scope needs the admin role' }],
          'Only admins can give a token the admin scope.',
        );
      }
      const scopes = [...new Set(input.scopes)];
      const token = newApiToken();
      const expiresAt = new Date(clock.now().getTime() + (input.expiresInDays ?? 90) * DAY_MS);
      const row = await db.transaction(async (tx) => {
        if ((await tokens.countLiveForUser(tx, ctx.actor.id)) >= MAX_LIVE_TOKENS_PER_USER) {
          throw new ConflictError(
            'TOKEN_LIMIT_REACHED',
            `You already have ${MAX_LIVE_TOKENS_PER_USER} live API tokens; revoke one first.`,
            'Token limit reached',
          );
        }
        const created = await tokens.insert(tx, {
          userId: ctx.actor.id,
          name: input.name,
          scopes,
          tokenHash: hashApiToken(token),
          expiresAt,
        });
        await audit.record(tx, ctx, {
          action: 'api_token.created',
          entityType: 'api_token',
          entityId: created.id,
          changes: {
            name: [null, created.name],
            scopes: [null, created.scopes],
            expiresAt: [null, created.expiresAt.toISOString()],
          },
          metadata: { ownerId: ctx.actor.id },
        });
        return created;
      });
      return { row, token };
    },

    /** GET /auth/tokens: the caller's unrevoked tokens, newest first; never the secret. */
    async list(
      ctx: AuthedContext,
      query: { limit: number; cursor?: string },
    ): Promise<{ data: ApiTokenRow[]; nextCursor: string | null }> {
      assertSignedIn(ctx, 'api_token.list');
      let after: ApiTokenKeyset | undefined;
      if (query.cursor) {
        const c = cursor.decode(query.cursor);
        if (typeof c.t !== 'string' || !TIMESTAMP.test(c.t) || typeof c.i !== 'string' || !UUID.test(c.i)) {
          throw new InvalidCursorError();
        }
        after = { createdAt: c.t, id: c.i };
      }
      const rows = await tokens.listForUser(db, ctx.actor.id, query.limit + 1, after);
      const page = rows.slice(0, query.limit);
      const last = page.at(-1);
      const nextCursor =
        rows.length > query.limit && last ? cursor.encode({ t: last.sortKey, i: last.id }) : null;
      return { data: page, nextCursor };
    },

    /** DELETE /auth/tokens/{id}: the next request with it is refused (no cache). Audited as api_token.revoked. */
    async revoke(ctx: AuthedContext, id: string): Promise<void> {
      assertSignedIn(ctx, 'api_token.revoke');
      await db.transaction(async (tx) => {
        const row = await tokens.revokeOwn(tx, ctx.actor.id, id);
        if (!row) throw new ApiTokenNotFoundError(id);
        await audit.record(tx, ctx, {
          action: 'api_token.revoked',
          entityType: 'api_token',
          entityId: row.id,
          changes: { revokedAt: [null, row.revokedAt?.toISOString() ?? null] },
          metadata: { ownerId: ctx.actor.id, name: row.name },
        });
      });
    },
  };
}

export type ApiTokensService = ReturnType<typeof createApiTokensService>;
