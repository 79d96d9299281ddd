/**
 * Operators: create an admin account from the command line.
 *   npm run create-admin -- --email admin@example.com --password '…' [--name 'Ada Admin']
 *   node dist/src/create-admin.js --email … (the built image, where scripts/ is absent)
 * The password may come from ADMIN_PASSWORD instead of the command line (keeps it out of shell history and
 * `ps`). Uses DATABASE_URL, or the embedded database under DATA_DIR (stop the server first in that case),
 * and applies pending migrations first. Exit codes: 0 created, 1 refused (taken email, weak password), 2 usage.
 */
import path from 'node:path';
import { parseArgs } from 'node:util';
import { ConfigError, loadCreateAdminConfig, resolveJwtSecret } from './config.js';
import { createDb, resolveDatabase } from './db/client.js';
import { runMigrations } from './db/migrate.js';
import { AppError } from './lib/errors.js';
import { createServices } from './services.js';

export async function runCreateAdmin(
  args: string[],
  load: () => ReturnType<typeof loadCreateAdminConfig> = loadCreateAdminConfig,
): Promise<number> {
  let values: { email?: string; password?: string; name?: string };
  try {
    ({ values } = parseArgs({
      args,
      options: { email: { type: 'string' }, password: { type: 'string' }, name: { type: 'string' } },
      strict: true,
    }));
  } catch (err) {
    console.error((err as Error).message);
    values = {};
  }
  let loaded: ReturnType<typeof loadCreateAdminConfig>;
  try {
    loaded = load();
  } catch (err) {
    if (err instanceof ConfigError) {
      console.error(err.message);
      return 2;
    }
    throw err;
  }
  const password = values.password ?? loaded.adminPassword;
  if (!values.email || !password) {
    console.error('usage: npm run create-admin -- --email <email> --password <password> [--name <name>]');
    return 2;
  }
  const config = await resolveJwtSecret(loaded.config);
  const database = await resolveDatabase(config);
  const handle = createDb(database.url, config.db);
  try {
    await runMigrations(database.migrationUrl, database.url);
    const { adminAccounts } = createServices(config, handle.db);
    await adminAccounts.create(
      { email: values.email, password, name: values.name },
      { source: 'cli', onlyIfNoAdmin: false },
    );
    console.log(`admin ${values.email} created`);
    return 0;
  } catch (err) {
    if (err instanceof AppError) {
      console.error(`not created: ${err.code}: ${err.detail}`);
      return 1;
    }
    throw err;
  } finally {
    await handle.close();
    await database.stop();
  }
}

if (process.argv[1] && import.meta.url === new URL(`file://${path.resolve(process.argv[1])}`).href) {
  process.exitCode = await runCreateAdmin(process.argv.slice(2));
}
