import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApp } from '../helpers/app.js';
import { createUser, type TestUser } from '../helpers/factory.js';

let app: FastifyInstance;
let app2: FastifyInstance;
let requester: TestUser;
let other: TestUser;
let agent: TestUser;

beforeAll(async () => {
  // Two app instances on one database: idempotency must hold across instances.
  app = await createTestApp({ JWT_SECRET: 'k'.repeat(40) });
  app2 = await createTestApp({ JWT_SECRET: 'k'.repeat(40) });
  [requester, other, agent] = await Promise.all([
    createUser(app, { role: 'requester' }),
    createUser(app, { role: 'requester' }),
    createUser(app, { role: 'agent' }),
  ]);
});
afterAll(async () => {
  await app.close();
  await app2.close();
});

const key = () => `key-${Math.random().toString(36).slice(2)}`;

function post(target: FastifyInstance, user: TestUser, k: string, payload: Record<string, unknown>) {
  return target.inject({
    method: 'POST',
    url: '/api/v1/tickets',
    headers: { ...user.auth, 'idempotency-key': k },
    payload,
  });
}

async function countTickets(title: string) {
  const { rows } = await app.db.$client.query('SELECT count(*)::int AS n FROM tickets WHERE title = $1', [
    title,
  ]);
  return rows[0].n as number;
}

describe('Idempotency-Key on POST /tickets', () => {
  it('same key + same body → first response replayed with Idempotent-Replayed: true', async () => {
    const k = key();
    const title = `idem ${k}`;
    const first = await post(app, requester, k, { title, description: 'd' });
    expect(first.statusCode).toBe(201);
    expect(first.headers['idempotent-replayed']).toBeUndefined();
    const again = await post(app2, requester, k, { description: 'd', title }); // other key order, other instance
    expect(again.statusCode).toBe(201);
    expect(again.headers['idempotent-replayed']).toBe('true');
    expect(again.headers.location).toBe(first.headers.location);
    expect(again.headers.etag).toBe(first.headers.etag);
    expect(again.json()).toEqual(first.json());
    expect(await countTickets(title)).toBe(1);
  });

  it('same key + different body → 422 IDEMPOTENCY_KEY_REUSED', async () => {
    const k = key();
    await post(app, requester, k, { title: `a ${k}`, description: 'd' });
    const res = await post(app, requester, k, { title: `b ${k}`, description: 'd' });
    expect(res.statusCode).toBe(422);
    expect(res.json().code).toBe('IDEMPOTENCY_KEY_REUSED');
    expect(await countTickets(`b ${k}`)).toBe(0);
  });

  it('keys are scoped per user: another user with the same key creates their own ticket', async () => {
    const k = key();
    const title = `scoped ${k}`;
    const a = await post(app, requester, k, { title, description: 'd' });
    const b = await post(app, other, k, { title, description: 'd' });
    expect(b.statusCode).toBe(201);
    expect(b.headers['idempotent-replayed']).toBeUndefined();
    expect(b.json().id).not.toBe(a.json().id);
  });

  it('parallel requests with one key (two instances) create exactly one ticket', async () => {
    const k = key();
    const title = `parallel ${k}`;
    const results = await Promise.all(
      Array.from({ length: 8 }, (_, i) =>
        post(i % 2 ? app2 : app, requester, k, { title, description: 'd' }),
      ),
    );
    const codes = results.map((r) => r.statusCode);
    for (const c of codes) expect([201, 409]).toContain(c);
    expect(codes.filter((c) => c === 201).length).toBeGreaterThanOrEqual(1);
    for (const r of results.filter((x) => x.statusCode === 409)) {
      expect(r.json().code).toBe('IDEMPOTENCY_IN_PROGRESS');
    }
    const ids = new Set(results.filter((r) => r.statusCode === 201).map((r) => r.json().id));
    expect(ids.size).toBe(1);
    expect(await countTickets(title)).toBe(1);
    // After the first finished, a retry replays it.
    const retry = await post(app, requester, k, { title, description: 'd' });
    expect(retry.headers['idempotent-replayed']).toBe('true');
    expect(retry.json().id).toBe([...ids][0]);
  });

  it('while the first request is still running → 409 IDEMPOTENCY_IN_PROGRESS', async () => {
    const k = key();
    const title = `slow ${k}`;
    // Hold a lock on a team row: the ticket insert's foreign-key check (FOR KEY SHARE) waits on it,
    // while the key claim itself does not touch teams.
    const { rows } = await app.db.$client.query<{ id: string }>(
      'INSERT INTO teams (name) VALUES ($1) RETURNING id',
      [`team ${k}`],
    );
    const teamId = rows[0]!.id;
    const blocker = await app.db.$client.connect();
    await blocker.query('BEGIN');
    await blocker.query('SELECT 1 FROM teams WHERE id = $1 FOR UPDATE', [teamId]);
    try {
      const first = post(app, agent, k, { title, description: 'd', teamId });
      // Wait until the first request holds the claim.
      for (let i = 0; i < 200; i++) {
        const { rowCount } = await app.db.$client.query(
          `SELECT 1 FROM idempotency_keys WHERE user_id = $1 AND key = $2 AND status = 'in_progress'`,
          [agent.id, k],
        );
        if (rowCount) break;
        await new Promise((r) => setTimeout(r, 10));
      }
      const second = await post(app2, agent, k, { title, description: 'd', teamId });
      expect(second.statusCode).toBe(409);
      expect(second.json().code).toBe('IDEMPOTENCY_IN_PROGRESS');
      await blocker.query('ROLLBACK');
      expect((await first).statusCode).toBe(201);
    } finally {
      await blocker.query('ROLLBACK').catch(() => {});
      blocker.release();
    }
    expect(await countTickets(title)).toBe(1);
  });

  it('a failed request is not stored: the retry runs again', async () => {
    const k = key();
    const bad = await post(app, agent, k, {
      title: `fail ${k}`,
      description: 'd',
      requesterId: '00000000-0000-4000-8000-000000000000',
    });
    expect(bad.statusCode).toBe(422);
    const ok = await post(app, agent, k, {
      title: `fail ${k}`,
      description: 'd',
      requesterId: '00000000-0000-4000-8000-000000000000',
    });
    expect(ok.statusCode).toBe(422);
    expect(ok.headers['idempotent-replayed']).toBeUndefined();
  });

  it('keys are kept 24 hours', async () => {
    const k = key();
    await post(app, requester, k, { title: `ttl ${k}`, description: 'd' });
    const { rows } = await app.db.$client.query(
      `SELECT extract(epoch FROM expires_at - created_at)::int AS ttl FROM idempotency_keys WHERE user_id = $1 AND key = $2`,
      [requester.id, k],
    );
    expect(rows[0].ttl).toBe(24 * 3600);
  });

  it('an expired key is reusable (a new ticket is created)', async () => {
    const k = key();
    const first = await post(app, requester, k, { title: `exp ${k}`, description: 'd' });
    await app.db.$client.query(
      `UPDATE idempotency_keys SET expires_at = now() - interval '1 second' WHERE user_id = $1 AND key = $2`,
      [requester.id, k],
    );
    const again = await post(app, requester, k, { title: `exp ${k}`, description: 'd' });
    expect(again.statusCode).toBe(201);
    expect(again.headers['idempotent-replayed']).toBeUndefined();
    expect(again.json().id).not.toBe(first.json().id);
  });

  it('key longer than 255 characters → 422', async () => {
    const res = await post(app, requester, 'x'.repeat(256), { title: 't', description: 'd' });
    expect(res.statusCode).toBe(422);
  });
});

describe('Idempotency-Key on POST /tickets/{id}/comments', () => {
  it('replays the comment, refuses another body, and parallel posts create one comment', async () => {
    const t = (await post(app, requester, key(), { title: 'comment idem', description: 'd' })).json();
    const k = key();
    const send = (target: FastifyInstance, body: string) =>
      target.inject({
        method: 'POST',
        url: `/api/v1/tickets/${t.id}/comments`,
        headers: { ...agent.auth, 'idempotency-key': k },
        payload: { body },
      });
    const results = await Promise.all([send(app, 'hello'), send(app2, 'hello'), send(app, 'hello')]);
    const created = results.filter((r) => r.statusCode === 201);
    expect(new Set(created.map((r) => r.json().id)).size).toBe(1);
    const replay = await send(app2, 'hello');
    expect(replay.statusCode).toBe(201);
    expect(replay.headers['idempotent-replayed']).toBe('true');
    expect(replay.json().id).toBe(created[0]!.json().id);
    expect((await send(app, 'other body')).json().code).toBe('IDEMPOTENCY_KEY_REUSED');
    const { rows } = await app.db.$client.query(
      'SELECT count(*)::int AS n FROM comments WHERE ticket_id = $1',
      [t.id],
    );
    expect(rows[0].n).toBe(1);
  });

  it('the same key on another ticket is another request → 422', async () => {
    const a = (await post(app, requester, key(), { title: 'a', description: 'd' })).json();
    const b = (await post(app, requester, key(), { title: 'b', description: 'd' })).json();
    const k = key();
    const send = (id: number) =>
      app.inject({
        method: 'POST',
        url: `/api/v1/tickets/${id}/comments`,
        headers: { ...requester.auth, 'idempotency-key': k },
        payload: { body: 'same' },
      });
    expect((await send(a.id)).statusCode).toBe(201);
    expect((await send(b.id)).statusCode).toBe(422);
  });
});
