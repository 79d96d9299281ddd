import { type SQL, sql } from 'drizzle-orm';
import type { AnyPgColumn } from 'drizzle-orm/pg-core';
import type { CreatedAtKeyset } from '../lib/keyset.js';

/**
 * The cursor text of a created_at column: PostgreSQL's own microseconds in UTC (a JS Date keeps only
 * milliseconds, and a cursor rounded to them skips or repeats rows created within the same millisecond).
 */
export const createdAtSortKey = (createdAt: AnyPgColumn): SQL<string> =>
  sql<string>`to_char(${createdAt} at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')`;

/**
 * Rows after a (created_at, id) keyset position, as one row comparison (served by an index on
 * (created_at, id) in either direction): `newestFirst` walks descending, otherwise ascending.
 */
export function afterCreatedAt(
  createdAt: AnyPgColumn,
  id: AnyPgColumn,
  after: CreatedAtKeyset,
  newestFirst: boolean,
): SQL {
  return newestFirst
    ? sql`(${createdAt}, ${id}) < (${after.createdAt}::timestamptz, ${after.id}::uuid)`
    : sql`(${createdAt}, ${id}) > (${after.createdAt}::timestamptz, ${after.id}::uuid)`;
}
