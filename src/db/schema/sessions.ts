import { sql } from 'drizzle-orm';
import { index, pgTable, text, timestamp, uniqueIndex, uuid } from 'drizzle-orm/pg-core';
import { users } from './users.js';

/**
 * One row per login (its id is the refresh-token family id and the access tokens' `sid` claim).
 * The row is the lock that serializes a refresh rotation against a revocation of the same session,
 * and `revokedAt` is what the auth hook checks, so access tokens die with their session.
 */
export const sessions = pgTable(
  'sessions',
  {
    id: uuid().primaryKey().defaultRandom(),
    userId: uuid()
      .notNull()
      .references(() => users.id, { onDelete: 'cascade' }),
    createdAt: timestamp({ withTimezone: true, mode: 'date' }).notNull().defaultNow(),
    expiresAt: timestamp({ withTimezone: true, mode: 'date' }).notNull(),
    revokedAt: timestamp({ withTimezone: true, mode: 'date' }),
  },
  (t) => [index('sessions_user_live_idx').on(t.userId).where(sql`${t.revokedAt} IS NULL`)],
);
export type SessionRow = typeof sessions.$inferSelect;

/** The scopes a personal API token can carry (contract: "Personal API tokens"). */
export const API_TOKEN_SCOPES = [
  'tickets:read',
  'tickets:write',
  'comments:write',
  'drafts:write',
  'users:read',
  'admin',
] as const;
export type ApiTokenScope = (typeof API_TOKEN_SCOPES)[number];

/** Personal API tokens (`hd_pat_…`): only the SHA-256 of the secret is stored. */
export const apiTokens = pgTable(
  'api_tokens',
  {
    id: uuid().primaryKey().defaultRandom(),
    userId: uuid()
      .notNull()
      .references(() => users.id, { onDelete: 'cascade' }),
    name: text().notNull(),
    scopes: text().array().notNull().$type<ApiTokenScope[]>(),
    tokenHash: text().notNull(),
    expiresAt: timestamp({ withTimezone: true, mode: 'date' }).notNull(),
    createdAt: timestamp({ withTimezone: true, mode: 'date' }).notNull().defaultNow(),
    lastUsedAt: timestamp({ withTimezone: true, mode: 'date' }),
    revokedAt: timestamp({ withTimezone: true, mode: 'date' }),
  },
  (t) => [
    uniqueIndex('api_tokens_hash_uq').on(t.tokenHash),
    index('api_tokens_user_created_idx').on(t.userId, t.createdAt, t.id),
  ],
);
export type ApiTokenRow = typeof apiTokens.$inferSelect;
