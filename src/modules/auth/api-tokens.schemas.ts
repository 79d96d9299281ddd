import { z } from 'zod';
import { API_TOKEN_SCOPES, type ApiTokenRow } from '../../db/schema/index.js';

export const scopeSchema = z
  .enum(API_TOKEN_SCOPES)
  .describe(
    'tickets:read (read tickets, comments, events, attachments) · tickets:write (create, update tickets, ' +
      'upload attachments) · comments:write · drafts:write · users:read (users, teams, /auth/me) · ' +
      'admin (admin-only operations: user and team management, audit log, ticket delete/restore)',
  );

export const createApiTokenBody = z
  .strictObject({
    name: z.string().trim().min(1).max(100).describe('What the token is for, e.g. "triage script"'),
    scopes: z.array(scopeSchema).min(1).max(API_TOKEN_SCOPES.length),
    expiresInDays: z.number().int().min(1).max(365).optional().describe('1..365; default 90'),
  })
  .meta({
    example: { name: 'triage assistant', scopes: ['tickets:read', 'drafts:write'], expiresInDays: 30 },
  });

export const apiTokenSchema = z
  .object({
    id: z.uuid(),
    name: z.string(),
    scopes: z.array(scopeSchema),
    expiresAt: z.date(),
    createdAt: z.date(),
    lastUsedAt: z.date().nullable().describe('Updated at most once a minute'),
  })
  .meta({
    id: 'ApiToken',
    example: {
      id: '5d1b7f0e-2f0c-4e53-9a0e-1f7c0b9b6a11',
      name: 'triage assistant',
      scopes: ['tickets:read', 'drafts:write'],
      expiresAt: '2026-12-30T10:00:00.000Z',
      createdAt: '2026-11-30T10:00:00.000Z',
      lastUsedAt: null,
    },
  });

export const createdApiTokenSchema = apiTokenSchema
  .extend({
    token: z.string().describe('hd_pat_…: shown only in this response; store it now'),
  })
  .meta({ id: 'CreatedApiToken' });

export const apiTokenListSchema = z
  .object({ data: z.array(apiTokenSchema), nextCursor: z.string().nullable() })
  .meta({ id: 'ApiTokenList' });

export const listApiTokensQuery = z.strictObject({
  limit: z.coerce.number().int().min(1).max(100).default(25),
  cursor: z.string().min(1).max(2048).optional().describe('Opaque; the nextCursor of the previous page'),
});

export const apiTokenIdParams = z.strictObject({ id: z.uuid() });

export function toApiTokenDto(row: ApiTokenRow) {
  return {
    id: row.id,
    name: row.name,
    scopes: row.scopes,
    expiresAt: row.expiresAt,
    createdAt: row.createdAt,
    lastUsedAt: row.lastUsedAt,
  };
}
