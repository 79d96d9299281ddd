import { InvalidCursorError } from './cursor.js';
import { PG_TIMESTAMP_UTC, UUID } from './patterns.js';

/**
 * One keyset page from `limit + 1` rows fetched: the first `limit` rows, and the cursor of the last one
 * when the extra row shows that more follow (null on the last page).
 */
export function keysetPage<R>(
  rows: readonly R[],
  limit: number,
  cursorOf: (last: R) => string,
): { page: R[]; nextCursor: string | null } {
  const page = rows.slice(0, limit);
  const last = page.at(-1);
  return { page, nextCursor: rows.length > limit && last !== undefined ? cursorOf(last) : null };
}

/** Keyset position of tables ordered by (created_at, id) with a UUID id: users and teams. */
export interface CreatedAtKeyset {
  /** PostgreSQL's microsecond text of created_at (a JS Date would lose the microseconds). */
  createdAt: string;
  id: string;
}

/** Reads a decoded `{ t: createdAt, i: id }` cursor payload; anything else → 422 on querystring.cursor. */
export function createdAtKeyset(payload: Record<string, unknown>): CreatedAtKeyset {
  const { t, i } = payload;
  if (typeof t !== 'string' || !PG_TIMESTAMP_UTC.test(t) || typeof i !== 'string' || !UUID.test(i)) {
    throw new InvalidCursorError();
  }
  return { createdAt: t, id: i };
}
