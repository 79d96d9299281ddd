import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { rm } from 'node:fs/promises';
import { afterAll, describe, expect, it } from 'vitest';
import { canConnect, freePort, report, type ServerProcess, sleep, startServer, tempDir } from './harness.js';

/** close-with-grace's delay in server.ts is 10 s; the process must be gone well within it. */
const EXIT_BOUND_MS = 10_000;

// A terminal's Ctrl-C sends SIGINT to the whole foreground process group: the server and, unless it runs in
// a group of its own, the embedded PostgreSQL it started. The database must go down after the application,
// not under its open connections; and the same Ctrl-C relayed again must not cut the shutdown short.
describe.each([
  { workers: 1, label: 'one process' },
  { workers: 2, label: 'cluster mode, WEB_CONCURRENCY=2' },
])('Ctrl-C in a terminal (SIGINT to the process group; $label)', ({ workers }) => {
  let dataDir: string | undefined;
  let server: ServerProcess | undefined;

  afterAll(async () => {
    await server?.kill();
    if (dataDir) await rm(dataDir, { recursive: true, force: true });
  });

  it('stops the application first and then its database: exit 0, no lost-connection warnings', async () => {
    dataDir = await tempDir('helpdesk-fault-ctrl-c-');
    const pgPort = await freePort();
    server = await startServer(
      {
        DATA_DIR: dataDir,
        EMBEDDED_PG_PORT: String(pgPort),
        JWT_SECRET: randomBytes(32).toString('hex'),
        WEB_CONCURRENCY: String(workers),
      },
      { processGroup: true },
    );
    // The job worker and the live-update listener hold their connections open, as in use.
    expect((await fetch(`${server.url}/readyz`)).status).toBe(200);
    const logged = server.output.length;

    const t0 = performance.now();
    // Started as `npm start`, one Ctrl-C arrives several times: from the terminal, then relayed by npm and tsx.
    for (let i = 0; i < 3; i++) {
      process.kill(-server.child.pid!, 'SIGINT');
      await sleep(20);
    }
    const exit = await Promise.race([server.exit, sleep(EXIT_BOUND_MS + 5000).then(() => null)]);
    const exitMs = performance.now() - t0;
    const dbStopped = !(await canConnect(pgPort));
    const after = server.output.slice(logged);
    const complaints = after.filter((l) =>
      /connection lost|terminating connection|shutting down|57P0[1-3]|ECONNREFUSED|Error with notify/.test(l),
    );

    report(`Ctrl-C (WEB_CONCURRENCY=${workers})`, {
      'exit code / signal': exit ? `${exit.code} / ${exit.signal}` : 'still running',
      'SIGINT→exit (ms)': Math.round(exitMs),
      'embedded PostgreSQL stopped': dbStopped,
      'log lines after SIGINT': after.length,
      'lost-connection lines': complaints.length,
    });
    expect(exit).not.toBeNull();
    expect(exit!.code).toBe(0);
    expect(exitMs).toBeLessThan(EXIT_BOUND_MS);
    expect(dbStopped).toBe(true);
    expect(complaints).toEqual([]);
  });
});

describe('an exit that skips the shutdown (a second Ctrl-C, the shutdown time limit)', () => {
  let dataDir: string | undefined;
  afterAll(async () => {
    if (dataDir) await rm(dataDir, { recursive: true, force: true });
  });

  it('still stops the embedded PostgreSQL, which runs in a process group of its own', async () => {
    dataDir = await tempDir('helpdesk-fault-exit-');
    const port = await freePort();
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', 'test/faults/fixtures/exit-without-stop.ts', dataDir, String(port)],
      {
        stdio: ['ignore', 'pipe', 'inherit'],
      },
    );
    let out = '';
    child.stdout!.on('data', (c: Buffer) => {
      out += c.toString();
    });
    const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
    expect(out).toContain('started');
    expect(code).toBe(1);
    // Fast shutdown was requested as the process went; it completes on its own.
    let up = true;
    for (const until = Date.now() + 10_000; up && Date.now() < until; await sleep(100))
      up = await canConnect(port);
    report('exit without stop', { 'exit code': code, 'embedded PostgreSQL stopped': !up });
    expect(up).toBe(false);
  });
});
