/**
 * Shared plumbing for the client-facing checks (spec export, newman contract run, browser test):
 * a throwaway PostgreSQL database and a live API server started the way a user starts it.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { tempDatabase as createTempDatabase, type TempDatabase } from '../../test/helpers/temp-database.js';
import { freePort } from './free-port.js';

export { freePort };

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const ARTIFACTS = path.join(ROOT, 'artifacts');

export type { TempDatabase };

/** A throwaway database for the client checks (see test/helpers/temp-database.ts). */
export const tempDatabase = (): Promise<TempDatabase> => createTempDatabase('helpdesk_client');

export interface LiveServer {
  baseUrl: string;
  port: number;
  stop(): Promise<void>;
}

/** Waits until `url` answers 200, or throws after `timeoutMs`. */
export async function waitForOk(url: string, timeoutMs = 60_000, child?: ChildProcess): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  while (Date.now() < deadline) {
    if (child && child.exitCode !== null) throw new Error(`process exited (${child.exitCode}) before ${url}`);
    try {
      const res = await fetch(url);
      if (res.ok) return;
      last = `HTTP ${res.status}`;
    } catch (err) {
      last = String((err as Error).message);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`${url} not ready after ${timeoutMs} ms (${last})`);
}

/**
 * Starts `node --import tsx src/server.ts` as a child process — the same entry point as `npm start` —
 * on a free port, and waits for /readyz. Its output goes to artifacts/<name>-server.log.
 */
export async function startApiServer(opts: {
  name: string;
  databaseUrl: string;
  env?: Record<string, string>;
}): Promise<LiveServer> {
  const port = await freePort();
  await mkdir(ARTIFACTS, { recursive: true });
  const log = createWriteStream(path.join(ARTIFACTS, `${opts.name}-server.log`));
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'helpdesk-client-data-'));
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/server.ts'], {
    cwd: ROOT,
    env: {
      PATH: process.env.PATH ?? '',
      NODE_ENV: 'test',
      HOST: '127.0.0.1',
      PORT: String(port),
      DATABASE_URL: opts.databaseUrl,
      DATA_DIR: dataDir,
      JWT_SECRET: randomBytes(32).toString('hex'),
      LOG_LEVEL: 'info',
      ...opts.env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout?.pipe(log);
  child.stderr?.pipe(log);
  const baseUrl = `http://127.0.0.1:${port}`;
  const stop = async () => {
    if (child.exitCode === null) {
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
      await exited;
      clearTimeout(timer);
    }
    log.end();
    await rm(dataDir, { recursive: true, force: true });
  };
  try {
    await waitForOk(`${baseUrl}/readyz`, 60_000, child);
  } catch (err) {
    await stop();
    throw new Error(`API server did not start (see artifacts/${opts.name}-server.log): ${String(err)}`);
  }
  return { baseUrl, port, stop };
}

/** Runs `fn` with cleanups that always run, in reverse order, even when `fn` throws. */
export async function withCleanup<T>(
  fn: (defer: (c: () => Promise<unknown>) => void) => Promise<T>,
): Promise<T> {
  const cleanups: Array<() => Promise<unknown>> = [];
  try {
    return await fn((c) => cleanups.push(c));
  } finally {
    for (const c of cleanups.reverse()) await c().catch((err) => console.error('cleanup failed:', err));
  }
}
