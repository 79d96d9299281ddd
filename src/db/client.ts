import { drizzle, type NodePgDatabase } from 'drizzle-orm/node-postgres';
import pg from 'pg';
import type { Config } from '../config.js';
import { DbClient, PreparingClient } from './prepared.js';

export type Database = NodePgDatabase & { $client: pg.Pool };
/** A transaction handle, or the database itself: what every repository method runs on. */
export type Executor = Database | Parameters<Parameters<Database['transaction']>[0]>[0];

export interface DbHandle {
  db: Database;
  pool: pg.Pool;
  close(): Promise<void>;
}

// Return bigint (int8) and numeric as JS numbers where safe; counts and sequences stay far below 2^53.
pg.types.setTypeParser(pg.types.builtins.INT8, (v) => Number.parseInt(v, 10));

/**
 * One pg Pool per process. Connection, statement and idle-in-transaction timeouts are set so a stuck
 * database turns into a quick error (mapped to 503) rather than a hung request; pool 'error' events
 * (a backend dying while idle, e.g. a database restart) are logged instead of crashing the process.
 */
export function createDb(
  url: string,
  opts: Config['db'],
  onPoolError: (err: Error) => void = () => {},
): DbHandle {
  const pool = new pg.Pool({
    // Names repeated queries so PostgreSQL parses and plans them once per connection (src/db/prepared.ts).
    // Either way the Client marks its connection errors as PostgreSQL's (503, not 500).
    Client: opts.preparedStatements ? PreparingClient : DbClient,
    connectionString: url,
    max: opts.poolMax,
    connectionTimeoutMillis: opts.connectionTimeoutMs,
    idleTimeoutMillis: 30_000,
    statement_timeout: opts.statementTimeoutMs,
    idle_in_transaction_session_timeout: Math.max(opts.statementTimeoutMs * 2, 10_000),
    application_name: 'helpdesk-api',
  });
  // pool.end() resolves once its idle connections are told to close, not once they have: the embedded database,
  // stopped right after, can still cut them. That is shutdown, not a lost connection: not reported.
  const onError = (err: Error) => {
    if (!pool.ending) onPoolError(err);
  };
  pool.on('error', onError);
  // A checked-out client has no pool listener: a backend killed between two statements (database restart)
  // would emit an unhandled 'error' and crash the process. The query in progress still gets its own error.
  pool.on('connect', (client) => client.on('error', onError));
  // No relational schema: the application never uses drizzle's relational queries (db.query.*), and with one
  // every transaction handle built a query builder per table (a few % of a create's CPU).
  const db = drizzle({ client: pool, casing: 'snake_case' }) as Database;
  return { db, pool, close: () => pool.end() };
}

export interface ResolvedDatabase {
  url: string;
  /** The role migrations run as (the owner); the same as url unless DATABASE_MIGRATION_URL is set. */
  migrationUrl: string;
  embedded: boolean;
  /** Where the embedded cluster's files are (it moves out of a directory its OS user cannot enter). */
  location?: string;
  /** Stops the embedded server; a no-op for an external DATABASE_URL. */
  stop(): Promise<void>;
}

/** DATABASE_URL when set; otherwise a real PostgreSQL started from embedded binaries under DATA_DIR. */
export async function resolveDatabase(
  config: Pick<Config, 'databaseUrl' | 'databaseMigrationUrl' | 'dataDir' | 'embeddedPgPort'>,
  log: (msg: string) => void = () => {},
): Promise<ResolvedDatabase> {
  if (config.databaseUrl) {
    const migrationUrl = config.databaseMigrationUrl ?? config.databaseUrl;
    return { url: config.databaseUrl, migrationUrl, embedded: false, stop: async () => {} };
  }
  const { startEmbeddedPostgres } = await import('./embedded.js');
  const path = await import('node:path');
  const server = await startEmbeddedPostgres({
    dir: path.join(config.dataDir, 'postgres'),
    port: config.embeddedPgPort,
    log,
  });
  return {
    url: server.url,
    migrationUrl: server.url,
    embedded: true,
    location: server.clusterDir,
    stop: server.stop,
  };
}
