import { Param, Placeholder, type SQL } from 'drizzle-orm';
import { drizzle } from 'drizzle-orm/node-postgres';
import { PgDialect } from 'drizzle-orm/pg-core';
import type pg from 'pg';
import type { Executor } from './client.js';

/**
 * Statements of the hot request paths, built once with drizzle's query builder (so names and casing come
 * from the schema) and then sent straight to node-postgres on every request: no query building, no
 * per-row result mapping. Select the columns `AS "<key>"` and pg hands back rows already shaped as the
 * caller's type. Rows come through pg's own type parsers (timestamptz → Date, arrays → arrays), as drizzle's
 * results do for the column types these statements use.
 */

/** A database without a connection: only for building statements (same casing as the application's db). */
export const queryBuilder = drizzle.mock({ casing: 'snake_case' });

const dialect = new PgDialect({ casing: 'snake_case' });

/** The text and parameters of a hand-written sql`` statement (CTEs and shapes the builder cannot express). */
export function sqlText(query: SQL): { sql: string; params: unknown[] } {
  return dialect.sqlToQuery(query);
}

type Queryable = Pick<pg.Pool, 'query'>;

/** The node-postgres pool, or inside a transaction its checked-out client, that a drizzle Executor sends to. */
export function pgClientOf(ex: Executor): Queryable {
  const client = (ex as unknown as { session?: { client?: Queryable } }).session?.client;
  if (!client || typeof client.query !== 'function') {
    throw new Error('this executor has no node-postgres client (drizzle internals changed?)');
  }
  return client;
}

export interface CompiledQuery<P extends Record<string, unknown>> {
  readonly text: string;
  /** The positional values for named placeholder values (constants the builder bound stay as they were). */
  bind(values: P): unknown[];
}

/** Compiles a drizzle query whose variable parts are `sql.placeholder(name)`s. */
export function compile<P extends Record<string, unknown>>(query: {
  toSQL(): { sql: string; params: unknown[] };
}): CompiledQuery<P> {
  const { sql, params } = query.toSQL();
  const slots = params.map((param) => {
    // An insert's values stay wrapped in their column's Param; pg encodes the value itself (Date, array).
    const p = param instanceof Param ? param.value : param;
    return p instanceof Placeholder ? { name: p.name as keyof P & string } : { value: p };
  });
  return {
    text: sql,
    bind: (values) => {
      const out = new Array<unknown>(slots.length);
      for (let i = 0; i < slots.length; i++) {
        const s = slots[i]!;
        out[i] = 'name' in s && s.name !== undefined ? values[s.name] : s.value;
      }
      return out;
    },
  };
}

/** Runs a compiled statement on the executor (the pool, or the transaction's client). */
export async function runCompiled<R, P extends Record<string, unknown>>(
  ex: Executor,
  query: CompiledQuery<P>,
  values: P,
): Promise<R[]> {
  const result = await pgClientOf(ex).query({ text: query.text, values: query.bind(values) });
  return result.rows as R[];
}
