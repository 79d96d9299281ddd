import { createHash, randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { S3RVER_CREDENTIALS, TestS3Server } from '../helpers/s3-server.js';
import {
  arrangeUser,
  FaultDatabase,
  logLines,
  report,
  type ServerProcess,
  sleep,
  startServer,
  startWorker,
  tempDir,
  type WorkerProcess,
  waitFor,
} from './harness.js';

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

/** Reads SSE frames from a fetch body until `match` accepts one (or the signal ends the stream). */
async function nextFrame(
  body: ReadableStream<Uint8Array>,
  match: (f: { event?: string; data?: string }) => boolean,
): Promise<{ event?: string; data?: string }> {
  const decoder = new TextDecoder();
  let buffer = '';
  for await (const chunk of body as unknown as AsyncIterable<Uint8Array>) {
    buffer += decoder.decode(chunk, { stream: true });
    let end = buffer.indexOf('\n\n');
    while (end >= 0) {
      const frame: { event?: string; data?: string } = {};
      for (const line of buffer.slice(0, end).split('\n')) {
        if (line.startsWith('event: ')) frame.event = line.slice(7);
        if (line.startsWith('data: ')) frame.data = line.slice(6);
      }
      buffer = buffer.slice(end + 2);
      if (match(frame)) return frame;
      end = buffer.indexOf('\n\n');
    }
  }
  throw new Error('stream ended without the expected frame');
}

/** A multipart/form-data body with one file. */
function form(filename: string, content: Buffer): { body: Buffer; contentType: string } {
  const boundary = `----scale${randomBytes(8).toString('hex')}`;
  const body = Buffer.concat([
    Buffer.from(
      `--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="${filename}"\r\n` +
        'Content-Type: application/octet-stream\r\n\r\n',
    ),
    content,
    Buffer.from(`\r\n--${boundary}--\r\n`),
  ]);
  return { body, contentType: `multipart/form-data; boundary=${boundary}` };
}

/** A self-signed certificate for 127.0.0.1: production servers accept https webhook URLs only. */
const TLS_DIR = path.join(import.meta.dirname, 'fixtures/tls');
const TLS_CA = path.join(TLS_DIR, 'loopback-cert.pem');

/**
 * A real https webhook receiver on 127.0.0.1 that counts requests and 200 answers per `webhook-id`.
 * `hold(n)` decides whether the n-th request is held open instead of answered:
 * - gate: every request is held until `gate` of them are open at once, then all are answered, and all after
 *   them at once. Reaching the gate proves that more deliveries ran at the same time than one worker process
 *   may run (JOBS_CONCURRENCY);
 * - first: the first request is held for good (its sender is killed while it waits), later ones answered.
 */
async function startHttpsReceiver(mode: { gate: number } | 'first') {
  const [key, cert] = await Promise.all([readFile(path.join(TLS_DIR, 'loopback-key.pem')), readFile(TLS_CA)]);
  const received: string[] = [];
  const answered = new Map<string, number>();
  const held: Array<() => void> = [];
  let open = 0;
  let maxOpen = 0;
  let gateOpen = false;
  const server = https.createServer({ key, cert }, (req, res) => {
    req.resume();
    req.on('end', () => {
      const id = String(req.headers['webhook-id']);
      received.push(id);
      open++;
      maxOpen = Math.max(maxOpen, open);
      res.on('close', () => open--);
      const answer = () => {
        answered.set(id, (answered.get(id) ?? 0) + 1);
        res.writeHead(200, { 'content-type': 'text/plain' }).end('ok');
      };
      if (mode === 'first') {
        if (received.length > 1) answer();
        return; // the first: held until its sender goes away
      }
      if (gateOpen) return answer();
      held.push(answer);
      if (open >= mode.gate) {
        gateOpen = true;
        for (const a of held.splice(0)) a();
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `https://127.0.0.1:${(server.address() as AddressInfo).port}/hook`,
    /** webhook-id of every request, in arrival order */
    received,
    answered,
    get maxOpen() {
      return maxOpen;
    },
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/**
 * Two API processes (ROLE=api) on one database and one S3-compatible bucket, each with its own empty
 * DATA_DIR: nothing an instance needs may live on its local disk. Jobs run in separate worker processes
 * (`npm run worker`) on the same database.
 */
describe('two API instances, one database, S3 storage', () => {
  let db: FaultDatabase;
  let s3: TestS3Server;
  let a: ServerProcess;
  let b: ServerProcess;
  let common: Record<string, string>;
  const workers: WorkerProcess[] = [];
  const closers: Array<() => Promise<void>> = [];
  const secret = randomBytes(32).toString('hex');

  beforeAll(async () => {
    db = await FaultDatabase.create();
    s3 = await TestS3Server.create('scale-out');
    common = {
      DATABASE_URL: db.url,
      JWT_SECRET: secret,
      ...s3.env(),
      AWS_ACCESS_KEY_ID: S3RVER_CREDENTIALS.accessKeyId,
      AWS_SECRET_ACCESS_KEY: S3RVER_CREDENTIALS.secretAccessKey,
      AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
      // The receivers below listen on loopback; a held request must not time out on its own.
      WEBHOOK_ALLOW_PRIVATE_NETWORKS: 'true',
      WEBHOOK_TIMEOUT_MS: '60000',
      RATE_LIMIT_MAX: '100000',
    };
    [a, b] = await Promise.all([
      startServer({ ...common, ROLE: 'api', DATA_DIR: await tempDir('helpdesk-scale-a-') }),
      startServer({ ...common, ROLE: 'api', DATA_DIR: await tempDir('helpdesk-scale-b-') }),
    ]);
  });

  afterEach(async () => {
    await Promise.all(workers.splice(0).map((w) => w.kill()));
    for (const close of closers.splice(0)) await close();
  });

  afterAll(async () => {
    await Promise.all([a?.kill(), b?.kill()]);
    await db?.destroy();
    await s3?.destroy();
  });

  it('a file uploaded through A downloads byte-identical through B; the same bytes through B are stored once; B streams the change', async () => {
    const user = await arrangeUser(db, secret, 'requester');
    const [ticket] = await db.query<{ id: number }>(
      'INSERT INTO tickets (title, description, requester_id) VALUES ($1, $2, $3) RETURNING id',
      ['Scale-out', 'Two instances.', user.id],
    );
    // 6 MiB of UTF-8 text: more than one multipart part on the way to the bucket.
    const line = `${randomBytes(24).toString('hex')} log line\n`;
    const bytes = Buffer.from(line.repeat(Math.ceil((6 * 1024 * 1024) / line.length)));
    const { body, contentType } = form('big.log', bytes);

    // A live change stream on B, open before the upload through A (change events are shared via PostgreSQL).
    const streamAbort = new AbortController();
    const stopStream = setTimeout(() => streamAbort.abort(), 60_000);
    const stream = await fetch(`${b.url}/api/v1/changes/stream`, {
      headers: { authorization: user.authorization, accept: 'text/event-stream' },
      signal: streamAbort.signal,
    });
    expect(stream.status).toBe(200);
    const seenOnB = nextFrame(
      stream.body!,
      (f) => f.event === 'attachment.created' && (f.data ?? '').includes(String(ticket!.id)),
    );
    seenOnB.catch(() => {});

    const t0 = performance.now();
    const up = await fetch(`${a.url}/api/v1/tickets/${ticket!.id}/attachments`, {
      method: 'POST',
      headers: { authorization: user.authorization, 'content-type': contentType },
      body: new Uint8Array(body),
      signal: AbortSignal.timeout(60_000),
    });
    const uploadMs = performance.now() - t0;
    expect(up.status, await up.clone().text()).toBe(201);
    const att = ((await up.json()) as { data: { id: string; sha256: string; size: number }[] }).data[0]!;
    expect(att.sha256).toBe(sha256(bytes));
    const frame = await seenOnB;
    const streamedMs = performance.now() - t0;
    clearTimeout(stopStream);
    streamAbort.abort();
    expect(JSON.parse(frame.data!)).toMatchObject({
      type: 'attachment.created',
      ticketId: ticket!.id,
      data: { attachment: { id: att.id, sha256: att.sha256 } },
    });

    const t1 = performance.now();
    const down = await fetch(`${b.url}/api/v1/attachments/${att.id}`, {
      headers: { authorization: user.authorization },
      signal: AbortSignal.timeout(60_000),
    });
    const got = Buffer.from(await down.arrayBuffer());
    const downloadMs = performance.now() - t1;
    expect(down.status).toBe(200);
    expect(got.length).toBe(bytes.length);
    expect(sha256(got)).toBe(att.sha256);

    // The same bytes again, through B: a second row, one object.
    const again = form('copy.log', bytes);
    const up2 = await fetch(`${b.url}/api/v1/tickets/${ticket!.id}/attachments`, {
      method: 'POST',
      headers: { authorization: user.authorization, 'content-type': again.contentType },
      body: new Uint8Array(again.body),
      signal: AbortSignal.timeout(60_000),
    });
    expect(up2.status).toBe(201);
    const client = new S3Client({
      region: 'us-east-1',
      endpoint: s3.endpoint,
      forcePathStyle: true,
      credentials: S3RVER_CREDENTIALS,
    });
    const listed = await client.send(new ListObjectsV2Command({ Bucket: s3.bucket }));
    client.destroy();
    const keys = (listed.Contents ?? []).map((o) => o.Key);
    expect(keys).toEqual([`sha256/${att.sha256.slice(0, 2)}/${att.sha256}`]);

    report('scale-out: upload through A, download through B (S3)', {
      'file size': `${(bytes.length / 1024 / 1024).toFixed(1)} MiB`,
      'upload through A': `${uploadMs.toFixed(0)} ms`,
      'download through B': `${downloadMs.toFixed(0)} ms`,
      'objects in the bucket after 2 uploads': keys.length,
      'upload start → event on B stream': `${streamedMs.toFixed(0)} ms`,
    });
  });

  /** A worker process (`npm run worker`) on the shared database; killed after the test if still running. */
  async function worker(env: Record<string, string> = {}): Promise<WorkerProcess> {
    const w = await startWorker({
      ...common,
      DATA_DIR: await tempDir('helpdesk-scale-w-'),
      JOBS_CONCURRENCY: '2',
      JOBS_POLL_INTERVAL_MS: '200',
      // The receivers' certificate is self-signed: the workers trust it as an extra CA.
      NODE_EXTRA_CA_CERTS: TLS_CA,
      ...env,
    });
    workers.push(w);
    return w;
  }

  async function api<T>(base: string, authorization: string, method: string, url: string, body?: object) {
    const res = await fetch(`${base}/api/v1${url}`, {
      method,
      headers: { authorization, ...(body ? { 'content-type': 'application/json' } : {}) },
      body: body ? JSON.stringify(body) : undefined,
      signal: AbortSignal.timeout(30_000),
    });
    const text = await res.text();
    return { status: res.status, text, json: (text ? JSON.parse(text) : null) as T };
  }

  /** graphile-worker's pool ids (the `locked_by` of its jobs) of one worker process, from its heartbeat rows. */
  const workerIdsOf = async (w: WorkerProcess) =>
    (
      await db.query<{ worker_id: string }>('SELECT worker_id FROM job_workers WHERE pid = $1', [w.child.pid])
    ).map((r) => r.worker_id);

  it('jobs enqueued through A run exactly once with two worker processes taking them at the same time', async () => {
    const admin = await arrangeUser(db, secret, 'admin');
    const requester = await arrangeUser(db, secret, 'requester');
    // 3 deliveries open at once: more than one worker process may run (JOBS_CONCURRENCY=2 each).
    const receiver = await startHttpsReceiver({ gate: 3 });
    closers.push(() => receiver.close());
    // One query per job: a batching worker (JOBS_BATCH_SIZE, README "Batched fetching") keeps what it fetched,
    // the heads of all four named queues included, until its own two slots free up, so the other process may
    // get none of them; spreading slow deliveries across processes is what unbatched fetching is for.
    const [w1, w2] = await Promise.all([worker({ JOBS_BATCH_SIZE: '0' }), worker({ JOBS_BATCH_SIZE: '0' })]);
    expect((await workerIdsOf(w1)).length).toBe(1);
    expect((await workerIdsOf(w2)).length).toBe(1);

    // Deliveries to one webhook run one at a time (a named queue): four webhooks, four queues.
    const hooks: string[] = [];
    for (let i = 0; i < 4; i++) {
      const res = await api<{ id: string }>(a.url, admin.authorization, 'POST', '/webhooks', {
        url: `${receiver.url}?n=${i}`,
        events: ['ticket.created'],
      });
      expect(res.status, res.text).toBe(201);
      hooks.push(res.json.id);
    }
    const TICKETS = 25;
    const t0 = performance.now();
    for (let i = 0; i < TICKETS; i++) {
      const res = await api(a.url, requester.authorization, 'POST', '/tickets', {
        title: `Scale-out ${i}`,
        description: 'Created through instance A.',
      });
      expect(res.status, res.text).toBe(201);
    }
    const expected = TICKETS * hooks.length;
    const allAnswered = async () =>
      (
        await db.query<{ n: number }>(
          `SELECT count(*)::int AS n FROM webhook_deliveries WHERE webhook_id = ANY($1::uuid[]) AND status = 'succeeded'`,
          [hooks],
        )
      )[0]!.n === expected;
    await waitFor('every delivery to succeed', allAnswered, 90_000);
    const wallMs = performance.now() - t0;

    // Each delivery: one row, succeeded at its first attempt; one request on the wire, answered once.
    const rows = await db.query<{ id: string; status: string; attempts: number }>(
      'SELECT id, status, attempts FROM webhook_deliveries WHERE webhook_id = ANY($1::uuid[])',
      [hooks],
    );
    expect(rows).toHaveLength(expected);
    expect(rows.every((r) => r.status === 'succeeded' && r.attempts === 1)).toBe(true);
    expect(receiver.received).toHaveLength(expected);
    expect(new Set(receiver.received)).toEqual(new Set(rows.map((r) => `msg_${r.id}`)));
    expect(receiver.answered.size).toBe(expected);
    expect([...receiver.answered.values()].every((n) => n === 1)).toBe(true);
    expect(receiver.maxOpen).toBeGreaterThanOrEqual(3);

    // And from the workers' side: every delivery was run by exactly one of them, once.
    const ranBy = (w: WorkerProcess) =>
      logLines(w.output, 'webhook delivered').map((l) => String(l.deliveryId));
    const [by1, by2] = [ranBy(w1), ranBy(w2)];
    expect([...by1, ...by2].sort()).toEqual(rows.map((r) => r.id).sort());
    expect(
      await db.query(`SELECT 1 FROM graphile_worker.jobs WHERE task_identifier LIKE 'webhooks.%'`),
    ).toEqual([]);

    // A graceful stop deregisters: nothing is left for the lock expiry to find.
    w1.child.kill('SIGTERM');
    w2.child.kill('SIGTERM');
    expect((await w1.exit).code).toBe(0);
    expect((await w2.exit).code).toBe(0);
    expect(await db.query('SELECT worker_id FROM job_workers')).toEqual([]);
    for (const id of hooks) {
      expect((await api(a.url, admin.authorization, 'DELETE', `/webhooks/${id}`)).status).toBe(204);
    }

    report('scale-out: webhook deliveries enqueued through A, two workers', {
      tickets: TICKETS,
      'deliveries (4 webhooks)': expected,
      'run by worker 1 / worker 2': `${by1.length} / ${by2.length}`,
      'most deliveries in flight at once': receiver.maxOpen,
      'requests per webhook-id': 1,
      'first ticket → last delivery': `${wallMs.toFixed(0)} ms`,
    });
  });

  it('a worker killed mid-job: its lock expires after JOBS_WORKER_TIMEOUT_MS and another worker finishes the job once', async () => {
    const admin = await arrangeUser(db, secret, 'admin');
    const requester = await arrangeUser(db, secret, 'requester');
    // The first request is held open (the job is mid-flight when its worker dies); later ones get 200.
    const receiver = await startHttpsReceiver('first');
    closers.push(() => receiver.close());

    const w1 = await worker(); // default JOBS_WORKER_TIMEOUT_MS (60 s): its own setting plays no part
    const [w1Id] = await workerIdsOf(w1);
    const hook = await api<{ id: string }>(a.url, admin.authorization, 'POST', '/webhooks', {
      url: receiver.url,
      events: ['ticket.created'],
    });
    expect(hook.status, hook.text).toBe(201);
    const ticket = await api<{ id: number }>(a.url, requester.authorization, 'POST', '/tickets', {
      title: 'Delivered across a crash',
      description: 'Its webhook delivery outlives the worker that started it.',
    });
    expect(ticket.status, ticket.text).toBe(201);
    await waitFor('the delivery to reach the receiver', async () => receiver.received.length === 1, 30_000);
    const [delivery] = await db.query<{ id: string }>(
      'SELECT id FROM webhook_deliveries WHERE webhook_id = $1',
      [hook.json.id],
    );
    const lockOf = async () =>
      (
        await db.query<{ locked_by: string | null; attempts: number }>(
          `SELECT locked_by, attempts FROM graphile_worker.jobs WHERE key = $1`,
          [`webhook-delivery:${delivery!.id}`],
        )
      )[0];
    expect(await lockOf()).toMatchObject({ locked_by: w1Id, attempts: 1 });

    const tKill = performance.now();
    await w1.kill(); // SIGKILL: no shutdown code runs, the lock stays
    expect(await lockOf()).toMatchObject({ locked_by: w1Id });

    const w2 = await worker({ JOBS_WORKER_TIMEOUT_MS: '3000' });
    const w2Started = performance.now();
    const delivered = async () =>
      (
        await db.query<{ status: string }>('SELECT status FROM webhook_deliveries WHERE id = $1', [
          delivery!.id,
        ])
      )[0]?.status === 'succeeded';
    await waitFor('the delivery to succeed on the second worker', delivered, 60_000);
    const doneMs = performance.now() - tKill;
    const afterStartMs = performance.now() - w2Started;

    // W2 declared W1 dead (and only W1), freed its one locked job, ran it: one success on record.
    const expired = logLines(
      w2.output,
      'job workers stopped heartbeating; their jobs were unlocked and will run again',
    );
    expect(expired).toHaveLength(1);
    expect(expired[0]).toMatchObject({ workers: [{ workerId: w1Id, pid: w1.child.pid }], timeoutMs: 3000 });
    expect((expired[0]!.jobs as number) >= 1).toBe(true);
    expect(logLines(w2.output, 'webhook delivered').map((l) => l.deliveryId)).toEqual([delivery!.id]);
    const [row] = await db.query<{ status: string; attempts: number; last_response_status: number }>(
      'SELECT status, attempts, last_response_status FROM webhook_deliveries WHERE id = $1',
      [delivery!.id],
    );
    expect(row).toEqual({ status: 'succeeded', attempts: 1, last_response_status: 200 });
    expect(await lockOf()).toBeUndefined();
    // On the wire: the killed worker's request (cut off unanswered) and W2's, with the same webhook-id, so a
    // receiver that deduplicates on it (as Standard Webhooks asks) acts once.
    await sleep(500); // nothing else may arrive
    expect(receiver.received).toEqual([`msg_${delivery!.id}`, `msg_${delivery!.id}`]);
    expect([...receiver.answered]).toEqual([[`msg_${delivery!.id}`, 1]]);
    expect(
      (await db.query<{ worker_id: string }>('SELECT worker_id FROM job_workers')).map((r) => r.worker_id),
    ).toEqual(await workerIdsOf(w2));

    report('scale-out: worker SIGKILLed mid-job (JOBS_WORKER_TIMEOUT_MS=3000 on the survivor)', {
      'kill → job finished by W2': `${doneMs.toFixed(0)} ms`,
      'W2 ready → job finished': `${afterStartMs.toFixed(0)} ms`,
      'jobs W2 unlocked': expired[0]!.jobs,
      'successful runs of the job': 1,
    });
  });
});
