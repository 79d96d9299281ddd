import path from 'node:path';
import type { FastifyInstance } from 'fastify';
import { buildApp, loggerOptions } from './app.js';
import { type Config, ConfigError, loadConfig, resolveJwtSecret } from './config.js';
import { resolveDatabase } from './db/client.js';
import { runMigrations } from './db/migrate.js';
import { closeOnSignals } from './lib/interrupt.js';

/**
 * ROLE=worker (`npm run worker`): the job runner and scheduler only, no HTTP listener. It builds the same
 * composition root as the API (so it knows every module's job kinds), migrates (safe beside other
 * instances: an advisory lock), and on SIGTERM/SIGINT lets running jobs finish within
 * JOBS_SHUTDOWN_TIMEOUT_MS; jobs still running then go back to the queue and are retried.
 * `prepare` lets a caller register more job kinds before the runner starts (the fault tests' fixture).
 */
export async function runWorker(
  config: Config,
  prepare: (app: FastifyInstance) => void | Promise<void> = () => {},
): Promise<void> {
  const secrets = await resolveJwtSecret(config);
  const database = await resolveDatabase(config, (msg) => console.log(`[embedded-postgres] ${msg}`));
  await runMigrations(database.migrationUrl, database.url);
  const app = await buildApp({ ...secrets, databaseUrl: database.url }, { logger: loggerOptions(config) });
  if (database.embedded) {
    app.log.warn(
      'worker on the embedded PostgreSQL: do not also run `npm start` on the same DATA_DIR; use DATABASE_URL to split roles',
    );
  }
  await prepare(app);

  // The job runner's start; a signal that arrives meanwhile lets it finish before stopping it (as server.ts).
  let starting: Promise<unknown> = Promise.resolve();
  // Ctrl-C under `npm run worker` arrives more than once: taken once (src/lib/interrupt.ts).
  closeOnSignals({ delay: config.jobs.shutdownTimeoutMs + 10_000, log: app.log }, async ({ signal, err }) => {
    if (err) app.log.error({ err }, 'worker shutting down after an error');
    else app.log.info(`${signal} received, stopping the worker`);
    await starting.catch(() => {});
    await app.close(); // the runner first (running jobs finish, bounded), then the pool
    await database.stop();
  });

  starting = app.jobRunner.start();
  await starting;
  app.log.info(
    `Helpdesk worker ready (database: ${database.embedded ? `embedded PostgreSQL in ${database.location}` : 'DATABASE_URL'})`,
  );
}

export function loadConfigOrExit(): Config {
  try {
    return loadConfig();
  } catch (err) {
    if (err instanceof ConfigError) {
      console.error(err.message);
      process.exit(1);
    }
    throw err;
  }
}

if (process.argv[1] && import.meta.url === new URL(`file://${path.resolve(process.argv[1])}`).href) {
  runWorker({ ...loadConfigOrExit(), role: 'worker' }).catch((err) => {
    console.error('worker failed to start:', err instanceof Error ? err.message : err);
    process.exit(1);
  });
}
