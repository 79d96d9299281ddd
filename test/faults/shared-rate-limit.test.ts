import { randomBytes, randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { arrangeUser, FaultDatabase, report, type ServerProcess, startServer } from './harness.js';

const REDIS_URL = 'redis://127.0.0.1:6379';
const BUDGET = 30;
const LOGIN_BUDGET = 5;

interface Hit {
  instance: 'A' | 'B';
  status: number;
  remaining: string | null;
  limit: string | null;
  retryAfter: string | null;
}

async function hit(instance: 'A' | 'B', base: string, path: string, init: RequestInit = {}): Promise<Hit> {
  const res = await fetch(`${base}${path}`, { ...init, signal: AbortSignal.timeout(10_000) });
  await res.arrayBuffer();
  return {
    instance,
    status: res.status,
    remaining: res.headers.get('ratelimit-remaining'),
    limit: res.headers.get('ratelimit-limit'),
    retryAfter: res.headers.get('retry-after'),
  };
}

describe('two instances on one database and one Redis', () => {
  const prefix = `helpdesk-fault:${randomUUID()}:`;
  let db: FaultDatabase;
  let a: ServerProcess;
  let b: ServerProcess;
  let redis: Redis;
  const secret = randomBytes(32).toString('hex');

  beforeAll(async () => {
    redis = new Redis(REDIS_URL, { lazyConnect: true, connectTimeout: 2000, maxRetriesPerRequest: 1 });
    await redis.connect();
    db = await FaultDatabase.create();
    const env = {
      DATABASE_URL: db.url,
      JWT_SECRET: secret,
      REDIS_URL,
      REDIS_KEY_PREFIX: prefix,
      RATE_LIMIT_MAX: String(BUDGET),
      LOGIN_RATE_LIMIT_PER_IP: String(LOGIN_BUDGET),
      DATA_DIR: db.dir,
    };
    [a, b] = await Promise.all([startServer(env), startServer(env)]);
  });

  afterAll(async () => {
    await Promise.all([a?.kill(), b?.kill()]);
    await db?.destroy();
    if (redis) {
      const keys = await redis.keys(`${prefix}*`);
      if (keys.length) await redis.del(...keys);
      redis.disconnect();
    }
  });

  it('share one per-user budget: BUDGET answers in total across both, then 429 from either', async () => {
    const user = await arrangeUser(db, secret);
    const other = await arrangeUser(db, secret);
    const hits: Hit[] = [];
    for (let i = 0; i < BUDGET + 6; i++) {
      const [name, srv] = i % 2 === 0 ? (['A', a] as const) : (['B', b] as const);
      hits.push(
        await hit(name, srv.url, '/api/v1/tickets', { headers: { authorization: user.authorization } }),
      );
    }
    const ok = hits.filter((h) => h.status === 200);
    const limited = hits.filter((h) => h.status === 429);
    const otherUser = await hit('B', b.url, '/api/v1/tickets', {
      headers: { authorization: other.authorization },
    });
    const keysInRedis = (await redis.keys(`${prefix}*`)).length;

    report('Two instances, one Redis: per-user budget', {
      'requests sent (alternating A/B)': hits.length,
      'budget (RATE_LIMIT_MAX)': BUDGET,
      '200 total': `${ok.length} (A ${ok.filter((h) => h.instance === 'A').length}, B ${ok.filter((h) => h.instance === 'B').length})`,
      '429 total': `${limited.length} (A ${limited.filter((h) => h.instance === 'A').length}, B ${limited.filter((h) => h.instance === 'B').length})`,
      'RateLimit-Remaining sequence': hits.map((h) => `${h.instance}${h.remaining}`).join(' '),
      'another user meanwhile': otherUser.status,
      'rate-limit keys in Redis': keysInRedis,
    });

    // Alone, each instance would have allowed BUDGET; together they allowed BUDGET.
    expect(ok.length).toBe(BUDGET);
    expect(hits.slice(0, BUDGET).every((h) => h.status === 200)).toBe(true);
    expect(hits.slice(BUDGET).every((h) => h.status === 429)).toBe(true);
    expect(new Set(limited.map((h) => h.instance))).toEqual(new Set(['A', 'B']));
    // The remaining count falls by one per request whichever instance answered.
    expect(ok.map((h) => Number(h.remaining))).toEqual(
      Array.from({ length: BUDGET }, (_, i) => BUDGET - 1 - i),
    );
    for (const h of limited) {
      expect(h.limit).toBe(String(BUDGET));
      expect(Number(h.retryAfter)).toBeGreaterThan(0);
    }
    expect(otherUser.status).toBe(200);
    expect(keysInRedis).toBeGreaterThan(0);
  });

  it('share the per-IP login budget across instances', async () => {
    const hits: Hit[] = [];
    for (let i = 0; i < LOGIN_BUDGET + 2; i++) {
      const [name, srv] = i % 2 === 0 ? (['A', a] as const) : (['B', b] as const);
      hits.push(
        await hit(name, srv.url, '/api/v1/auth/login', {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          // A different unknown account each time: only the per-IP limit can bite.
          body: JSON.stringify({
            email: `nobody-${randomUUID()}@example.test`,
            password: 'not the password 1',
          }),
        }),
      );
    }
    report('Two instances, one Redis: per-IP login budget', {
      'login attempts (alternating A/B)': hits.length,
      'budget (LOGIN_RATE_LIMIT_PER_IP)': LOGIN_BUDGET,
      statuses: hits.map((h) => `${h.instance}${h.status}`).join(' '),
    });
    expect(hits.slice(0, LOGIN_BUDGET).every((h) => h.status === 401)).toBe(true);
    expect(hits.slice(LOGIN_BUDGET).every((h) => h.status === 429)).toBe(true);
  });
});
