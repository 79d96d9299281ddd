import { randomBytes, randomUUID } from 'node:crypto';
import { mkdir, mkdtemp, rm, stat, utimes, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { sql } from 'drizzle-orm';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loggerOptions } from '../../src/app.js';
import type { Database } from '../../src/db/client.js';
import { type JobDefinition, PermanentJobError } from '../../src/modules/jobs/job-definition.js';
import { createTestApp } from '../helpers/app.js';
import { createUser, type TestUser } from '../helpers/factory.js';
import { expectProblem } from '../helpers/http.js';

type JobBody = {
  id: string;
  kind: string;
  state: string;
  progress: { done: number; total: number };
  result: unknown;
  error: string | null;
  createdAt: string;
  finishedAt: string | null;
};

/** Attempts each job id was run with, as seen by the handlers. */
const runs = new Map<string, number[]>();
const seen = (ctx: { jobId: string; attempt: number }) =>
  runs.set(ctx.jobId, [...(runs.get(ctx.jobId) ?? []), ctx.attempt]);

/** Every log line of the app under test (graphile-worker's own lines go through the same logger). */
const logLines: string[] = [];
let database: Database;

const definitions: JobDefinition<{ n?: number; marker?: string; secret?: string }>[] = [
  {
    kind: 'test.db-error', // a query whose parameter is a secret fails inside PostgreSQL
    maxAttempts: 2,
    async handler(payload, ctx) {
      seen(ctx);
      await database.execute(sql`SELECT ${payload.secret}::int AS n`);
    },
  },
  {
    kind: 'test.echo',
    async handler(payload, ctx) {
      seen(ctx);
      await ctx.progress(1, 2);
      await ctx.progress(2, 2);
      return { echoed: payload };
    },
  },
  {
    kind: 'test.flaky', // fails its first attempt, succeeds on the retry
    maxAttempts: 3,
    async handler(_payload, ctx) {
      seen(ctx);
      if (ctx.attempt === 1) throw new Error('first attempt fails on purpose');
      return { attempt: ctx.attempt };
    },
  },
  {
    kind: 'test.broken', // always fails: retried until maxAttempts
    maxAttempts: 2,
    async handler(_payload, ctx) {
      seen(ctx);
      throw new Error(`broken on attempt ${ctx.attempt}`);
    },
  },
  {
    kind: 'test.permanent',
    maxAttempts: 5,
    async handler(_payload, ctx) {
      seen(ctx);
      throw new PermanentJobError('the payload can never work');
    },
  },
];

describe('durable jobs', () => {
  let app: FastifyInstance;
  let admin: TestUser;
  let requester: TestUser;
  let other: TestUser;
  let agent: TestUser;

  let dataDir: string;

  beforeAll(async () => {
    dataDir = await mkdtemp(path.join(os.tmpdir(), 'helpdesk-jobs-'));
    const stream = new Writable({
      write(chunk, _enc, cb) {
        logLines.push(...String(chunk).split('\n').filter(Boolean));
        cb();
      },
    });
    app = await createTestApp(
      { JOBS_POLL_INTERVAL_MS: '200', DATA_DIR: dataDir },
      { logger: { ...(loggerOptions({ logLevel: 'info', env: 'test' }) as object), stream } },
    );
    database = app.db;
    app.jobs.register(definitions);
    await app.jobRunner.start({ schedules: false });
    [admin, requester, other, agent] = await Promise.all([
      createUser(app, { role: 'admin' }),
      createUser(app),
      createUser(app),
      createUser(app, { role: 'agent' }),
    ]);
  });
  afterAll(async () => {
    await app.close();
    await rm(dataDir, { recursive: true, force: true });
  });

  const getJob = (id: string, user: TestUser) =>
    app.inject({ method: 'GET', url: `/api/v1/jobs/${id}`, headers: user.auth });

  /** Polls GET /jobs/{id} until the job reaches `state` (bounded; the job runs on the real worker). */
  async function waitForState(id: string, state: string, user: TestUser = admin): Promise<JobBody> {
    const deadline = Date.now() + 20_000;
    for (;;) {
      const res = await getJob(id, user);
      if (res.statusCode === 200 && (res.json() as JobBody).state === state) return res.json() as JobBody;
      if (Date.now() > deadline) throw new Error(`job ${id} did not reach ${state}: ${res.body}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  it('runs a job enqueued in a committed transaction and keeps its result and progress', async () => {
    const id = await app.db.transaction((tx) =>
      app.jobs.enqueue(tx, 'test.echo', { n: 1 }, { createdBy: requester.id }),
    );
    expect(id).toMatch(/^[1-9][0-9]*$/);
    const job = await waitForState(id, 'succeeded', requester);
    expect(job).toEqual({
      id,
      kind: 'test.echo',
      state: 'succeeded',
      progress: { done: 2, total: 2 },
      result: { echoed: { n: 1 } },
      error: null,
      createdAt: expect.any(String),
      finishedAt: expect.any(String),
    });
    expect(Date.parse(job.finishedAt!)).toBeGreaterThanOrEqual(Date.parse(job.createdAt));
    expect(runs.get(id)).toEqual([1]);
  });

  it('a job enqueued in a transaction that rolls back never exists and never runs', async () => {
    let rolledBackId = '';
    await expect(
      app.db.transaction(async (tx) => {
        rolledBackId = await app.jobs.enqueue(
          tx,
          'test.echo',
          { marker: 'rolled-back' },
          { createdBy: admin.id },
        );
        throw new Error('the change fails after enqueueing');
      }),
    ).rejects.toThrow('the change fails');
    expect(rolledBackId).not.toBe('');
    // A job committed afterwards runs: the worker is live, and it is not shadowed by the rolled-back one.
    const later = await app.db.transaction((tx) =>
      app.jobs.enqueue(tx, 'test.echo', { marker: 'committed' }, { createdBy: admin.id }),
    );
    await waitForState(later, 'succeeded');
    expectProblem(await getJob(rolledBackId, admin), 404, 'JOB_NOT_FOUND');
    expect(runs.has(rolledBackId)).toBe(false);
    const { rows } = await app.db.$client.query(
      `SELECT 1 FROM graphile_worker._private_jobs WHERE payload->>'marker' = 'rolled-back'
       UNION ALL SELECT 1 FROM job_records WHERE id = $1`,
      [rolledBackId],
    );
    expect(rows).toEqual([]);
  });

  it('retries a failed attempt with backoff, then succeeds', async () => {
    const id = await app.jobs.enqueue(app.db, 'test.flaky', {}, { createdBy: requester.id });
    const job = await waitForState(id, 'succeeded', requester);
    expect(runs.get(id)).toEqual([1, 2]);
    expect(job.result).toEqual({ attempt: 2 });
    expect(job.error).toBeNull();
  });

  it('keeps a job that failed every attempt as failed, with its last error', async () => {
    const id = await app.jobs.enqueue(app.db, 'test.broken', {}, { createdBy: requester.id });
    const job = await waitForState(id, 'failed', requester);
    expect(runs.get(id)).toEqual([1, 2]);
    expect(job.error).toBe('broken on attempt 2');
    expect(job.result).toBeNull();
    expect(job.finishedAt).not.toBeNull();
  });

  it('a job failing on a database error logs (ours and the queue library’s lines) no SQL and no parameter', async () => {
    const secret = `hd_secret_${randomBytes(12).toString('hex')}`;
    const id = await app.db.transaction((tx) =>
      app.jobs.enqueue(tx, 'test.db-error', { secret }, { createdBy: admin.id }),
    );
    // The first attempt fails and is retried: graphile-worker logs its "Failed task" line for it.
    const queueLine = () =>
      logLines.map((l) => JSON.parse(l)).find((l) => String(l.msg).startsWith(`Failed task ${id} (`));
    await expect.poll(queueLine, { timeout: 20_000 }).toBeDefined();
    const failed = await waitForState(id, 'failed');
    const text = logLines.join('\n');
    expect(text).not.toContain(secret);
    expect(text).not.toMatch(/select .*::int/i);
    // What is left says what went wrong: the SQLSTATE and PostgreSQL's message with the value masked.
    expect(JSON.stringify(queueLine().err)).toContain('22P02');
    expect(queueLine().msg).toContain(`Failed task ${id} (test.db-error`);
    expect(queueLine().jobId).toBe(id);
    // The error kept with the job (GET /jobs/{id}) is the same data-free description.
    expect(failed.error).toMatch(/22P02/);
    expect(JSON.stringify(failed)).not.toContain(secret);
    const { rows } = await app.db.$client.query<{ e: string | null }>(
      `SELECT string_agg(coalesce(last_error, ''), ' ') AS e FROM graphile_worker._private_jobs WHERE id = $1`,
      [id],
    );
    expect(rows[0]?.e ?? '').not.toContain(secret);
  });

  it('PermanentJobError fails the job at once, without retries', async () => {
    const id = await app.jobs.enqueue(app.db, 'test.permanent', {}, { createdBy: requester.id });
    const job = await waitForState(id, 'failed', requester);
    expect(runs.get(id)).toEqual([1]);
    expect(job.error).toBe('the payload can never work');
  });

  it('a system job (no creator) that fails is kept too, visible to admins', async () => {
    const id = await app.jobs.enqueue(app.db, 'test.permanent', {});
    const job = await waitForState(id, 'failed', admin);
    expect(job.kind).toBe('test.permanent');
    expectProblem(await getJob(id, requester), 404, 'JOB_NOT_FOUND');
  });

  it('GET /jobs/{id}: the creator and admins see a job; other users get 404', async () => {
    const id = await app.jobs.enqueue(app.db, 'test.echo', {}, { createdBy: requester.id });
    await waitForState(id, 'succeeded', requester);
    expect((await getJob(id, admin)).statusCode).toBe(200);
    expectProblem(await getJob(id, other), 404, 'JOB_NOT_FOUND');
    expectProblem(await getJob(id, agent), 404, 'JOB_NOT_FOUND');
    expectProblem(await app.inject({ method: 'GET', url: `/api/v1/jobs/${id}` }), 401, 'UNAUTHENTICATED');
  });

  it('GET /jobs/{id} of a queued job scheduled for later shows it queued', async () => {
    const id = await app.jobs.enqueue(
      app.db,
      'test.echo',
      {},
      { createdBy: requester.id, runAt: new Date(Date.now() + 3_600_000) },
    );
    const res = await getJob(id, requester);
    expect(res.statusCode).toBe(200);
    expect(res.json()).toMatchObject({ id, state: 'queued', result: null, error: null, finishedAt: null });
  });

  it('GET /jobs/{id}: an unknown id is 404, a malformed one 422', async () => {
    expectProblem(await getJob('999999999999', admin), 404, 'JOB_NOT_FOUND');
    expectProblem(await getJob('abc', admin), 422, 'VALIDATION_FAILED');
    expectProblem(await getJob('1'.repeat(40), admin), 422, 'VALIDATION_FAILED');
  });

  it('refuses to enqueue a kind nobody registered (a wiring error, not a silent dead job)', async () => {
    await expect(app.jobs.enqueue(app.db, 'test.nobody', {})).rejects.toThrow(/unknown job kind/);
  });
});

describe('maintenance jobs', () => {
  let app: FastifyInstance;
  let admin: TestUser;
  let dataDir: string;

  beforeAll(async () => {
    dataDir = await mkdtemp(path.join(os.tmpdir(), 'helpdesk-maintenance-'));
    app = await createTestApp({
      JOBS_POLL_INTERVAL_MS: '200',
      DATA_DIR: dataDir,
      UPLOAD_ORPHAN_GRACE_MINUTES: '60',
    });
    await app.jobRunner.start({ schedules: false });
    admin = await createUser(app, { role: 'admin' });
  });
  afterAll(async () => {
    await app.close();
    await rm(dataDir, { recursive: true, force: true });
  });

  async function runToEnd(kind: string): Promise<JobBody> {
    const id = await app.jobs.enqueue(app.db, kind, {}, { track: true });
    const deadline = Date.now() + 20_000;
    for (;;) {
      const res = await app.inject({ method: 'GET', url: `/api/v1/jobs/${id}`, headers: admin.auth });
      const job = res.json() as JobBody;
      if (job.state === 'succeeded' || job.state === 'failed') return job;
      if (Date.now() > deadline) throw new Error(`${kind} did not finish: ${res.body}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  it('are registered with their schedules (purge every 10 minutes, orphan sweep hourly)', () => {
    expect(app.jobs.schedules()).toEqual(
      expect.arrayContaining([
        { kind: 'maintenance.purge', cron: '*/10 * * * *' },
        { kind: 'maintenance.orphan-blobs', cron: '23 * * * *' },
      ]),
    );
  });

  it('maintenance.purge deletes expired idempotency keys, refresh tokens and old job records, and keeps the rest', async () => {
    const user = await createUser(app);
    const q = (text: string, values: unknown[] = []) => app.db.$client.query(text, values);
    await q(
      `INSERT INTO idempotency_keys (user_id, key, request_hash, locked_until, expires_at) VALUES
         ($1, 'expired', 'h', now(), now() - interval '1 minute'), ($1, 'live', 'h', now(), now() + interval '1 hour')`,
      [user.id],
    );
    // Every refresh token belongs to a session (its family).
    const { rows: sessions } = await q(
      `INSERT INTO sessions (user_id, expires_at) VALUES ($1, now() + interval '1 day'), ($1, now() + interval '1 day')
       RETURNING id`,
      [user.id],
    );
    await q(
      `INSERT INTO refresh_tokens (user_id, family_id, token_hash, expires_at) VALUES
         ($1, $4, $2, now() - interval '1 minute'), ($1, $5, $3, now() + interval '1 day')`,
      [user.id, `expired-${randomUUID()}`, `live-${randomUUID()}`, sessions[0].id, sessions[1].id],
    );
    const { rows: ids } = await q(
      `INSERT INTO job_records (id, kind, state, created_at, finished_at) VALUES
         (-1 * (extract(epoch from clock_timestamp()) * 1000)::bigint, 'test.old', 'succeeded', now() - interval '30 days', now() - interval '30 days'),
         (-1 * (extract(epoch from clock_timestamp()) * 1000)::bigint - 1, 'test.recent', 'succeeded', now(), now())
       RETURNING id, kind`,
    );

    const job = await runToEnd('maintenance.purge');
    expect(job.state).toBe('succeeded');
    const deleted = (job.result as { deleted: Record<string, number> }).deleted;
    expect(deleted['idempotency-keys']).toBeGreaterThanOrEqual(1);
    expect(deleted['refresh-tokens']).toBeGreaterThanOrEqual(1);
    expect(deleted['job-records']).toBeGreaterThanOrEqual(1);

    const keys = await q(`SELECT key FROM idempotency_keys WHERE user_id = $1`, [user.id]);
    expect(keys.rows.map((r) => r.key)).toEqual(['live']);
    const tokens = await q(`SELECT token_hash FROM refresh_tokens WHERE user_id = $1`, [user.id]);
    expect(tokens.rows.map((r) => String(r.token_hash).split('-')[0])).toEqual(['live']);
    const records = await q(`SELECT kind FROM job_records WHERE id = ANY($1::bigint[])`, [
      ids.map((r) => r.id),
    ]);
    expect(records.rows.map((r) => r.kind)).toEqual(['test.recent']);
  });

  it('maintenance.orphan-blobs removes old staged leftovers; never a committed blob, named or not', async () => {
    const requester = await createUser(app);
    const created = await app.inject({
      method: 'POST',
      url: '/api/v1/tickets',
      headers: requester.auth,
      payload: { title: 'Orphan sweep', description: 'A ticket to hang an attachment on.' },
    });
    expect(created.statusCode).toBe(201);
    const uploads = path.join(dataDir, 'uploads');
    const blob = async (name: string, ageMinutes: number) => {
      const file = path.join(uploads, name);
      await mkdir(path.dirname(file), { recursive: true });
      await writeFile(file, 'bytes');
      const t = new Date(Date.now() - ageMinutes * 60_000);
      await utimes(file, t, t);
      return file;
    };
    const contentKey = () => {
      const hex = randomBytes(32).toString('hex');
      return `sha256/${hex.slice(0, 2)}/${hex}`;
    };
    const namedKey = contentKey();
    const named = await blob(namedKey, 120);
    // A committed blob no row names yet may be one an upload is about to name: never swept.
    const unnamed = await blob(contentKey(), 120);
    const partial = await blob(`tmp/${randomUUID()}.part`, 120);
    const recentPartial = await blob(`tmp/${randomUUID()}.part`, 5);
    await app.db.$client.query(
      `INSERT INTO attachments (ticket_id, uploader_id, filename, content_type, size, sha256, storage_key)
       VALUES ($1, $2, 'kept.txt', 'text/plain', 5, $3, $4)`,
      [(created.json() as { id: number }).id, requester.id, 'a'.repeat(64), namedKey],
    );

    const job = await runToEnd('maintenance.orphan-blobs');
    expect(job).toMatchObject({ state: 'succeeded', result: { checked: 1, removed: 1 } });
    const exists = (file: string) =>
      stat(file).then(
        () => true,
        () => false,
      );
    expect(await exists(named)).toBe(true);
    expect(await exists(unnamed)).toBe(true);
    expect(await exists(recentPartial)).toBe(true);
    expect(await exists(partial)).toBe(false);
  });
});

describe('two workers on one database', () => {
  let a: FastifyInstance;
  let b: FastifyInstance;
  const running = new Set<string>();
  const runsById = new Map<string, number>();
  const byWorker = { a: 0, b: 0 };
  let overlaps = 0;

  const once = (worker: 'a' | 'b'): JobDefinition => ({
    kind: 'test.once',
    async handler(_payload, ctx) {
      if (running.has(ctx.jobId)) overlaps++;
      running.add(ctx.jobId);
      runsById.set(ctx.jobId, (runsById.get(ctx.jobId) ?? 0) + 1);
      byWorker[worker]++;
      // Holds the job across a few event-loop turns so a second claim of it would overlap.
      await new Promise((r) => setTimeout(r, Math.random() * 3));
      running.delete(ctx.jobId);
    },
  });

  beforeAll(async () => {
    a = await createTestApp({ JOBS_CONCURRENCY: '4' });
    b = await createTestApp({ JOBS_CONCURRENCY: '4' });
    a.jobs.register([once('a')]);
    b.jobs.register([once('b')]);
    await Promise.all([a.jobRunner.start({ schedules: false }), b.jobRunner.start({ schedules: false })]);
  });
  afterAll(async () => {
    await Promise.all([a?.close(), b?.close()]);
  });

  it('runs each of 400 jobs exactly once, never on both workers at the same time, sharing the work', async () => {
    const ids = await a.db.transaction(async (tx) => {
      const out: string[] = [];
      for (let i = 0; i < 400; i++) out.push(await a.jobs.enqueue(tx, 'test.once', { i }));
      return out;
    });
    // Done means done in the queue too: the library completes a job just after its handler returns.
    const remaining = async () =>
      (
        await a.db.$client.query(
          `SELECT count(*)::int AS n FROM graphile_worker.jobs WHERE id = ANY($1::bigint[])`,
          [ids],
        )
      ).rows[0].n as number;
    const deadline = Date.now() + 30_000;
    while ((await remaining()) > 0) {
      if (Date.now() > deadline) throw new Error(`only ${runsById.size} of 400 jobs ran`);
      await new Promise((r) => setTimeout(r, 20));
    }
    expect(ids.map((id) => runsById.get(id))).toEqual(ids.map(() => 1));
    expect(overlaps).toBe(0);
    expect(byWorker.a + byWorker.b).toBe(400);
    expect(byWorker.a).toBeGreaterThan(0);
    expect(byWorker.b).toBeGreaterThan(0);
  });
});

describe('GET /metrics: the job queue', () => {
  let app: FastifyInstance;
  beforeAll(async () => {
    app = await createTestApp();
    app.jobs.register(
      definitions.filter((d) => d.kind === 'test.echo').map((d) => ({ ...d, kind: 'test.metrics' })),
    );
  });
  afterAll(() => app.close());

  it('shows queue depth, scheduled, running, failed and the oldest queued age', async () => {
    await app.jobs.enqueue(app.db, 'test.metrics', {}, { runAt: new Date(Date.now() - 60_000) });
    await app.jobs.enqueue(app.db, 'test.metrics', {}, { runAt: new Date(Date.now() + 3_600_000) });
    const res = await app.inject({ method: 'GET', url: '/metrics' });
    expect(res.statusCode).toBe(200);
    const value = (name: string) => Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(res.body)?.[1]);
    // No runner is started here, so the two jobs stay where they are (other files may add their own).
    expect(value('jobs_queue_depth')).toBeGreaterThanOrEqual(1);
    expect(value('jobs_scheduled')).toBeGreaterThanOrEqual(1);
    expect(value('jobs_running')).toBeGreaterThanOrEqual(0);
    expect(value('jobs_failed')).toBeGreaterThanOrEqual(0);
    expect(value('jobs_oldest_queued_age_seconds')).toBeGreaterThanOrEqual(59);
    expect(res.body).toContain('# TYPE jobs_queue_depth gauge');
  });
});
