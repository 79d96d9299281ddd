/**
 * Operators: create an admin account.
 *   npm run create-admin -- --email admin@example.com --password '…' [--name 'Ada Admin']
 * The password may come from the ADMIN_PASSWORD environment variable instead of the command line
 * (keeps it out of shell history and `ps`). Uses DATABASE_URL, or the embedded database under DATA_DIR
 * (stop the server first in that case), and applies pending migrations first.
 */
import { parseArgs } from 'node:util';
import { ConfigError, loadConfig } from '../src/config.js';
import { createDb, resolveDatabase } from '../src/db/client.js';
import { runMigrations } from '../src/db/migrate.js';
import { AppError } from '../src/lib/errors.js';
import { createAdminAccount } from '../src/modules/users/admin-bootstrap.js';

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: { email: { type: 'string' }, password: { type: 'string' }, name: { type: 'string' } },
    strict: true,
  });
  const password = values.password ?? process.env.ADMIN_PASSWORD;
  if (!values.email || !password) {
    console.error('usage: npm run create-admin -- --email <email> --password <password> [--name <name>]');
    return 2;
  }
  // Only the database settings matter here; the bootstrap pair is not needed.
  const config = loadConfig({ ...process.env, ADMIN_EMAIL: '', ADMIN_PASSWORD: '' });
  const database = await resolveDatabase(config);
  const handle = createDb(database.url, config.db);
  try {
    await runMigrations(database.url);
    await createAdminAccount(
      handle.db,
      { email: values.email, password, name: values.name },
      { passwordMinLength: config.passwordMinLength, source: 'cli', onlyIfNoAdmin: false },
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

main().then(
  (code) => process.exit(code),
  (err) => {
    console.error(err instanceof ConfigError ? err.message : err);
    process.exit(1);
  },
);
