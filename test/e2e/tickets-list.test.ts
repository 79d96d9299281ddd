import { randomUUID } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApp } from '../helpers/app.js';
import { createUser, type TestUser } from '../helpers/factory.js';

let app: FastifyInstance;
let requester: TestUser;
let requester2: TestUser;
let agent: TestUser;
let agent2: TestUser;
let teamId: string;
const tag = `list-${randomUUID().slice(0, 8)}`;
const N = 23;
let ids: number[] = [];

interface T {
  id: number;
  priority: string;
  updatedAt: string;
  createdAt: string;
}

beforeAll(async () => {
  app = await createTestApp();
  [requester, requester2, agent, agent2] = await Promise.all([
    createUser(app, { role: 'requester' }),
    createUser(app, { role: 'requester' }),
    createUser(app, { role: 'agent' }),
    createUser(app, { role: 'agent' }),
  ]);
  const { rows } = await app.db.$client.query<{ id: string }>(
    'INSERT INTO teams (name) VALUES ($1) RETURNING id',
    [`Team ${tag}`],
  );
  teamId = rows[0]!.id;
  const priorities = ['low', 'normal', 'high', 'urgent'];
  for (let i = 0; i < N; i++) {
    const res = await app.inject({
      method: 'POST',
      url: '/api/v1/tickets',
      headers: agent.auth,
      payload: {
        title: `List ticket ${i}`,
        description: i % 5 === 0 ? 'The quasarfrobnicator is broken' : 'Something else',
        requesterId: i % 2 ? requester.id : requester2.id,
        priority: priorities[i % 4],
        type: i % 3 === 0 ? 'incident' : 'question',
        tags: [tag],
        teamId: i % 4 === 0 ? teamId : null,
      },
    });
    expect(res.statusCode).toBe(201);
    ids.push(res.json().id);
  }
  // Ties on the sort key: the id tie-breaker must still give every row exactly once.
  await app.db.$client.query(
    `UPDATE tickets SET updated_at = '2026-01-01T00:00:00Z', created_at = '2025-12-01T00:00:00Z' WHERE id = ANY($1::int[]) AND id % 3 = 0`,
    [ids],
  );
  ids = ids.sort((a, b) => a - b);
});
afterAll(() => app.close());

async function walk(user: TestUser, query: string, limit = 4): Promise<T[]> {
  const seen: T[] = [];
  let url: string | null = `/api/v1/tickets?tag=${tag}&limit=${limit}${query}`;
  let pages = 0;
  while (url) {
    const res: { statusCode: number; body: string; json(): unknown; headers: Record<string, unknown> } =
      await app.inject({ method: 'GET', url, headers: user.auth });
    expect(res.statusCode, res.body).toBe(200);
    const body = res.json() as { data: T[]; nextCursor: string | null };
    seen.push(...body.data);
    if (body.nextCursor) {
      const link: string = String(res.headers.link);
      expect(link).toMatch(/^<\/api\/v1\/tickets\?.*>; rel="next"$/);
      url = /<([^>]+)>/.exec(link)![1]!;
      expect(new URL(url, 'http://x').searchParams.get('cursor')).toBe(body.nextCursor);
    } else {
      expect(res.headers.link).toBeUndefined();
      url = null;
    }
    if (++pages > 100) throw new Error('pagination does not end');
  }
  return seen;
}

const PRIORITY = { low: 0, normal: 1, high: 2, urgent: 3 } as Record<string, number>;
const cmp = (key: 'updatedAt' | 'createdAt' | 'priority', desc: boolean) => (a: T, b: T) => {
  const va = key === 'priority' ? PRIORITY[a.priority]! : Date.parse(a[key]);
  const vb = key === 'priority' ? PRIORITY[b.priority]! : Date.parse(b[key]);
  const d = va !== vb ? va - vb : a.id - b.id;
  return desc ? -d : d;
};

describe('keyset pagination', () => {
  for (const sort of [
    '-updatedAt',
    'updatedAt',
    'createdAt',
    '-createdAt',
    'priority',
    '-priority',
  ] as const) {
    it(`walks all ${N} tickets exactly once, in order, with sort=${sort}`, async () => {
      const seen = await walk(agent, `&sort=${sort}`);
      expect(seen.map((t) => t.id).sort((a, b) => a - b)).toEqual(ids);
      const key = sort.replace('-', '') as 'updatedAt' | 'createdAt' | 'priority';
      expect(seen).toEqual([...seen].sort(cmp(key, sort.startsWith('-'))));
    });
  }

  it('default sort is -updatedAt, default limit 25', async () => {
    const res = await app.inject({ method: 'GET', url: `/api/v1/tickets?tag=${tag}`, headers: agent.auth });
    const body = res.json();
    expect(body.data).toHaveLength(N);
    expect(body.nextCursor).toBeNull();
    expect(body.data).toEqual([...body.data].sort(cmp('updatedAt', true)));
  });

  it('a tampered, forged or foreign cursor → 422', async () => {
    const first = (
      await app.inject({ method: 'GET', url: `/api/v1/tickets?tag=${tag}&limit=2`, headers: agent.auth })
    ).json();
    const c: string = first.nextCursor;
    const [body, mac] = c.split('.');
    const payload = JSON.parse(Buffer.from(body!, 'base64url').toString());
    const forged = `${Buffer.from(JSON.stringify({ ...payload, i: 1 })).toString('base64url')}.${mac}`;
    const mangled = c.slice(0, -2) + (c.endsWith('AA') ? 'BB' : 'AA');
    for (const cursor of [forged, mangled, 'garbage', `${c}x`]) {
      const res = await app.inject({
        method: 'GET',
        url: `/api/v1/tickets?tag=${tag}&cursor=${encodeURIComponent(cursor)}`,
        headers: agent.auth,
      });
      expect(res.statusCode, cursor).toBe(422);
      expect(res.json().errors[0].path).toBe('querystring.cursor');
    }
    // A cursor of one sort order used with another → 422.
    const other = await app.inject({
      method: 'GET',
      url: `/api/v1/tickets?tag=${tag}&sort=priority&cursor=${encodeURIComponent(c)}`,
      headers: agent.auth,
    });
    expect(other.statusCode).toBe(422);
  });

  it('limit outside 1..100 → 422', async () => {
    for (const limit of [0, 101, -1]) {
      const res = await app.inject({
        method: 'GET',
        url: `/api/v1/tickets?limit=${limit}`,
        headers: agent.auth,
      });
      expect(res.statusCode).toBe(422);
    }
  });
});

describe('filters', () => {
  const list = async (user: TestUser, q: string) => {
    const res = await app.inject({
      method: 'GET',
      url: `/api/v1/tickets?tag=${tag}&limit=100${q}`,
      headers: user.auth,
    });
    expect(res.statusCode, res.body).toBe(200);
    return res.json().data as Array<Record<string, unknown> & { id: number }>;
  };

  it('requester sees only own tickets; requesterId filter for staff', async () => {
    const mine = await list(requester, '');
    expect(mine.length).toBe(Math.floor(N / 2));
    expect(mine.every((t) => (t.requester as { id: string }).id === requester.id)).toBe(true);
    const staff = await list(agent, `&requesterId=${requester2.id}`);
    expect(staff.length).toBe(Math.ceil(N / 2));
  });

  it('status: one value, comma list, repeated parameter', async () => {
    await app.inject({
      method: 'PATCH',
      url: `/api/v1/tickets/${ids[0]}`,
      headers: agent.auth,
      payload: { assigneeId: agent.id },
    });
    await app.inject({
      method: 'PATCH',
      url: `/api/v1/tickets/${ids[1]}`,
      headers: agent.auth,
      payload: { assigneeId: agent.id, status: 'pending' },
    });
    expect((await list(agent, '&status=open')).map((t) => t.id)).toEqual([ids[0]]);
    const both = (await list(agent, '&status=open,pending')).map((t) => t.id).sort((a, b) => a - b);
    expect(both).toEqual([ids[0], ids[1]]);
    expect((await list(agent, '&status=open&status=pending')).length).toBe(2);
  });

  it('rejects unknown enum values and unknown query parameters with 422', async () => {
    for (const q of ['status=bogus', 'priority=extreme', 'sort=title', 'assigneeId=someone', 'colour=red']) {
      const res = await app.inject({ method: 'GET', url: `/api/v1/tickets?${q}`, headers: agent.auth });
      expect(res.statusCode, q).toBe(422);
    }
  });

  it('priority, type, teamId, createdAfter/Before, updatedAfter', async () => {
    expect((await list(agent, '&priority=urgent')).every((t) => t.priority === 'urgent')).toBe(true);
    expect((await list(agent, '&priority=urgent')).length).toBe(5);
    expect((await list(agent, '&type=incident')).length).toBe(Math.ceil(N / 3));
    expect((await list(agent, `&teamId=${teamId}`)).length).toBe(Math.ceil(N / 4));
    const old = await list(agent, '&createdBefore=2025-12-02T00:00:00Z');
    expect(old.length).toBeGreaterThan(0);
    expect(old.every((t) => t.createdAt === '2025-12-01T00:00:00.000Z')).toBe(true);
    const recent = await list(agent, '&createdAfter=2025-12-02T00:00:00Z');
    expect(recent.length + old.length).toBe(N);
    const touched = await list(agent, '&updatedAfter=2026-01-02T00:00:00Z');
    expect(touched.every((t) => Date.parse(String(t.updatedAt)) > Date.parse('2026-01-02T00:00:00Z'))).toBe(
      true,
    );
  });

  it('assigneeId: me, none and a user id', async () => {
    await app.inject({
      method: 'PATCH',
      url: `/api/v1/tickets/${ids[5]}`,
      headers: agent2.auth,
      payload: { assigneeId: agent2.id },
    });
    expect((await list(agent2, '&assigneeId=me')).map((t) => t.id)).toEqual([ids[5]]);
    expect((await list(agent, `&assigneeId=${agent2.id}`)).map((t) => t.id)).toEqual([ids[5]]);
    const none = await list(agent, '&assigneeId=none');
    expect(none.every((t) => t.assignee === null)).toBe(true);
    expect(none.map((t) => t.id)).not.toContain(ids[5]);
  });

  it('q: full-text over title and description, in the default order, combinable with filters', async () => {
    const hits = await list(agent, '&q=quasarfrobnicator');
    expect(hits.length).toBe(Math.ceil(N / 5));
    // A search keeps the contract's default order (-updatedAt, id tie-breaker).
    expect(hits.map((t) => t.id)).toEqual(
      [...(hits as unknown as T[])].sort(cmp('updatedAt', true)).map((t) => t.id),
    );
    const titleHit = await list(agent, `&q=${encodeURIComponent('"List ticket 7"')}`);
    expect(titleHit.map((t) => t.id)).toContain(ids[7]);
    const mine = await list(requester2, '&q=quasarfrobnicator');
    expect(mine.every((t) => (t.requester as { id: string }).id === requester2.id)).toBe(true);
    // Paging through search results works too.
    const walked = await walk(agent, '&q=quasarfrobnicator', 2);
    expect(walked.map((t) => t.id).sort()).toEqual(hits.map((t) => t.id).sort());
  });

  it('sort=relevance ranks matches best first, pages through all of them, and needs q', async () => {
    // Ticket 7 matches the phrase in its title (weight A); the others match in their description (weight B).
    const q = `&q=${encodeURIComponent('quasarfrobnicator or "List ticket 7"')}&sort=relevance`;
    const ranked = await list(agent, q);
    expect(ranked[0]!.id).toBe(ids[7]);
    const walked = await walk(agent, q, 2);
    expect(walked.map((t) => t.id)).toEqual(ranked.map((t) => t.id));
    expect(new Set(walked.map((t) => t.id)).size).toBe(walked.length);

    const res = await app.inject({
      method: 'GET',
      url: '/api/v1/tickets?sort=relevance',
      headers: agent.auth,
    });
    expect(res.statusCode).toBe(422);
    expect(res.json().errors).toEqual([
      { path: 'querystring.sort', message: 'sort=relevance needs a search (q)' },
    ]);
  });
});
