import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { drizzle } from 'drizzle-orm/node-postgres';
import { migrate } from 'drizzle-orm/node-postgres/migrator';
import pg from 'pg';
import { migrateQueue } from '../modules/jobs/job-runner.js';

/** migrations/ lives at the project root, both for src/ (tsx) and dist/src/ (built) layouts. */
export function findMigrationsFolder(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 5; i++) {
    const candidate = path.join(dir, 'migrations');
    if (existsSync(path.join(candidate, 'meta', '_journal.json'))) return candidate;
    dir = path.dirname(dir);
  }
  throw new Error('migrations/ folder not found');
}

// Any constant works; it only has to be the same for every instance of this application.
const MIGRATION_LOCK_KEY = 727_274_001;

/**
 * Applies pending migrations (ours, then the job queue library's) as the role of `url`, the tables' owner.
 * When the application connects as another role (`runtimeUrl`, i.e. DATABASE_URL beside
 * DATABASE_MIGRATION_URL), that role is then granted what it needs: all rows of every table, but only
 * INSERT and SELECT on the append-only audit trail (helpdesk_grant_runtime_role, a no-op for the owner).
 * A session-level advisory lock makes concurrent starts of several instances safe: one migrates, the
 * others wait and then find nothing to do.
 */
export async function runMigrations(url: string, runtimeUrl: string = url): Promise<void> {
  const runtimeRole = runtimeUrl === url ? undefined : await currentUser(runtimeUrl);
  const client = new pg.Client({ connectionString: url, application_name: 'helpdesk-migrate' });
  await client.connect();
  try {
    await client.query('SET client_min_messages = warning');
    await client.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK_KEY]);
    await migrate(drizzle({ client }), { migrationsFolder: findMigrationsFolder() });
    await migrateQueue(url); // the job queue's own schema (graphile_worker), versioned by the library
    if (runtimeRole !== undefined) {
      await client.query('SELECT helpdesk_grant_runtime_role($1)', [runtimeRole]);
    }
  } finally {
    await client.query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK_KEY]).catch(() => {});
    await client.end();
  }
}

/** The role a URL logs in as (the URL may leave the user to libpq defaults). */
async function currentUser(url: string): Promise<string> {
  const client = new pg.Client({ connectionString: url, application_name: 'helpdesk-migrate' });
  await client.connect();
  try {
    const { rows } = await client.query<{ user: string }>('SELECT current_user AS "user"');
    return rows[0]!.user;
  } finally {
    await client.end();
  }
}

// `npm run db:migrate`: apply migrations to DATABASE_URL, or to the embedded database under DATA_DIR.
if (process.argv[1] && import.meta.url === new URL(`file://${path.resolve(process.argv[1])}`).href) {
  const { loadConfig } = await import('../config.js');
  const { resolveDatabase } = await import('./client.js');
  const config = loadConfig();
  const database = await resolveDatabase(config, () => {});
  try {
    await runMigrations(database.migrationUrl, database.url);
    const where = database.embedded
      ? 'embedded PostgreSQL'
      : database.migrationUrl === database.url
        ? 'DATABASE_URL'
        : 'DATABASE_MIGRATION_URL; DATABASE_URL role granted';
    console.log(`migrations applied (${where})`);
  } finally {
    await database.stop();
  }
}
