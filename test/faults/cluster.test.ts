import { execFileSync } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  arrangeUser,
  FaultDatabase,
  report,
  type ServerProcess,
  sleep,
  startServer,
  waitFor,
} from './harness.js';

const BUDGET = 30;

interface Answer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

/**
 * One request on a new TCP connection (no keep-alive): the primary hands each new connection to the next
 * worker in turn, so consecutive calls alternate between the workers.
 */
function fresh(
  base: string,
  path: string,
  init: { method?: string; headers?: Record<string, string>; body?: string } = {},
): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      `${base}${path}`,
      { method: init.method ?? 'GET', headers: init.headers, agent: false, timeout: 10_000 },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => {
          body += c;
        });
        res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body }));
      },
    );
    req.on('error', reject);
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.end(init.body);
  });
}

/** The HTTP workers: the primary's children running src/server.ts (not tsx's esbuild service). */
function workerPids(primary: number): number[] {
  let children: number[];
  try {
    children = execFileSync('pgrep', ['-P', String(primary)], { encoding: 'utf8' })
      .split('\n')
      .filter(Boolean)
      .map(Number);
  } catch {
    return []; // pgrep exits 1 when there is none
  }
  return children.filter((pid) => {
    try {
      return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('src/server.ts');
    } catch {
      return false; // gone meanwhile
    }
  });
}

/** Which process answered: the request log line (LOG_LEVEL=info) with the answer's x-request-id. */
async function servedBy(server: ServerProcess, requestId: string): Promise<number> {
  let pid: number | undefined;
  await waitFor(
    `the log line of request ${requestId}`,
    async () => {
      for (const line of server.output) {
        if (!line.includes(requestId)) continue;
        const parsed = JSON.parse(line) as { pid?: number; traceId?: string };
        if (parsed.traceId === requestId && parsed.pid) pid = parsed.pid;
      }
      return pid !== undefined;
    },
    5000,
  );
  return pid!;
}

/** An SSE stream on its own connection; collects `ticket.created` ids as they arrive. */
function openStream(base: string, authorization: string) {
  const created: string[] = [];
  let requestId = '';
  let req!: http.ClientRequest;
  const opened = new Promise<void>((resolve, reject) => {
    req = http.get(
      `${base}/api/v1/changes/stream`,
      { headers: { authorization, accept: 'text/event-stream' }, agent: false },
      (res) => {
        if (res.statusCode !== 200) return reject(new Error(`stream answered ${res.statusCode}`));
        requestId = String(res.headers['x-request-id']);
        let buffer = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          buffer += chunk;
          let end = buffer.indexOf('\n\n');
          while (end >= 0) {
            const frame = buffer.slice(0, end);
            buffer = buffer.slice(end + 2);
            if (/^event: ticket\.created$/m.test(frame)) {
              const data = /^data: (.*)$/m.exec(frame)?.[1];
              if (data) created.push(String((JSON.parse(data) as { ticketId: number }).ticketId));
            }
            end = buffer.indexOf('\n\n');
          }
        });
        res.on('error', () => {});
        resolve();
      },
    );
    req.on('error', reject);
  });
  return {
    opened,
    created,
    requestId: () => requestId,
    close: () => req.destroy(),
  };
}

describe('cluster mode: WEB_CONCURRENCY=2 on one database, without Redis', () => {
  let db: FaultDatabase;
  let server: ServerProcess;
  const secret = randomBytes(32).toString('hex');

  beforeAll(async () => {
    db = await FaultDatabase.create();
    server = await startServer(
      {
        DATABASE_URL: db.url,
        JWT_SECRET: secret,
        DATA_DIR: db.dir,
        WEB_CONCURRENCY: '2',
        RATE_LIMIT_MAX: String(BUDGET),
        LOG_LEVEL: 'info', // the request log says which worker answered
        CHANGES_STREAM_HEARTBEAT_MS: '1000',
      },
      { liveWithinMs: 120_000 },
    );
    await waitFor(
      'both HTTP workers listening',
      async () => server.output.some((l) => l.includes('Helpdesk API ready')),
      120_000,
    );
  });

  afterAll(async () => {
    await server?.kill();
    await db?.destroy();
  });

  it('gives one rate-limit budget across the workers (counted in the primary)', async () => {
    const user = await arrangeUser(db, secret);
    const answers: Array<Answer & { pid: number }> = [];
    for (let i = 0; i < BUDGET + 4; i++) {
      const a = await fresh(server.url, '/api/v1/tickets', {
        headers: { authorization: user.authorization },
      });
      answers.push({ ...a, pid: await servedBy(server, String(a.headers['x-request-id'])) });
    }
    const ok = answers.filter((a) => a.status === 200);
    const pids = new Set(answers.map((a) => a.pid));
    report('Cluster: one rate-limit budget without Redis', {
      'requests (new connection each)': answers.length,
      'budget (RATE_LIMIT_MAX)': BUDGET,
      'answered by worker pids': [...pids].join(' '),
      statuses: answers.map((a) => a.status).join(' '),
      'RateLimit-Remaining': answers.map((a) => a.headers['ratelimit-remaining']).join(' '),
    });
    expect(pids.size).toBe(2);
    expect(ok.length).toBe(BUDGET);
    expect(answers.slice(0, BUDGET).every((a) => a.status === 200)).toBe(true);
    expect(answers.slice(BUDGET).every((a) => a.status === 429)).toBe(true);
    expect(ok.map((a) => Number(a.headers['ratelimit-remaining']))).toEqual(
      Array.from({ length: BUDGET }, (_, i) => BUDGET - 1 - i),
    );
    // Both workers refuse once the shared budget is spent.
    expect(new Set(answers.slice(BUDGET).map((a) => a.pid)).size).toBe(2);
  });

  it('answers /metrics for every worker, whichever one takes the scrape', async () => {
    // /readyz: a route the app itself serves and logs (a probe's /healthz is answered before it, unlogged).
    const readyzCount = (text: string) =>
      text
        .split('\n')
        .filter((l) => l.startsWith('http_request_duration_seconds_count{') && l.includes('route="/readyz"'))
        .reduce((n, l) => n + Number(l.slice(l.lastIndexOf(' ') + 1)), 0);
    const scrape = async () => {
      const a = await fresh(server.url, '/metrics');
      expect(a.status).toBe(200);
      return { text: a.body, pid: await servedBy(server, String(a.headers['x-request-id'])) };
    };
    const before = readyzCount((await scrape()).text);
    const pids = new Set<number>();
    for (let i = 0; i < 10; i++) {
      const a = await fresh(server.url, '/readyz');
      expect(a.status).toBe(200);
      pids.add(await servedBy(server, String(a.headers['x-request-id'])));
    }
    const [first, second] = [await scrape(), await scrape()];
    report('Cluster: merged /metrics', {
      '/readyz answered by worker pids': [...pids].join(' '),
      'scrapes answered by worker pids': `${first.pid} ${second.pid}`,
      '/readyz count before, after (scrape 1, scrape 2)': `${before}, ${readyzCount(first.text)}, ${readyzCount(second.text)}`,
    });
    expect(pids.size).toBe(2);
    expect(first.pid).not.toBe(second.pid);
    expect(readyzCount(first.text)).toBe(before + 10);
    expect(readyzCount(second.text)).toBe(before + 10);
    // The queue gauges are read from the one database: merged as one value, not summed per worker.
    const depth = (t: string) => t.split('\n').filter((l) => l.startsWith('jobs_queue_depth '));
    expect(depth(first.text)).toHaveLength(1);
  });

  it('fans a change out to live streams on every worker', async () => {
    const user = await arrangeUser(db, secret);
    const streams = Array.from({ length: 4 }, () => openStream(server.url, user.authorization));
    try {
      await Promise.all(streams.map((s) => s.opened));
      const streamPids = await Promise.all(streams.map((s) => servedBy(server, s.requestId())));
      const created = await fresh(server.url, '/api/v1/tickets', {
        method: 'POST',
        headers: { authorization: user.authorization, 'content-type': 'application/json' },
        body: JSON.stringify({ title: `Cluster ${randomUUID()}`, description: 'Seen on every worker.' }),
      });
      expect(created.status).toBe(201);
      const id = String((JSON.parse(created.body) as { id: string }).id);
      await waitFor(
        'the event on every stream',
        async () => streams.every((s) => s.created.includes(id)),
        10_000,
      );
      report('Cluster: live stream fan-out', {
        'streams on worker pids': streamPids.join(' '),
        'ticket created by pid': await servedBy(server, String(created.headers['x-request-id'])),
        'streams that got ticket.created': streams.filter((s) => s.created.includes(id)).length,
      });
      expect(new Set(streamPids).size).toBe(2);
    } finally {
      for (const s of streams) s.close();
    }
  });

  it('refuses a deactivated user on every worker within 5 s (each worker caches the actor 2 s)', async () => {
    const user = await arrangeUser(db, secret);
    const call = () =>
      fresh(server.url, '/api/v1/tickets', { headers: { authorization: user.authorization } });
    // Both workers have the active user cached.
    const before = [await call(), await call(), await call(), await call()];
    expect(before.map((a) => a.status)).toEqual([200, 200, 200, 200]);

    await db.query('UPDATE users SET active = false WHERE id = $1', [user.id]);
    const deactivatedAt = Date.now();
    let refusedInARow = 0;
    let lastStatus = 0;
    while (refusedInARow < 4 && Date.now() - deactivatedAt < 10_000) {
      lastStatus = (await call()).status;
      refusedInARow = lastStatus === 401 ? refusedInARow + 1 : 0;
      if (refusedInARow === 0) await sleep(100);
    }
    const tookMs = Date.now() - deactivatedAt;
    report('Cluster: deactivation on every worker', { 'refused everywhere after (ms)': tookMs });
    expect(refusedInARow, `last status ${lastStatus}`).toBe(4);
    expect(tookMs).toBeLessThan(5000);
  });

  it('keeps answering when a worker dies, and replaces it', async () => {
    const user = await arrangeUser(db, secret);
    const primary = server.child.pid!;
    const before = workerPids(primary);
    expect(before).toHaveLength(2);
    const victim = before[0]!;
    process.kill(victim, 'SIGKILL');
    await waitFor(
      'the primary to see the worker die',
      async () => server.output.some((l) => l.includes(`HTTP worker ${victim} exited unexpectedly`)),
      10_000,
    );

    // Meanwhile the other worker serves every request.
    const during = [];
    for (let i = 0; i < 6; i++)
      during.push(
        (await fresh(server.url, '/api/v1/tickets', { headers: { authorization: user.authorization } }))
          .status,
      );

    let replacement: number | undefined;
    await waitFor(
      'a replacement worker',
      async () => {
        replacement = workerPids(primary).find((p) => !before.includes(p));
        return replacement !== undefined;
      },
      10_000,
    );
    // The replacement takes its turn once it listens.
    const served = new Set<number>();
    await waitFor(
      'the replacement to answer',
      async () => {
        const a = await fresh(server.url, '/readyz');
        if (a.status === 200) served.add(await servedBy(server, String(a.headers['x-request-id'])));
        return served.has(replacement!);
      },
      60_000,
    );
    report('Cluster: a worker killed', {
      'workers before': before.join(' '),
      'killed (SIGKILL)': victim,
      'statuses meanwhile': during.join(' '),
      replacement,
      'workers now': workerPids(primary).join(' '),
    });
    expect(during).toEqual([200, 200, 200, 200, 200, 200]);
    expect(workerPids(primary)).toHaveLength(2);
    expect(served.has(replacement!)).toBe(true);
  });
});
