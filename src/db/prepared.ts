import { createHash } from 'node:crypto';
import pg from 'pg';

/**
 * Server-side prepared statements for the application's repeated queries.
 *
 * drizzle sends every query unnamed, so PostgreSQL parses and plans the same SELECT on every request
 * (for the ticket list, planning costs more than executing). A pool built with this Client names each
 * distinct DML text (`hd_<hash>`): node-postgres then parses it once per connection and PostgreSQL
 * reuses the plan. Parameters stay parameters; only the text is the key.
 *
 * Left unnamed on purpose:
 * - full-text queries (`@@`): their best plan depends on how common the searched term is, which a
 *   cached generic plan cannot know;
 * - anything but SELECT/INSERT/UPDATE/DELETE/WITH (BEGIN, SET, DDL, …);
 * - new texts once MAX_STATEMENTS distinct ones have been named (bounds the memory of every backend).
 */
export const MAX_STATEMENTS = 300;

const DML = /^\s*(select|insert|update|delete|with)\s/i;
const names = new Map<string, string | null>();

/** The statement name for a query text, or null when it should stay unnamed. */
export function statementName(text: string): string | null {
  const known = names.get(text);
  if (known !== undefined) return known;
  if (names.size >= MAX_STATEMENTS) return null;
  const name =
    DML.test(text) && !text.includes('@@')
      ? `hd_${createHash('sha1').update(text).digest('base64url').slice(0, 20)}`
      : null;
  names.set(text, name);
  return name;
}

interface QueryConfigLike {
  text?: unknown;
  name?: unknown;
  submit?: unknown;
}

/**
 * pg Client whose connection errors say they are PostgreSQL's: a socket error while connecting can be a
 * `read ECONNRESET` (the server went away mid-handshake), which alone looks like any other socket's error.
 * isDatabaseUnavailable() reads the mark, so such a request gets 503, not 500.
 */
export class DbClient extends pg.Client {
  // pg's connect() has a callback form (used by pg-pool) and a promise form.
  override connect(...args: unknown[]): never {
    const callback = args[0];
    const connect = super.connect as (...a: unknown[]) => never;
    if (typeof callback === 'function')
      return connect.call(this, (err: unknown) => callback(markDatabaseConnectionError(err)));
    return (connect.call(this) as Promise<void>).catch((err: unknown) => {
      throw markDatabaseConnectionError(err);
    }) as never;
  }
}

/** Marks an error raised while connecting to PostgreSQL (see DbClient); returns it. */
export function markDatabaseConnectionError<T>(err: T): T {
  if (err && typeof err === 'object') (err as { databaseConnection?: boolean }).databaseConnection = true;
  return err;
}

/** pg Client that names the statements statementName() picks; everything else is pg's own query(). */
export class PreparingClient extends DbClient {
  // pg's query() has many overloads; this only rewrites the config object form drizzle uses.
  override query(...args: unknown[]): never {
    const config = args[0] as QueryConfigLike | null;
    if (
      config &&
      typeof config === 'object' &&
      typeof config.text === 'string' &&
      config.name === undefined &&
      config.submit === undefined
    ) {
      const name = statementName(config.text);
      if (name) args[0] = { ...config, name };
    }
    return (super.query as (...a: unknown[]) => never)(...args);
  }
}
