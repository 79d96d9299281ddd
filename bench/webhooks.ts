import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import autocannon from 'autocannon';
import pg from 'pg';
import { tempDatabase } from '../test/helpers/temp-database.js';
import { api, benchServerEnv, freePort, killChildren, login, type Server, startServer } from './proc.js';
import { writeJson } from './report.js';

const ROOT = path.resolve(import.meta.dirname, '..');
const env = (k: string, d: string) => process.env[k] ?? d;
const EVENTS = Number(env('BENCH_EVENTS', '10000'));
const WRITE_SECONDS = Number(env('BENCH_WRITE_SECONDS', '10'));
const CONNECTIONS = Number(env('BENCH_CONNECTIONS', '10'));
const SLOW_MS = Number(env('BENCH_SLOW_MS', '50'));
const DRAIN_CAP_S = Number(env('BENCH_DRAIN_CAP_S', '300'));
const ADMIN = { email: 'bench-admin@example.test', password: 'bench-admin-password-2026' };

const log = (m: string) => console.log(`[bench:webhooks ${new Date().toISOString().slice(11, 19)}] ${m}`);

/** A loopback receiver answering `status` after `delayMs`; counts what it got. */
async function receiver(status: number, delayMs = 0) {
  let received = 0;
  const server = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      received++;
      const answer = () => res.writeHead(status, { 'content-type': 'text/plain' }).end('ok');
      if (delayMs > 0) setTimeout(answer, delayMs);
      else answer();
    });
  });
  server.keepAliveTimeout = 30_000;
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`,
    received: () => received,
    close: () => {
      server.closeAllConnections();
      return new Promise<void>((r) => server.close(() => r()));
    },
  };
}

function writes(base: string, token: string, opts: { duration?: number; amount?: number }) {
  return new Promise<{ rps: number; ok: number; p99Ms: number }>((resolve, reject) => {
    autocannon(
      {
        url: `${base}/api/v1/tickets`,
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        body: JSON.stringify({ title: 'Printer on fire', description: 'It is on fire.' }),
        connections: CONNECTIONS,
        ...opts,
      },
      (err, r) => {
        if (err) return reject(err);
        if (r.non2xx > 0) log(`${r.non2xx} non-2xx answers`);
        resolve({ rps: Math.round(r.requests.average), ok: r['2xx'], p99Ms: r.latency.p99 });
      },
    );
  });
}

async function main() {
  const results: Record<string, unknown> = {
    at: new Date().toISOString(),
    cpus: os.cpus().length,
    settings: { EVENTS, WRITE_SECONDS, CONNECTIONS, SLOW_MS, retrySchedule: '1s,1s,1s' },
  };
  const db = await tempDatabase('helpdesk_bench_webhooks');
  const receivers = await Promise.all([receiver(200), receiver(200, SLOW_MS), receiver(500)]);
  let server: Server | undefined;
  const client = new pg.Client({ connectionString: db.url });
  try {
    const port = await freePort();
    server = await startServer({
      name: 'webhooks',
      script: '--import',
      args: ['tsx', path.join(ROOT, 'src/server.ts')],
      port,
      readyPath: '/readyz',
      logFile: path.join(os.tmpdir(), 'bench-webhooks.log'),
      env: benchServerEnv({
        name: 'webhooks',
        port,
        databaseUrl: db.url,
        extra: {
          // development: webhooks to http:// on loopback (production takes https only).
          NODE_ENV: 'development',
          ADMIN_EMAIL: ADMIN.email,
          ADMIN_PASSWORD: ADMIN.password,
          OVERLOAD_MAX_EVENT_LOOP_DELAY_MS: '0',
          WEBHOOK_ALLOW_PRIVATE_NETWORKS: 'true',
          WEBHOOK_RETRY_SCHEDULE: '1s,1s,1s',
        },
      }),
    });
    const base = server.baseUrl;
    const token = await login(base, ADMIN);

    results.writesWithoutWebhooks = await writes(base, token, { duration: WRITE_SECONDS });
    log(`POST /tickets without webhooks: ${JSON.stringify(results.writesWithoutWebhooks)}`);

    const hooks: Array<{ id: string }> = [];
    for (const r of receivers)
      hooks.push(await api(base, 'POST', '/webhooks', token, { url: r.url, events: ['ticket.created'] }));
    const [fast, slow, failing] = hooks.map((h) => h.id);
    await client.connect();
    const tickets = async () => Number((await client.query('SELECT count(*) AS n FROM tickets')).rows[0].n);
    const ticketsBefore = await tickets();

    const during = await writes(base, token, { duration: WRITE_SECONDS });
    results.writesWithWebhooks = during;
    log(`POST /tickets with 3 webhooks (fast, ${SLOW_MS} ms, failing): ${JSON.stringify(during)}`);
    if (during.ok < EVENTS) await writes(base, token, { amount: EVENTS - during.ok });
    const writesEnded = Date.now();
    // Every ticket created since the webhooks exist is one ticket.created event for each of them.
    const events = (await tickets()) - ticketsBefore;
    log(`${events} ticket.created events sent to 3 webhooks; draining`);

    const settledAt: Record<string, number | null> = { fast: null, slow: null, failing: null };
    const counts = async () => {
      const { rows } = await client.query<{
        webhook_id: string;
        status: string;
        n: string;
        attempts: string;
      }>(
        `SELECT webhook_id, status, count(*) AS n, sum(attempts) AS attempts
           FROM webhook_deliveries GROUP BY 1, 2`,
      );
      const get = (id: string | undefined, status: string) =>
        Number(rows.find((r) => r.webhook_id === id && r.status === status)?.n ?? 0);
      return {
        fastSucceeded: get(fast, 'succeeded'),
        slowSucceeded: get(slow, 'succeeded'),
        failingFailed: get(failing, 'failed'),
      };
    };
    let last = await counts();
    const deadline = writesEnded + DRAIN_CAP_S * 1000;
    while (Date.now() < deadline) {
      last = await counts();
      const t = Math.round((Date.now() - writesEnded) / 100) / 10;
      if (settledAt.fast === null && last.fastSucceeded >= events) settledAt.fast = t;
      if (settledAt.slow === null && last.slowSucceeded >= events) settledAt.slow = t;
      if (settledAt.failing === null && last.failingFailed >= events) settledAt.failing = t;
      if (Object.values(settledAt).every((v) => v !== null)) break;
      await new Promise((r) => setTimeout(r, 1000));
    }
    results.events = events;
    results.drain = {
      secondsAfterLastWrite: settledAt,
      settledWithinCap: last,
      receivedRequests: {
        fast: receivers[0]!.received(),
        slow: receivers[1]!.received(),
        failing: receivers[2]!.received(),
      },
      capSeconds: DRAIN_CAP_S,
    };
    log(`drain: ${JSON.stringify(results.drain)}`);
  } finally {
    await server?.stop().catch(() => {});
    killChildren();
    await client.end().catch(() => {});
    await Promise.all(receivers.map((r) => r.close()));
    await db.drop().catch(() => {});
  }
  console.log(JSON.stringify(results, null, 2));
  log(`written to ${await writeJson('webhooks', results)}`);
}

main().catch((err) => {
  killChildren();
  console.error(err);
  process.exit(1);
});
