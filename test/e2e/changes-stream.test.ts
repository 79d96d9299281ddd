import { randomUUID } from 'node:crypto';
import { Writable } from 'node:stream';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loggerOptions } from '../../src/app.js';
import type { AuthedContext } from '../../src/modules/auth/actor.js';
import { createTestApp } from '../helpers/app.js';
import { openSse, type SseFrame, settled } from '../helpers/changes.js';
import { createUser, type TestUser } from '../helpers/factory.js';
import { expectProblem } from '../helpers/http.js';
import { until } from '../helpers/wait.js';

const logLines: string[] = [];
let app: FastifyInstance;
let base: string;
let requester: TestUser;
let agent: TestUser;
let admin: TestUser;

beforeAll(async () => {
  const stream = new Writable({
    write(chunk, _enc, cb) {
      logLines.push(String(chunk));
      cb();
    },
  });
  app = await createTestApp(
    { CHANGES_STREAM_HEARTBEAT_MS: '300', CHANGES_STREAMS_PER_USER: '3' },
    { logger: { ...(loggerOptions({ logLevel: 'info', env: 'test' }) as object), stream } },
  );
  base = await app.listen({ port: 0, host: '127.0.0.1' });
  [requester, agent, admin] = await Promise.all([
    createUser(app, { role: 'requester' }),
    createUser(app, { role: 'agent' }),
    createUser(app, { role: 'admin' }),
  ]);
});
afterAll(() => app.close());

const streamUrl = (q = '') => `${base}/api/v1/changes/stream${q ? `?${q}` : ''}`;

async function newTicket(target: FastifyInstance, user: TestUser, title = `live ${randomUUID()}`) {
  const res = await target.inject({
    method: 'POST',
    url: '/api/v1/tickets',
    headers: user.auth,
    payload: { title, description: 'd' },
  });
  expect(res.statusCode).toBe(201);
  return res.json() as { id: number; title: string };
}

// biome-ignore lint/suspicious/noExplicitAny: the parsed JSON of a frame, narrowed by each predicate
type Change = Record<string, any>;

const isChange = (type: string, pred: (d: Change) => boolean) => (f: SseFrame) =>
  f.event === type && f.data !== undefined && pred(JSON.parse(f.data));

const ticketCreated = (title: string) => isChange('ticket.created', (e) => e.data.ticket.title === title);

function ctxOf(user: TestUser): AuthedContext {
  return {
    actor: { id: user.id, role: user.role, name: user.name, email: user.email },
    traceId: `t-${randomUUID()}`,
    ip: null,
    userAgent: null,
  };
}

describe('GET /changes/stream', () => {
  it('Bearer: SSE headers, a retry hint, then id/event/data frames of new changes', async () => {
    const sse = await openSse(streamUrl(), agent.auth);
    try {
      expect(sse.status).toBe(200);
      expect(sse.headers['content-type']).toMatch(/^text\/event-stream/);
      expect(sse.headers['x-request-id']).toEqual(expect.any(String));
      await sse.next((f) => f.retry !== undefined);
      const t = await newTicket(app, requester);
      const frame = await sse.next(ticketCreated(t.title));
      const event = JSON.parse(frame.data!);
      expect(frame.id).toBe(event.id);
      expect(event).toMatchObject({
        type: 'ticket.created',
        ticketId: t.id,
        actor: { id: requester.id, role: 'requester' },
        data: { ticket: { id: t.id, title: t.title } },
      });
      expect(event.data.ticket).not.toHaveProperty('allowedTransitions');
    } finally {
      sse.close();
    }
  });

  it('sends a comment heartbeat (every CHANGES_STREAM_HEARTBEAT_MS)', async () => {
    const sse = await openSse(streamUrl(), agent.auth);
    try {
      expect(await sse.next((f) => f.comment === 'heartbeat')).toEqual({ comment: 'heartbeat' });
    } finally {
      sse.close();
    }
  });

  it('a requester’s stream carries their public changes, never an internal note', async () => {
    const mine = await openSse(streamUrl(), requester.auth);
    try {
      const t = await newTicket(app, requester);
      const post = (user: TestUser, visibility: string, body: string) =>
        app.inject({
          method: 'POST',
          url: `/api/v1/tickets/${t.id}/comments`,
          headers: user.auth,
          payload: { body, visibility },
        });
      expect((await post(agent, 'internal', 'secret note')).statusCode).toBe(201);
      expect((await post(agent, 'public', 'public answer')).statusCode).toBe(201);
      await mine.next(isChange('comment.created', (e) => e.data.comment.body === 'public answer'));
      expect(mine.body).not.toContain('secret note');
    } finally {
      mine.close();
    }
  });

  it('streams of different callers and filters each get their own view of one batch', async () => {
    const other = await createUser(app, { role: 'requester' });
    const t1 = await newTicket(app, requester);
    const t2 = await newTicket(app, other);
    const streams = {
      agent: await openSse(streamUrl(), agent.auth),
      admin: await openSse(streamUrl(), admin.auth),
      agentOnT2: await openSse(streamUrl(`ticketId=${t2.id}`), agent.auth),
      requester: await openSse(streamUrl(), requester.auth),
      other: await openSse(streamUrl(), other.auth),
    };
    try {
      const ctx = ctxOf(agent);
      const marker = randomUUID();
      // One transaction: the events commit together and reach the hub as one batch.
      await app.db.transaction(async (tx) => {
        const rec = (ticketId: number | null, n: string, extra: Record<string, unknown> = {}) =>
          app.changes.record(tx, ctx, { type: 'ticket.updated', ticketId, data: { marker, n, ...extra } });
        await rec(t1.id, 'public on t1');
        await rec(t1.id, 'internal on t1', { comment: { visibility: 'internal' } });
        await rec(t2.id, 'public on t2');
        await rec(null, 'no ticket');
      });
      await app.db.transaction(async (tx) => {
        for (const id of [t1.id, t2.id]) {
          await app.changes.record(tx, ctx, {
            type: 'ticket.updated',
            ticketId: id,
            data: { marker, n: 'end' },
          });
        }
      });
      const seen = async (sse: (typeof streams)['agent']) => {
        await sse.next(isChange('ticket.updated', (e) => e.data.marker === marker && e.data.n === 'end'));
        return sse.frames
          .filter((f) => f.event === 'ticket.updated')
          .map((f) => JSON.parse(f.data!).data)
          .filter((d) => d.marker === marker && d.n !== 'end')
          .map((d) => d.n);
      };
      const all = ['public on t1', 'internal on t1', 'public on t2', 'no ticket'];
      expect(await seen(streams.agent)).toEqual(all);
      expect(await seen(streams.admin)).toEqual(all);
      expect(await seen(streams.agentOnT2)).toEqual(['public on t2']);
      expect(await seen(streams.requester)).toEqual(['public on t1']);
      expect(await seen(streams.other)).toEqual(['public on t2']);
    } finally {
      for (const sse of Object.values(streams)) sse.close();
    }
  });

  it('filters by ticketId and types', async () => {
    const t = await newTicket(app, requester);
    const sse = await openSse(streamUrl(`ticketId=${t.id}&types=comment.created`), agent.auth);
    try {
      await newTicket(app, requester);
      await app.inject({
        method: 'PATCH',
        url: `/api/v1/tickets/${t.id}`,
        headers: agent.auth,
        payload: { priority: 'high' },
      });
      await app.inject({
        method: 'POST',
        url: `/api/v1/tickets/${t.id}/comments`,
        headers: agent.auth,
        payload: { body: 'only me' },
      });
      await sse.next((f) => f.event === 'comment.created');
      expect(sse.frames.filter((f) => f.event).map((f) => f.event)).toEqual(['comment.created']);
    } finally {
      sse.close();
    }
  });

  it('resumes with Last-Event-ID or ?after= without losing or repeating an event', async () => {
    const first = await openSse(streamUrl(), agent.auth);
    const a = await newTicket(app, requester);
    const seenA = await first.next(ticketCreated(a.title));
    first.close();
    // Changes while no stream is open.
    const b = await newTicket(app, requester);
    const c = await newTicket(app, requester);
    await settled(app.db);
    for (const [q, headers] of [
      ['', { ...agent.auth, 'last-event-id': seenA.id! }],
      [`after=${seenA.id}`, agent.auth],
    ] as const) {
      const again = await openSse(streamUrl(q), headers);
      try {
        await again.next(ticketCreated(c.title));
        const titles = again.frames
          .filter((f) => f.event === 'ticket.created')
          .map((f) => JSON.parse(f.data!).data.ticket.title)
          .filter((x: string) => [a.title, b.title, c.title].includes(x));
        expect(titles).toEqual([b.title, c.title]);
      } finally {
        again.close();
      }
    }
  });

  it('401 without credentials, with a bad token or a malformed Last-Event-ID → 422', async () => {
    const bare = await app.inject({ method: 'GET', url: '/api/v1/changes/stream' });
    expectProblem(bare, 401, 'UNAUTHENTICATED');
    const bad = await app.inject({
      method: 'GET',
      url: '/api/v1/changes/stream',
      headers: { authorization: 'Bearer not-a-jwt' },
    });
    expectProblem(bad, 401, 'UNAUTHENTICATED');
    const cursor = await app.inject({
      method: 'GET',
      url: '/api/v1/changes/stream',
      headers: { ...agent.auth, 'last-event-id': 'nope' },
    });
    expectProblem(cursor, 422, 'INVALID_CURSOR');
  });

  it('at most CHANGES_STREAMS_PER_USER streams per user: one more → 429 TOO_MANY_STREAMS', async () => {
    const user = await createUser(app, { role: 'agent' });
    const open = await Promise.all([1, 2, 3].map(() => openSse(streamUrl(), user.auth)));
    try {
      expect(open.map((s) => s.status)).toEqual([200, 200, 200]);
      const res = await app.inject({ method: 'GET', url: '/api/v1/changes/stream', headers: user.auth });
      expectProblem(res, 429, 'TOO_MANY_STREAMS');
      // Another user is not affected; closing one frees a place.
      const other = await openSse(streamUrl(), agent.auth);
      expect(other.status).toBe(200);
      other.close();
      open[0]!.close();
      await open[0]!.ended;
      let reopened = await openSse(streamUrl(), user.auth);
      for (let i = 0; i < 50 && reopened.status === 429; i++) {
        // the server notices the closed socket asynchronously
        await new Promise((r) => setTimeout(r, 50));
        reopened = await openSse(streamUrl(), user.auth);
      }
      expect(reopened.status).toBe(200);
      reopened.close();
    } finally {
      for (const s of open) s.close();
    }
  });
});

describe('stream tokens (EventSource cannot send headers)', () => {
  it('POST /changes/stream-tokens → a single-use token that opens one stream and is never logged', async () => {
    const res = await app.inject({
      method: 'POST',
      url: '/api/v1/changes/stream-tokens',
      headers: agent.auth,
    });
    expect(res.statusCode).toBe(201);
    const { token, expiresIn } = res.json();
    expect(expiresIn).toBe(60);
    const sse = await openSse(streamUrl(`token=${encodeURIComponent(token)}`));
    try {
      expect(sse.status).toBe(200);
      const t = await newTicket(app, requester);
      await sse.next(ticketCreated(t.title));
      // Single use: the same token again → 401.
      const again = await app.inject({
        method: 'GET',
        url: `/api/v1/changes/stream?token=${encodeURIComponent(token)}`,
      });
      expectProblem(again, 401, 'UNAUTHENTICATED');
    } finally {
      sse.close();
    }
    expect(logLines.join('')).toContain('/api/v1/changes/stream');
    expect(logLines.join('')).not.toContain(token);
    expect(logLines.join('')).not.toContain(encodeURIComponent(token));
  });

  it('a token unknown or past its 60 s → 401', async () => {
    const res = await app.inject({
      method: 'POST',
      url: '/api/v1/changes/stream-tokens',
      headers: agent.auth,
    });
    const { token } = res.json();
    await app.db.$client.query("UPDATE change_stream_tokens SET expires_at = now() - interval '1 second'");
    for (const t of [token, 'hd_sst_unknown']) {
      const r = await app.inject({
        method: 'GET',
        url: `/api/v1/changes/stream?token=${encodeURIComponent(t)}`,
      });
      expectProblem(r, 401, 'UNAUTHENTICATED');
    }
    expectProblem(
      await app.inject({ method: 'POST', url: '/api/v1/changes/stream-tokens' }),
      401,
      'UNAUTHENTICATED',
    );
  });
});

describe('the stream ends with its session', () => {
  it('deactivating the user closes their stream (within 5 s) with reason "session ended"', async () => {
    const user = await createUser(app, { role: 'agent' });
    const sse = await openSse(streamUrl(), user.auth);
    await sse.next((f) => f.retry !== undefined);
    const res = await app.inject({
      method: 'PATCH',
      url: `/api/v1/users/${user.id}`,
      headers: admin.auth,
      payload: { active: false },
    });
    expect(res.statusCode).toBe(200);
    const close = await sse.next((f) => f.event === 'close', 5000);
    expect(JSON.parse(close.data!)).toEqual({ reason: 'session ended' });
    await sse.ended;
  });

  /** The time the access token expires, from its `exp` claim (whole seconds). */
  const expiryOf = (token: string) => (app.jwt.decode<{ exp: number }>(token)!.exp as number) * 1000;

  it('a stream opened with a stream token ends within 5 s of the access token behind it expiring', async () => {
    const user = await createUser(app, { role: 'agent' });
    const shortLived = app.jwt.sign(
      { sub: user.id, role: 'agent', typ: 'access', sid: user.sessionId },
      { expiresIn: 2 },
    );
    const res = await app.inject({
      method: 'POST',
      url: '/api/v1/changes/stream-tokens',
      headers: { authorization: `Bearer ${shortLived}` },
    });
    const sse = await openSse(streamUrl(`token=${encodeURIComponent(res.json().token)}`));
    expect(sse.status).toBe(200);
    const close = await sse.next((f) => f.event === 'close', expiryOf(shortLived) + 5000 - Date.now());
    expect(JSON.parse(close.data!)).toEqual({ reason: 'session ended' });
    await sse.ended;
  });

  it('a Bearer stream ends within 5 s of its access token expiring', async () => {
    const user = await createUser(app, { role: 'agent' });
    const shortLived = app.jwt.sign(
      { sub: user.id, role: 'agent', typ: 'access', sid: user.sessionId },
      { expiresIn: 2 },
    );
    const sse = await openSse(streamUrl(), { authorization: `Bearer ${shortLived}` });
    expect(sse.status).toBe(200);
    const close = await sse.next((f) => f.event === 'close', expiryOf(shortLived) + 5000 - Date.now());
    expect(JSON.parse(close.data!)).toEqual({ reason: 'session ended' });
  });

  it('logging out (on another instance) closes the session’s stream within 5 s; another session’s stays', async () => {
    const user = await createUser(app, { role: 'agent' });
    const login = async () => {
      const res = await app.inject({
        method: 'POST',
        url: '/api/v1/auth/login',
        payload: { email: user.email, password: user.password },
      });
      expect(res.statusCode).toBe(200);
      return res.json() as { accessToken: string; refreshToken: string };
    };
    const [ended, kept] = [await login(), await login()];
    const sse = await openSse(streamUrl(), { authorization: `Bearer ${ended.accessToken}` });
    const other = await openSse(streamUrl(), { authorization: `Bearer ${kept.accessToken}` });
    const b = await createTestApp({ JWT_SECRET: app.config.jwtSecret });
    try {
      await sse.next((f) => f.retry !== undefined);
      const out = await b.inject({
        method: 'POST',
        url: '/api/v1/auth/logout',
        headers: { authorization: `Bearer ${ended.accessToken}` },
        payload: { refreshToken: ended.refreshToken },
      });
      expect(out.statusCode).toBe(204);
      const close = await sse.next((f) => f.event === 'close', 5000);
      expect(JSON.parse(close.data!)).toEqual({ reason: 'session ended' });
      await sse.ended;
      // The other login's stream still gets changes.
      const t = await newTicket(app, requester);
      await other.next(ticketCreated(t.title));
      expect(other.frames.some((f) => f.event === 'close')).toBe(false);
    } finally {
      other.close();
      await b.close();
    }
  });

  it('the session reaching its expiry closes the stream within 5 s', async () => {
    const user = await createUser(app, { role: 'agent' });
    const sse = await openSse(streamUrl(), user.auth);
    await sse.next((f) => f.retry !== undefined);
    // The session's lifetime ends now (as it would REFRESH_TOKEN_TTL after its login).
    await app.db.$client.query('UPDATE sessions SET expires_at = now() WHERE id = $1', [user.sessionId]);
    const close = await sse.next((f) => f.event === 'close', 5000);
    expect(JSON.parse(close.data!)).toEqual({ reason: 'session ended' });
    await sse.ended;
  });

  it('a stream cannot be opened for an ended session (401)', async () => {
    const user = await createUser(app, { role: 'agent' });
    await app.db.$client.query('UPDATE sessions SET revoked_at = now() WHERE id = $1', [user.sessionId]);
    expectProblem(
      await app.inject({ method: 'GET', url: '/api/v1/changes/stream', headers: user.auth }),
      401,
      'UNAUTHENTICATED',
    );
  });

  it('closing the server ends open streams with "server shutting down"', async () => {
    const other = await createTestApp();
    const url = await other.listen({ port: 0, host: '127.0.0.1' });
    const user = await createUser(other, { role: 'agent' });
    const sse = await openSse(`${url}/api/v1/changes/stream`, user.auth);
    await sse.next((f) => f.retry !== undefined);
    await other.close();
    const close = await sse.next((f) => f.event === 'close');
    expect(JSON.parse(close.data!)).toEqual({ reason: 'server shutting down' });
  });
});

describe('slow consumers', () => {
  it('a client that stops reading is cut off once its buffer passes CHANGES_STREAM_BUFFER_BYTES', async () => {
    const lines: string[] = [];
    const stream = new Writable({
      write(chunk, _enc, cb) {
        lines.push(String(chunk));
        cb();
      },
    });
    const small = await createTestApp(
      { CHANGES_STREAM_BUFFER_BYTES: '65536' },
      { logger: { ...(loggerOptions({ logLevel: 'info', env: 'test' }) as object), stream } },
    );
    try {
      const url = await small.listen({ port: 0, host: '127.0.0.1' });
      const user = await createUser(small, { role: 'agent' });
      const sse = await openSse(`${url}/api/v1/changes/stream`, user.auth);
      await sse.next((f) => f.retry !== undefined);
      sse.pause();
      // Far more than the socket buffers of a loopback connection hold: the server's own buffer must fill.
      const ctx = ctxOf(user);
      const blob = 'x'.repeat(1024 * 1024);
      for (let i = 0; i < 24; i++) {
        await small.changes.record(small.db, ctx, { type: 'ticket.merged', ticketId: null, data: { blob } });
      }
      await expect
        .poll(() => lines.some((l) => l.includes('"reason":"slow consumer"')), { timeout: 20_000 })
        .toBe(true);
      // Reading again drains what the sockets held, then the connection ends: the rest was never buffered.
      sse.resume();
      await sse.ended;
      expect(sse.frames.filter((f) => f.event === 'ticket.merged').length).toBeLessThan(24);
    } finally {
      await small.close();
    }
  });
});

describe('fan-out across instances', () => {
  it('a change committed on instance A reaches a stream on instance B (LISTEN/NOTIFY on one database)', async () => {
    const b = await createTestApp();
    try {
      const urlB = await b.listen({ port: 0, host: '127.0.0.1' });
      const user = await createUser(b, { role: 'agent' });
      const sse = await openSse(`${urlB}/api/v1/changes/stream`, user.auth);
      await sse.next((f) => f.retry !== undefined);
      const t = await newTicket(app, requester); // written through instance A
      const frame = await sse.next(ticketCreated(t.title));
      expect(JSON.parse(frame.data!).ticketId).toBe(t.id);
      sse.close();
    } finally {
      await b.close();
    }
  });

  it('with no open stream an instance reads nothing for announced changes; its next stream starts at the head', async () => {
    const b = await createTestApp();
    try {
      const urlB = await b.listen({ port: 0, host: '127.0.0.1' });
      const user = await createUser(b, { role: 'agent' });
      const first = await openSse(`${urlB}/api/v1/changes/stream`, user.auth);
      await first.next((f) => f.retry !== undefined);
      first.close();
      await until(() => b.changeHub.streams.size === 0);
      // Count the hub's feed reads from here on.
      const repo = b.services.changesRepo;
      const listAfter = repo.listAfter;
      let reads = 0;
      repo.listAfter = (...args) => {
        reads++;
        return listAfter.apply(repo, args);
      };
      const unseen = await newTicket(app, requester); // through instance A
      await until(() => b.changeHub.stale);
      expect(reads).toBe(0);
      // The feed's head passes `unseen` once every transaction older than it has ended (another test's
      // on the same server may still run): only then is it, by any reading, before the next stream.
      await settled(b.db);
      const sse = await openSse(`${urlB}/api/v1/changes/stream`, user.auth);
      try {
        await sse.next((f) => f.retry !== undefined);
        const seen = await newTicket(app, requester);
        await sse.next(ticketCreated(seen.title));
        // Everything it carries came after it opened: nothing written while the instance had no stream.
        const tickets = sse.frames
          .filter((f) => f.event === 'ticket.created')
          .map((f) => JSON.parse(f.data!).ticketId);
        expect(tickets).not.toContain(unseen.id);
      } finally {
        sse.close();
      }
    } finally {
      await b.close();
    }
  });

  it('the listener re-subscribes after its connection is killed and misses nothing', async () => {
    const sse = await openSse(streamUrl(), agent.auth);
    try {
      await sse.next((f) => f.retry !== undefined);
      const killed = await app.db.$client.query<{ ok: boolean }>(
        `SELECT pg_terminate_backend(pid) AS ok FROM pg_stat_activity
          WHERE application_name = 'helpdesk-changes-listener' AND datname = current_database()`,
      );
      expect(killed.rows.length).toBeGreaterThan(0);
      const during = await newTicket(app, requester); // committed while the listener is reconnecting
      await sse.next(ticketCreated(during.title));
      // And notifications flow again on the new connection.
      for (let i = 0; i < 100; i++) {
        const { rows } = await app.db.$client.query(
          `SELECT 1 FROM pg_stat_activity WHERE application_name = 'helpdesk-changes-listener'
             AND datname = current_database() AND state IS NOT NULL`,
        );
        if (rows.length > 0) break;
        await new Promise((r) => setTimeout(r, 50));
      }
      const after = await newTicket(app, requester);
      await sse.next(ticketCreated(after.title));
    } finally {
      sse.close();
    }
  });
});
