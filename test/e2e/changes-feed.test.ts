import { randomUUID } from 'node:crypto';
import { drizzle } from 'drizzle-orm/node-postgres';
import type { FastifyInstance } from 'fastify';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import type { Database } from '../../src/db/client.js';
import { runMigrations } from '../../src/db/migrate.js';
import type { AuthedContext } from '../../src/modules/auth/actor.js';
import { changesJobs } from '../../src/modules/changes/changes.jobs.js';
import {
  comparePositions,
  createChangesRepository,
  type Position,
  positionOf,
} from '../../src/modules/changes/changes.repository.js';
import { createTestApp } from '../helpers/app.js';
import { settled } from '../helpers/changes.js';
import { createUser, type TestUser } from '../helpers/factory.js';
import { expectProblem } from '../helpers/http.js';
import { type TempDatabase, tempDatabase } from '../helpers/temp-database.js';

let app: FastifyInstance;
let requester: TestUser;
let other: TestUser;
let agent: TestUser;
let admin: TestUser;

beforeAll(async () => {
  app = await createTestApp();
  [requester, other, agent, admin] = await Promise.all([
    createUser(app, { role: 'requester' }),
    createUser(app, { role: 'requester' }),
    createUser(app, { role: 'agent' }),
    createUser(app, { role: 'admin' }),
  ]);
});
afterAll(() => app.close());

interface Change {
  id: string;
  type: string;
  ticketId: number | null;
  actor: { id: string; name: string; role: string } | null;
  data: Record<string, Record<string, unknown>>;
}

async function newTicket(user: TestUser, title = `feed ${randomUUID()}`): Promise<number> {
  const res = await app.inject({
    method: 'POST',
    url: '/api/v1/tickets',
    headers: user.auth,
    payload: { title, description: 'd' },
  });
  expect(res.statusCode).toBe(201);
  return res.json().id;
}

async function comment(user: TestUser, id: number, visibility: 'public' | 'internal' = 'public') {
  const res = await app.inject({
    method: 'POST',
    url: `/api/v1/tickets/${id}/comments`,
    headers: user.auth,
    payload: { body: `${visibility} words`, visibility },
  });
  expect(res.statusCode).toBe(201);
  return res.json().id as string;
}

async function upload(user: TestUser, id: number, commentId?: string) {
  const boundary = `b${randomUUID()}`;
  const parts = [
    ...(commentId
      ? [`--${boundary}\r\nContent-Disposition: form-data; name="commentId"\r\n\r\n${commentId}\r\n`]
      : []),
    `--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="n.txt"\r\nContent-Type: text/plain\r\n\r\nhello\n\r\n`,
    `--${boundary}--\r\n`,
  ];
  const res = await app.inject({
    method: 'POST',
    url: `/api/v1/tickets/${id}/attachments`,
    headers: { ...user.auth, 'content-type': `multipart/form-data; boundary=${boundary}` },
    payload: parts.join(''),
  });
  expect(res.statusCode).toBe(201);
  return res.json().data[0].id as string;
}

async function feed(user: TestUser, query = '') {
  const res = await app.inject({ method: 'GET', url: `/api/v1/changes?${query}`, headers: user.auth });
  expect(res.statusCode).toBe(200);
  return res.json() as { data: Change[]; nextCursor: string };
}

/** Every event of one ticket the user may see, walking all pages. */
async function allFor(user: TestUser, ticketId: number, extra = ''): Promise<Change[]> {
  await settled(app.db);
  const out: Change[] = [];
  let after = '';
  for (let i = 0; i < 50; i++) {
    const page = await feed(user, `ticketId=${ticketId}&limit=500${extra}${after}`);
    out.push(...page.data);
    if (page.data.length === 0) return out;
    after = `&after=${page.nextCursor}`;
  }
  return out;
}

function ctxOf(user: TestUser): AuthedContext {
  return {
    actor: { id: user.id, role: user.role, name: user.name, email: user.email },
    traceId: `t-${randomUUID()}`,
    ip: null,
    userAgent: null,
  };
}

/**
 * Transaction A: records `ticket.updated` {n: 'A'} on the ticket and stays open until `commit()`.
 * Resolves once A has recorded (its event holds the lower id); `done` settles when A has committed.
 */
async function openRecordingTransaction(ctx: AuthedContext, ticketId: number) {
  let commit!: () => void;
  const mayCommit = new Promise<void>((r) => {
    commit = r;
  });
  let recorded!: () => void;
  const hasRecorded = new Promise<void>((r) => {
    recorded = r;
  });
  const done = app.db.transaction(async (tx) => {
    const e = await app.changes.record(tx, ctx, { type: 'ticket.updated', ticketId, data: { n: 'A' } });
    recorded();
    await mayCommit;
    return e;
  });
  await hasRecorded;
  return { commit, done };
}

describe('the outbox: every change writes its change event', () => {
  it('ticket, comment and attachment changes, in order, with the staff view of the entity', async () => {
    const id = await newTicket(requester);
    const patch = (user: TestUser, payload: Record<string, unknown>) =>
      app.inject({ method: 'PATCH', url: `/api/v1/tickets/${id}`, headers: user.auth, payload });
    expect((await patch(requester, { title: 'Better title' })).statusCode).toBe(200);
    expect((await patch(admin, { assigneeId: agent.id })).statusCode).toBe(200);
    expect((await patch(agent, { priority: 'high' })).statusCode).toBe(200);
    expect((await patch(agent, { status: 'pending' })).statusCode).toBe(200);
    await comment(agent, id, 'internal');
    await comment(requester, id, 'public'); // reopens the pending ticket: a status change too
    await upload(requester, id);
    expect(
      (await app.inject({ method: 'DELETE', url: `/api/v1/tickets/${id}`, headers: admin.auth })).statusCode,
    ).toBe(204);
    expect(
      (await app.inject({ method: 'POST', url: `/api/v1/tickets/${id}/restore`, headers: admin.auth }))
        .statusCode,
    ).toBe(200);

    const events = await allFor(admin, id);
    expect(events.map((e) => e.type)).toEqual([
      'ticket.created',
      'ticket.updated',
      'ticket.status_changed', // assigning a new ticket opens it: the most specific action wins
      'ticket.updated',
      'ticket.status_changed',
      'comment.created',
      'comment.created',
      'ticket.status_changed', // the requester's reply reopened it
      'attachment.created',
      'ticket.deleted',
      'ticket.restored',
    ]);
    const [created, renamed] = events;
    expect(created).toMatchObject({
      ticketId: id,
      actor: { id: requester.id, name: requester.name, role: 'requester' },
      data: { ticket: { id, status: 'new', version: 1 } },
    });
    expect(renamed!.data.ticket).toMatchObject({ title: 'Better title', version: 2 });
    for (const e of events.filter((x) => x.data.ticket)) {
      expect(e.data.ticket).not.toHaveProperty('allowedTransitions');
    }
    expect(events[5]!.data.comment).toMatchObject({ visibility: 'internal', ticketId: id });
    expect(events[8]!.data.attachment).toMatchObject({ ticketId: id, filename: 'n.txt' });
    expect(new Set(events.map((e) => e.id)).size).toBe(events.length);
  });

  it('a change whose event cannot be written rolls back, and no event outlives a rolled-back change', async () => {
    const title = `doomed ${randomUUID()}`;
    app.changes.onRecorded(async (_ex, event) => {
      if ((event.data.ticket as { title?: string } | undefined)?.title === title) {
        throw new Error('subscriber refused');
      }
    });
    const traceId = `t-${randomUUID()}`;
    const res = await app.inject({
      method: 'POST',
      url: '/api/v1/tickets',
      headers: { ...agent.auth, 'x-request-id': traceId },
      payload: { title, description: 'd', requesterId: requester.id },
    });
    expect(res.statusCode).toBe(500);
    const q = (sql: string, v: unknown[]) => app.db.$client.query(sql, v).then((r) => r.rowCount);
    expect(await q('SELECT 1 FROM tickets WHERE title = $1', [title])).toBe(0);
    expect(await q('SELECT 1 FROM audit_events WHERE trace_id = $1', [traceId])).toBe(0);
    expect(await q('SELECT 1 FROM change_events WHERE trace_id = $1', [traceId])).toBe(0);

    // And the other way round: an event recorded in a transaction that fails is gone with it.
    const id = await newTicket(requester);
    const ctx = ctxOf(agent);
    await expect(
      app.db.transaction(async (tx) => {
        await app.changes.record(tx, ctx, { type: 'ticket.updated', ticketId: id, data: { ticket: { id } } });
        throw new Error('the change failed after its event');
      }),
    ).rejects.toThrow('the change failed');
    expect(await q('SELECT 1 FROM change_events WHERE trace_id = $1', [ctx.traceId])).toBe(0);
  });

  it('in-transaction subscribers see the event and write on the same transaction', async () => {
    const seen: string[] = [];
    const marker = `sub ${randomUUID()}`;
    app.changes.onRecorded(async (ex, event) => {
      const t = event.data.ticket as { title?: string } | undefined;
      if (t?.title !== marker) return;
      seen.push(event.type);
      // Visible inside the writing transaction, before commit.
      const { rows } = await ex.execute(
        `SELECT count(*)::int AS n FROM change_events WHERE id = ${event.seq}`,
      );
      expect(rows[0]).toEqual({ n: 1 });
    });
    await newTicket(requester, marker);
    expect(seen).toEqual(['ticket.created']);
  });
});

describe('GET /changes: visibility is the caller’s', () => {
  let id: number;
  let note: string;
  let reply: string;
  beforeAll(async () => {
    id = await newTicket(requester);
    reply = await comment(requester, id, 'public');
    note = await comment(agent, id, 'internal');
    await upload(requester, id, reply);
    await upload(agent, id, note);
    await app.changes.record(app.db, ctxOf(agent), {
      type: 'draft.created',
      ticketId: id,
      data: { draft: { id: randomUUID(), body: 'proposed reply' } },
      staffOnly: true,
    });
  });

  it('staff see every event of the ticket, internal notes, their files and drafts included', async () => {
    const types = (await allFor(agent, id)).map((e) => e.type);
    expect(types).toEqual([
      'ticket.created',
      'comment.created',
      'comment.created',
      'attachment.created',
      'attachment.created',
      'draft.created',
    ]);
  });

  it('the requester sees their ticket but never an internal note, its attachment or a draft', async () => {
    const events = await allFor(requester, id);
    expect(events.map((e) => e.type)).toEqual(['ticket.created', 'comment.created', 'attachment.created']);
    expect(events[1]!.data.comment).toMatchObject({ id: reply, visibility: 'public' });
    expect(JSON.stringify(events)).not.toContain(note);
    expect(JSON.stringify(events)).not.toContain('proposed reply');
  });

  it('another requester sees nothing of it, with or without the ticketId filter', async () => {
    expect(await allFor(other, id)).toEqual([]);
    const mine = await newTicket(other);
    await settled(app.db);
    const page = await feed(other, 'limit=500');
    expect(page.data.every((e) => e.ticketId === mine)).toBe(true);
  });

  it('a deleted ticket’s deletion is seen by admins only, as GET /tickets/{id} is', async () => {
    const gone = await newTicket(requester);
    await app.inject({ method: 'DELETE', url: `/api/v1/tickets/${gone}`, headers: admin.auth });
    const types = (user: TestUser) => allFor(user, gone).then((es) => es.map((e) => e.type));
    expect(await types(admin)).toEqual(['ticket.created', 'ticket.deleted']);
    expect(await types(agent)).toEqual(['ticket.created']);
    expect(await types(requester)).toEqual(['ticket.created']);
  });

  it('an event without a ticket is for staff only', async () => {
    const ctx = ctxOf(admin);
    await app.changes.record(app.db, ctx, {
      type: 'ticket.merged',
      ticketId: null,
      data: { note: ctx.traceId },
    });
    await settled(app.db);
    const has = async (user: TestUser) => {
      for (let after = ''; ; ) {
        const page = await feed(user, `types=ticket.merged&limit=500${after}`);
        if (page.data.some((e) => e.data.note === (ctx.traceId as unknown))) return true;
        if (page.data.length === 0) return false;
        after = `&after=${page.nextCursor}`;
      }
    };
    expect(await has(agent)).toBe(true);
    expect(await has(requester)).toBe(false);
  });
});

describe('GET /changes: cursor, filters, errors', () => {
  it('pages of `limit` walk every event exactly once; Link names the next page', async () => {
    const id = await newTicket(requester);
    for (let i = 0; i < 4; i++) await comment(requester, id);
    const all = await allFor(agent, id);
    expect(all).toHaveLength(5);
    const walked: string[] = [];
    let after = '';
    for (;;) {
      const res = await app.inject({
        method: 'GET',
        url: `/api/v1/changes?ticketId=${id}&limit=2${after}`,
        headers: agent.auth,
      });
      const page = res.json() as { data: Change[]; nextCursor: string };
      walked.push(...page.data.map((e) => e.id));
      if (page.data.length === 2) {
        expect(res.headers.link).toBe(
          `</api/v1/changes?ticketId=${id}&limit=2&after=${page.nextCursor}>; rel="next"`,
        );
      }
      if (page.data.length === 0) break;
      after = `&after=${page.nextCursor}`;
    }
    expect(walked).toEqual(all.map((e) => e.id));
    // Resuming from an event's id continues right after it.
    const rest = await feed(agent, `ticketId=${id}&after=${all[2]!.id}`);
    expect(rest.data.map((e) => e.id)).toEqual(all.slice(3).map((e) => e.id));
  });

  it('types filters by event type', async () => {
    const id = await newTicket(requester);
    await comment(requester, id);
    await settled(app.db);
    const page = await feed(agent, `ticketId=${id}&types=comment.created,ticket.assigned`);
    expect(page.data.map((e) => e.type)).toEqual(['comment.created']);
  });

  it('bad input is a 422 problem: malformed cursor, unknown type, limit out of range', async () => {
    for (const q of [
      'after=abc',
      'after=1-2-3',
      'types=ticket.exploded',
      'limit=0',
      'limit=501',
      'ticketId=x',
    ]) {
      const res = await app.inject({ method: 'GET', url: `/api/v1/changes?${q}`, headers: agent.auth });
      expect(res.statusCode, q).toBe(422);
    }
    expectProblem(
      await app.inject({ method: 'GET', url: '/api/v1/changes?after=zz', headers: agent.auth }),
      422,
      'INVALID_CURSOR',
    );
    expectProblem(await app.inject({ method: 'GET', url: '/api/v1/changes' }), 401, 'UNAUTHENTICATED');
  });
});

describe('commit order without gaps', () => {
  it('a reader resuming from any cursor never skips an event that committed later with a lower id', async () => {
    const id = await newTicket(requester);
    await settled(app.db);
    const start = (await feed(admin, `ticketId=${id}`)).nextCursor;
    const ctx = ctxOf(agent);

    // Two real transactions: A records first (lower id) but commits last.
    const txA = await openRecordingTransaction(ctx, id);
    const b = await app.db.transaction((tx) =>
      app.changes.record(tx, ctx, { type: 'ticket.updated', ticketId: id, data: { n: 'B' } }),
    );

    // B is committed, A is not: a reader now must not be handed B (its cursor would pass A's id).
    const whileAOpen = await feed(admin, `ticketId=${id}&after=${start}`);
    expect(whileAOpen.data).toEqual([]);

    txA.commit();
    const a = await txA.done;
    expect(a.seq).toBeLessThan(b.seq);

    // Resuming from the cursor given while A was open returns both, each once.
    await settled(app.db);
    const seen: string[] = [];
    let after = whileAOpen.nextCursor;
    for (let i = 0; i < 20 && seen.length < 2; i++) {
      const page = await feed(admin, `ticketId=${id}&after=${after}`);
      seen.push(...page.data.map((e) => e.data.n as unknown as string));
      after = page.nextCursor;
    }
    expect(seen).toEqual(['A', 'B']);
    expect((await feed(admin, `ticketId=${id}&after=${after}`)).data).toEqual([]);
  });
  it('an older transaction ending between a read and its horizon is not skipped', async () => {
    const id = await newTicket(requester);
    await settled(app.db);
    const repo = createChangesRepository();
    const start = await repo.head(app.db);
    const ctx = ctxOf(agent);

    // A records first and stays open; B records after it and commits.
    const txA = await openRecordingTransaction(ctx, id);
    await app.db.transaction((tx) =>
      app.changes.record(tx, ctx, { type: 'ticket.updated', ticketId: id, data: { n: 'B' } }),
    );

    // The reader's connection lets A commit right after its first statement: a horizon taken by any later
    // statement would already lie past A and B, whose events that first statement could not show.
    const pool = new pg.Pool({ connectionString: app.db.$client.options.connectionString, max: 1 });
    const query = pool.query.bind(pool) as (...args: unknown[]) => Promise<unknown>;
    let first = true;
    (pool as unknown as { query: typeof query }).query = async (...args) => {
      const result = await query(...args);
      if (first) {
        first = false;
        txA.commit();
        await txA.done;
      }
      return result;
    };
    const reader = drizzle({ client: pool, casing: 'snake_case' }) as Database;
    try {
      const seen: unknown[] = [];
      let after: Position = start;
      for (let i = 0; i < 10 && seen.length < 2; i++) {
        const { rows, horizon } = await repo.listAfter(reader, { after, ticketId: id, limit: 100 });
        seen.push(...rows.map((r) => r.data.n));
        if (rows.length > 0) after = positionOf(rows.at(-1)!);
        if (comparePositions(horizon, after) > 0) after = horizon;
      }
      expect(seen).toEqual(['A', 'B']);
    } finally {
      await pool.end();
    }
  });
});

describe('retention', () => {
  // Its own database: pruning moves the feed's horizon, which other files' cursors must not see.
  let db: TempDatabase;
  let own: FastifyInstance;
  beforeAll(async () => {
    db = await tempDatabase('helpdesk_changes_retention');
    await runMigrations(db.url);
    own = await createTestApp({ DATABASE_URL: db.url });
  });
  afterAll(async () => {
    await own?.close();
    await db?.drop();
  });

  it('a recurring job prunes events past CHANGES_RETENTION_DAYS; an older cursor → 410 CURSOR_EXPIRED', async () => {
    const user = await createUser(own, { role: 'agent' });
    const ctx = ctxOf(user);
    const old = await own.changes.record(own.db, ctx, {
      type: 'ticket.merged',
      ticketId: null,
      data: { n: 1 },
    });
    const kept = await own.changes.record(own.db, ctx, {
      type: 'ticket.merged',
      ticketId: null,
      data: { n: 2 },
    });
    await own.db.$client.query(
      "UPDATE change_events SET occurred_at = now() - interval '7 days 1 minute' WHERE id = $1",
      [old.seq],
    );
    await settled(own.db);
    const get = (q: string) => own.inject({ method: 'GET', url: `/api/v1/changes?${q}`, headers: user.auth });
    expect((await get('after=0-0')).json().data.map((e: Change) => e.id)).toEqual([old.id, kept.id]);

    const job = changesJobs(own.changes).definitions[0]!;
    expect(changesJobs(own.changes).schedules).toEqual([{ kind: 'changes.prune', everySeconds: 3600 }]);
    const jobCtx = {
      jobId: 'test',
      attempt: 1,
      maxAttempts: 3,
      log: own.log,
      progress: async () => {},
      signal: new AbortController().signal,
    };
    expect(await job.handler({}, jobCtx)).toEqual({ deleted: 1 });
    expect(await job.handler({}, jobCtx)).toEqual({ deleted: 0 }); // a second run is harmless

    expectProblem(await get('after=0-0'), 410, 'CURSOR_EXPIRED');
    // The last pruned event's own cursor lost nothing; no cursor starts at the oldest kept event.
    expect((await get(`after=${old.id}`)).json().data.map((e: Change) => e.id)).toEqual([kept.id]);
    expect((await get('')).json().data.map((e: Change) => e.id)).toEqual([kept.id]);
    const stream = await own.inject({
      method: 'GET',
      url: '/api/v1/changes/stream',
      headers: { ...user.auth, 'last-event-id': '0-0' },
    });
    expectProblem(stream, 410, 'CURSOR_EXPIRED');
  });

  it('retention cannot be configured below 7 days', () => {
    expect(() => loadConfig({ CHANGES_RETENTION_DAYS: '6' })).toThrow(/CHANGES_RETENTION_DAYS/);
  });
});
