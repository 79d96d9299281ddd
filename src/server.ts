import { buildApp, loggerOptions } from './app.js';
import { runClusterWorker, runPrimary } from './cluster.js';
import { ConfigError, loadConfig, resolveJwtSecret } from './config.js';
import { resolveDatabase } from './db/client.js';
import { runMigrations } from './db/migrate.js';
import { isClusterWorker } from './lib/cluster-worker.js';
import { closeOnSignals } from './lib/interrupt.js';
import { tuneV8 } from './lib/v8-tuning.js';
import { runWorker } from './worker.js';

/**
 * Process entry point: config, database, migrations, listen, job worker (ROLE=all, the default; ROLE=api
 * leaves jobs to `npm run worker`; ROLE=worker runs src/worker.ts instead), graceful shutdown. Nothing else.
 * WEB_CONCURRENCY > 1: this process becomes the primary of src/cluster.ts and forks that many HTTP workers.
 */
async function main() {
  tuneV8();
  let config: ReturnType<typeof loadConfig>;
  try {
    config = loadConfig();
  } catch (err) {
    if (err instanceof ConfigError) {
      console.error(err.message);
      process.exit(1);
    }
    throw err;
  }

  if (config.role === 'worker') return runWorker(config);
  if (isClusterWorker()) {
    // Forked by the primary, which resolved both (see src/cluster.ts).
    const { databaseUrl, jwtSecret } = config;
    if (!databaseUrl || !jwtSecret)
      throw new Error('an HTTP worker needs DATABASE_URL and JWT_SECRET from its primary');
    return runClusterWorker({ ...config, databaseUrl, jwtSecret });
  }
  if (config.webConcurrency > 1) return runPrimary(config);

  const secrets = await resolveJwtSecret(config);
  const database = await resolveDatabase(config, (msg) => console.log(`[embedded-postgres] ${msg}`));
  await runMigrations(database.migrationUrl, database.url);

  const app = await buildApp({ ...secrets, databaseUrl: database.url }, { logger: loggerOptions(config) });
  await app.services.adminAccounts.bootstrap(config.admin, app.log); // ADMIN_EMAIL/ADMIN_PASSWORD, only while no admin exists

  // Listening and the job runner's start; a signal that arrives meanwhile lets it finish, then stops it all
  // (stopping the database under a starting job runner would fail the start and exit 1).
  let starting: Promise<unknown> = Promise.resolve();

  // SIGTERM (orchestrator): drain, then close. SIGINT (Ctrl-C): close at once. Either way the process
  // exits within drain + job shutdown + 10 s even if a request, a job or the database hangs.
  closeOnSignals(
    { delay: config.shutdownDrainMs + config.jobs.shutdownTimeoutMs + 10_000, log: app.log },
    async ({ signal, err }) => {
      if (err) app.log.error({ err }, 'shutting down after an error');
      else app.log.info(`${signal} received, shutting down`);
      if (signal === 'SIGTERM' && config.shutdownDrainMs > 0) {
        app.startDraining(); // /readyz 503 and Connection: close while the load balancer lets go
        await new Promise((resolve) => setTimeout(resolve, config.shutdownDrainMs));
      }
      await starting.catch(() => {});
      await app.close(); // stops accepting, waits for in-flight requests and running jobs, then closes the pool
      await database.stop(); // the embedded PostgreSQL, last (a no-op for DATABASE_URL)
    },
  );

  starting = (async () => {
    await app.listen({ port: config.port, host: config.host });
    if (config.role === 'all') await app.jobRunner.start();
  })();
  await starting;
  const shown = config.host === '0.0.0.0' || config.host === '::' ? 'localhost' : config.host;
  const base = `http://${shown}:${app.server.address() && typeof app.server.address() === 'object' ? (app.server.address() as { port: number }).port : config.port}`;
  app.log.info(
    `Helpdesk API ready: ${base}/api/v1  docs: ${base}/docs  (database: ${database.embedded ? `embedded PostgreSQL in ${database.location}` : 'DATABASE_URL'}; jobs: ${config.role === 'all' ? 'worker in this process' : 'ROLE=api, run `npm run worker`'})`,
  );
}

main().catch((err) => {
  console.error('failed to start:', err instanceof Error ? err.message : err);
  process.exit(1);
});
