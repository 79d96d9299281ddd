import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  arrangeUser,
  createTicket,
  FaultDatabase,
  type Outcome,
  report,
  runLoad,
  type ServerProcess,
  sleep,
  startServer,
  summarize,
  waitFor,
} from './harness.js';

const WORKERS = 8;
const MAX_REQUESTS = 20_000;
const WARM_UP_MS = 2000;
const DOWN_MS = 3000;
const AFTER_RECOVERY_MS = 2000;
const CONNECTION_TIMEOUT_MS = 1500;

describe('PostgreSQL restarted under steady load', () => {
  let db: FaultDatabase;
  let server: ServerProcess;
  let authorization: string;

  beforeAll(async () => {
    db = await FaultDatabase.create();
    const secret = randomBytes(32).toString('hex');
    ({ authorization } = await arrangeUser(db, secret));
    server = await startServer({
      DATABASE_URL: db.url,
      JWT_SECRET: secret,
      RATE_LIMIT_MAX: '1000000',
      DB_CONNECTION_TIMEOUT_MS: String(CONNECTION_TIMEOUT_MS),
      DATA_DIR: db.dir,
    });
  });

  afterAll(async () => {
    await server?.kill();
    await db?.destroy();
  });

  it('answers only 201 or 503 + Retry-After during the gap, recovers within 5 s, and loses no acknowledged write', async () => {
    const load = runLoad(WORKERS, MAX_REQUESTS, (t0) => createTicket(server.url, authorization, t0));
    const since = () => performance.now() - load.t0;

    // Readiness is polled beside the load: it must say 503 while the database is away.
    const readiness: { at: number; status: number | null }[] = [];
    let polling = true;
    const poller = (async () => {
      while (polling) {
        const at = since();
        const status = await fetch(`${server.url}/readyz`, { signal: AbortSignal.timeout(5000) })
          .then((r) => r.status)
          .catch(() => null);
        readiness.push({ at, status });
        await sleep(100);
      }
    })();

    await sleep(WARM_UP_MS);
    const downAt = since();
    await db.stop();
    const stoppedAt = since();
    await sleep(DOWN_MS);
    const restartAt = since();
    // The moment the database accepts queries again, seen by a probe of our own.
    let backAt = Number.NaN;
    const probe = (async () => {
      for (;;) {
        const c = new pg.Client({ connectionString: db.url, connectionTimeoutMillis: 500 });
        try {
          await c.connect();
          await c.query('select 1');
          backAt = since();
          return;
        } catch {
          await sleep(25);
        } finally {
          await c.end().catch(() => {});
        }
      }
    })();
    await db.start();
    await probe;

    // Recovery: the first ticket created by a request sent after the database is back.
    await waitFor(
      'a 201 after the database returned',
      async () => load.outcomes.some((o) => o.start >= backAt && o.status === 201),
      15_000,
    ).catch(async (err) => {
      await load.stop();
      polling = false;
      const after = load.outcomes.filter((o) => o.start >= backAt);
      throw new Error(
        `${err.message}; after restart: ${summarize(after)}; all: ${summarize(load.outcomes)}\n` +
          server.output
            .filter((l) => !l.startsWith('  '))
            .slice(-30)
            .join('\n'),
      );
    });
    const firstOk = load.outcomes
      .filter((o) => o.start >= backAt && o.status === 201)
      .reduce((min, o) => Math.min(min, o.end), Number.POSITIVE_INFINITY);
    const recoveryMs = firstOk - backAt;
    await sleep(AFTER_RECOVERY_MS);
    const outcomes = await load.stop();
    polling = false;
    await poller;

    const created = outcomes.filter((o) => o.status === 201);
    const unavailable = outcomes.filter((o) => o.status === 503);
    const other = outcomes.filter((o) => o.status !== 201 && o.status !== 503);
    const ids = created.map((o) => String(o.id));
    const [{ count }] = (await db.query<{ count: number }>(
      'SELECT count(*)::int AS count FROM tickets WHERE id::text = ANY($1::text[])',
      [ids],
    )) as [{ count: number }];
    const slowest = outcomes.reduce((max, o) => Math.max(max, o.end - o.start), 0);
    const lateFailures = outcomes.filter((o) => o.start >= firstOk && o.status !== 201);
    const readyDuringGap = readiness.filter((r) => r.at > stoppedAt && r.at < restartAt);

    report('PostgreSQL restart under load', {
      'requests sent': outcomes.length,
      '201 created': created.length,
      '503 seen': unavailable.length,
      'other answers / network errors': other.length,
      'database stopping→accepting (ms)': Math.round(backAt - downAt),
      'recovery: db accepting→first 201 (ms)': Math.round(recoveryMs),
      'slowest request (ms)': Math.round(slowest),
      'readyz 503 while down': `${readyDuringGap.filter((r) => r.status === 503).length}/${readyDuringGap.length}`,
      'writes verified in database': `${count}/${ids.length}`,
      'process still running': !server.exited(),
      '201 after recovery': created.filter((o) => o.start >= firstOk).length,
    });

    expect(server.exited()).toBe(false);
    expect(other, JSON.stringify(other.slice(0, 5))).toEqual([]);
    expect(unavailable.length).toBeGreaterThan(0);
    for (const o of unavailable) {
      expect(o.code).toBe('SERVICE_UNAVAILABLE');
      expect(Number(o.retryAfter)).toBeGreaterThan(0);
    }
    // 503s only around the gap: none before the stop, none once the service has recovered.
    expect(unavailable.every((o: Outcome) => o.end >= downAt && o.start <= firstOk)).toBe(true);
    expect(lateFailures).toEqual([]);
    // Never a hang: nothing waits much past the connection timeout.
    expect(slowest).toBeLessThan(CONNECTION_TIMEOUT_MS + 3000);
    expect(recoveryMs).toBeLessThan(5000);
    expect(readyDuringGap.length).toBeGreaterThan(0);
    expect(readyDuringGap.every((r) => r.status === 503)).toBe(true);
    expect(readiness.at(-1)?.status).toBe(200);
    expect(count).toBe(ids.length);
  });
});
