import { randomBytes } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApp } from '../helpers/app.js';
import { createUser, type TestUser } from '../helpers/factory.js';
import { expectProblem } from '../helpers/http.js';

const NEW_PASSWORD = 'violet tractor sings at dawn';
// Generous budgets: these tests hammer /auth/refresh from one address on purpose.
const ENV = { RATE_LIMIT_MAX: '1000000', LOGIN_RATE_LIMIT_PER_IP: '1000000' };

interface Pair {
  accessToken: string;
  refreshToken: string;
}

function client(app: FastifyInstance) {
  return {
    login: async (u: TestUser, password = u.password): Promise<Pair> => {
      const res = await app.inject({
        method: 'POST',
        url: '/api/v1/auth/login',
        payload: { email: u.email, password },
      });
      expect(res.statusCode).toBe(200);
      return res.json();
    },
    refresh: (refreshToken: string) =>
      app.inject({ method: 'POST', url: '/api/v1/auth/refresh', payload: { refreshToken } }),
    me: (accessToken: string) =>
      app.inject({
        method: 'GET',
        url: '/api/v1/auth/me',
        headers: { authorization: `Bearer ${accessToken}` },
      }),
    logout: (accessToken: string, refreshToken: string) =>
      app.inject({
        method: 'POST',
        url: '/api/v1/auth/logout',
        headers: { authorization: `Bearer ${accessToken}` },
        payload: { refreshToken },
      }),
    changePassword: (accessToken: string, currentPassword: string) =>
      app.inject({
        method: 'PATCH',
        url: '/api/v1/auth/me',
        headers: { authorization: `Bearer ${accessToken}` },
        payload: { currentPassword, newPassword: NEW_PASSWORD },
      }),
  };
}

describe('a refresh racing a revocation never survives it', () => {
  let app: FastifyInstance;
  let api: ReturnType<typeof client>;
  beforeAll(async () => {
    app = await createTestApp(ENV);
    api = client(app);
  });
  afterAll(() => app.close());

  /**
   * One round: an attacker holding the session's refresh token rotates it in a tight loop while the
   * victim's revocation runs. The loop goes on until the revocation has returned and a refresh is
   * refused (bounded). Afterwards every token the attacker ever obtained must be dead.
   */
  async function round(revoke: (victim: Pair, stolen: string) => Promise<number>): Promise<boolean> {
    const user = await createUser(app);
    const victim = await api.login(user);
    const obtained: Pair[] = [];
    let current = victim.refreshToken;
    let revoked = false;
    const attacker = (async () => {
      for (let afterRevocation = 0; afterRevocation < 3; ) {
        const res = await api.refresh(current);
        if (revoked) afterRevocation++;
        if (res.statusCode !== 200) {
          if (revoked) break;
          continue; // lost a rotation race against itself: keep the newest token it has
        }
        const pair = res.json() as Pair;
        obtained.push(pair);
        current = pair.refreshToken;
      }
    })();
    // Let the attacker's first rotation start, then revoke while it keeps rotating.
    await Promise.resolve();
    const status = await revoke(victim, victim.refreshToken);
    revoked = true;
    await attacker;
    expect([204, 200, 401]).toContain(status);

    let survived = false;
    for (const pair of [victim, ...obtained]) {
      if ((await api.me(pair.accessToken)).statusCode !== 401) survived = true;
    }
    if ((await api.refresh(current)).statusCode !== 401) survived = true;
    return survived;
  }

  const ROUNDS = 8;
  const TIMEOUT = 120_000; // each round signs in with argon2; a busy CI box needs the room

  it(
    `logout: 0/${ROUNDS} rounds leave a working token`,
    async () => {
      let survivors = 0;
      for (let i = 0; i < ROUNDS; i++) {
        if (await round(async (v, rt) => (await api.logout(v.accessToken, rt)).statusCode)) survivors++;
      }
      expect(survivors).toBe(0);
    },
    TIMEOUT,
  );

  it(
    `password change: 0/${ROUNDS} rounds leave a working token`,
    async () => {
      let survivors = 0;
      for (let i = 0; i < ROUNDS; i++) {
        const survived = await round(async (v) => {
          const res = await api.changePassword(v.accessToken, 'correct horse battery staple');
          expect(res.statusCode).toBe(200);
          return res.statusCode;
        });
        if (survived) survivors++;
      }
      expect(survivors).toBe(0);
    },
    TIMEOUT,
  );

  it(
    `reuse detection: 0/${ROUNDS} rounds leave a working token`,
    async () => {
      let survivors = 0;
      for (let i = 0; i < ROUNDS; i++) {
        // The victim presents the original refresh token, which the attacker has already rotated (or is
        // rotating right now): reuse (or a lost race) → the whole session is revoked.
        if (await round(async (_v, rt) => (await api.refresh(rt)).statusCode)) survivors++;
      }
      expect(survivors).toBe(0);
    },
    TIMEOUT,
  );
});

describe('a sign-in racing a password change', () => {
  let app: FastifyInstance;
  beforeAll(async () => {
    app = await createTestApp(ENV);
  });
  afterAll(() => app.close());

  it('a login that verified the old password before the change committed gets no session', async () => {
    const u = await createUser(app);
    const pool = app.db.$client;
    // The password change, held open: new hash written and all sessions ended, not yet committed.
    const change = await pool.connect();
    try {
      await change.query('BEGIN');
      await change.query("UPDATE users SET password_hash = 'changed' WHERE id = $1", [u.id]);
      await change.query('UPDATE sessions SET revoked_at = now() WHERE user_id = $1 AND revoked_at IS NULL', [
        u.id,
      ]);
      // The login reads the committed (old) hash, verifies it, then needs the user row.
      const login = app.inject({
        method: 'POST',
        url: '/api/v1/auth/login',
        payload: { email: u.email, password: u.password },
      });
      // Wait (bounded) until the login's transaction is blocked on the user row, then commit the change.
      let waiting = 0;
      for (let i = 0; i < 200 && waiting === 0; i++) {
        const { rows } = await pool.query(
          `SELECT count(*)::int AS n FROM pg_stat_activity
            WHERE wait_event_type = 'Lock' AND query ILIKE '%from "users"%for update%'`,
        );
        waiting = rows[0].n;
        if (waiting === 0) await new Promise((r) => setTimeout(r, 25));
      }
      expect(waiting).toBeGreaterThan(0);
      await change.query('COMMIT');
      expectProblem(await login, 401, 'INVALID_CREDENTIALS');
    } finally {
      change.release();
    }
    const { rows } = await pool.query(
      'SELECT count(*)::int AS n FROM sessions WHERE user_id = $1 AND revoked_at IS NULL',
      [u.id],
    );
    expect(rows[0].n).toBe(0);
  });
});

describe('access tokens die with their session', () => {
  let a: FastifyInstance;
  let b: FastifyInstance;
  let api: ReturnType<typeof client>;
  beforeAll(async () => {
    // Two instances on one database: revocation on one must reach the other within 5 s.
    const JWT_SECRET = randomBytes(32).toString('hex');
    a = await createTestApp({ ...ENV, JWT_SECRET });
    b = await createTestApp({ ...ENV, JWT_SECRET });
    api = client(a);
  });
  afterAll(async () => {
    await a.close();
    await b.close();
  });

  it('logout: that session’s access token → 401 at once; the user’s other sessions keep working', async () => {
    const u = await createUser(a);
    const one = await api.login(u);
    const two = await api.login(u);
    expect((await api.me(one.accessToken)).statusCode).toBe(200);
    expect((await api.logout(one.accessToken, one.refreshToken)).statusCode).toBe(204);
    expectProblem(await api.me(one.accessToken), 401, 'UNAUTHENTICATED');
    expect((await api.me(two.accessToken)).statusCode).toBe(200);
  });

  it('a fresh login right after logout works (no same-second confusion)', async () => {
    const u = await createUser(a);
    for (let i = 0; i < 3; i++) {
      const pair = await api.login(u);
      expect((await api.me(pair.accessToken)).statusCode).toBe(200);
      expect((await api.logout(pair.accessToken, pair.refreshToken)).statusCode).toBe(204);
      const next = await api.login(u);
      expect((await api.me(next.accessToken)).statusCode).toBe(200);
      expectProblem(await api.me(pair.accessToken), 401, 'UNAUTHENTICATED');
    }
  });

  it('password change: every access token of the user → 401 at once, then the new login works', async () => {
    const u = await createUser(a);
    const one = await api.login(u);
    const two = await api.login(u);
    expect((await api.changePassword(one.accessToken, u.password)).statusCode).toBe(200);
    for (const t of [one.accessToken, two.accessToken, u.token]) {
      expectProblem(await api.me(t), 401, 'UNAUTHENTICATED');
    }
    const fresh = await api.login(u, NEW_PASSWORD);
    expect((await api.me(fresh.accessToken)).statusCode).toBe(200);
  });

  it('reuse detection: every access token of the family → 401 at once', async () => {
    const u = await createUser(a);
    const first = await api.login(u);
    const second = (await api.refresh(first.refreshToken)).json() as Pair;
    expect((await api.me(second.accessToken)).statusCode).toBe(200);
    expectProblem(await api.refresh(first.refreshToken), 401, 'UNAUTHENTICATED'); // reuse
    for (const t of [first.accessToken, second.accessToken]) {
      expectProblem(await api.me(t), 401, 'UNAUTHENTICATED');
    }
  });

  it('another instance that had the session cached refuses its access token within 5 s', async () => {
    const u = await createUser(a);
    const pair = await api.login(u);
    const onB = () => client(b).me(pair.accessToken);
    expect((await onB()).statusCode).toBe(200); // cached on b
    const loggedOutAt = Date.now();
    expect((await api.logout(pair.accessToken, pair.refreshToken)).statusCode).toBe(204);
    // Poll b until it refuses; the contract's bound is 5 s.
    let status = 200;
    while (status === 200 && Date.now() - loggedOutAt < 6000) {
      status = (await onB()).statusCode;
      if (status === 200) await new Promise((r) => setTimeout(r, 100));
    }
    expect(status).toBe(401);
    expect(Date.now() - loggedOutAt).toBeLessThan(5000);
  });
});
