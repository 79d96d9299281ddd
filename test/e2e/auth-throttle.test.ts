import { randomUUID } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApp } from '../helpers/app.js';
import { createUser } from '../helpers/factory.js';

const login = (app: FastifyInstance, email: string, password: string, remoteAddress = '127.0.0.1') =>
  app.inject({ method: 'POST', url: '/api/v1/auth/login', payload: { email, password }, remoteAddress });

function expect429(res: { statusCode: number; headers: Record<string, unknown>; json(): unknown }) {
  expect(res.statusCode).toBe(429);
  expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
  expect(res.json()).toMatchObject({ status: 429, code: 'RATE_LIMITED' });
  const retryAfter = Number(res.headers['retry-after']);
  expect(retryAfter).toBeGreaterThanOrEqual(1);
  expect(retryAfter).toBeLessThanOrEqual(15 * 60);
  return retryAfter;
}

describe('login throttling per account', () => {
  let app: FastifyInstance;
  beforeAll(async () => {
    app = await createTestApp({ LOGIN_RATE_LIMIT_PER_ACCOUNT: '3', RATE_LIMIT_MAX: '100000' });
  });
  afterAll(() => app.close());

  it('after 3 failed logins the account is throttled (429 + Retry-After), whatever the email case or IP', async () => {
    const u = await createUser(app);
    const variants = [u.email, u.email.toUpperCase(), ` ${u.email.replace(/^./, (c) => c.toUpperCase())} `];
    for (const [i, email] of variants.entries()) {
      const res = await login(app, email, `wrong password ${i}`, `10.1.0.${i + 1}`);
      expect(res.statusCode).toBe(401);
    }
    // Even the right password, in yet another case and from another IP, is refused for now.
    expect429(await login(app, u.email.toUpperCase(), u.password, '10.1.0.9'));
    expect429(await login(app, u.email, u.password));
    const { rows } = await app.db.$client.query(
      "SELECT metadata FROM audit_events WHERE action = 'auth.login_failed' AND entity_id = $1 ORDER BY seq",
      [u.id],
    );
    expect(rows.map((r) => r.metadata.reason)).toEqual([
      'wrong_password',
      'wrong_password',
      'wrong_password',
      'rate_limited',
      'rate_limited',
    ]);
  });

  it('other accounts are not affected', async () => {
    const a = await createUser(app);
    const b = await createUser(app);
    for (let i = 0; i < 3; i++) await login(app, a.email, 'nope nope nope');
    expect429(await login(app, a.email, a.password));
    expect((await login(app, b.email, b.password)).statusCode).toBe(200);
  });

  it('a successful login does not count as a failure', async () => {
    const u = await createUser(app);
    for (let i = 0; i < 5; i++) expect((await login(app, u.email, u.password)).statusCode).toBe(200);
    expect((await login(app, u.email, 'wrong once')).statusCode).toBe(401);
    expect((await login(app, u.email, u.password)).statusCode).toBe(200);
  });

  it('unknown emails are throttled the same way (no enumeration through the throttle)', async () => {
    const ghost = `ghost-${randomUUID().slice(0, 8)}@example.test`;
    for (let i = 0; i < 3; i++) expect((await login(app, ghost, 'whatever it is')).statusCode).toBe(401);
    expect429(await login(app, ghost.toUpperCase(), 'whatever it is'));
  });

  it('concurrent guesses cannot overshoot the limit', async () => {
    const u = await createUser(app);
    const results = await Promise.all(
      Array.from({ length: 8 }, (_, i) => login(app, u.email, `parallel guess ${i}`)),
    );
    const failed = results.filter((r) => r.statusCode === 401).length;
    expect(failed).toBeLessThanOrEqual(3);
    expect(results.filter((r) => r.statusCode === 429).length).toBe(8 - failed);
  });

  it('wrong current passwords on PATCH /auth/me count against the same throttle', async () => {
    const u = await createUser(app);
    for (let i = 0; i < 3; i++) {
      const res = await app.inject({
        method: 'PATCH',
        url: '/api/v1/auth/me',
        headers: u.auth,
        payload: { currentPassword: `bad guess ${i}`, newPassword: 'a brand new passphrase' },
      });
      expect(res.statusCode).toBe(401);
    }
    expect429(await login(app, u.email, u.password));
  });
});

describe('login throttling per IP', () => {
  let app: FastifyInstance;
  beforeAll(async () => {
    app = await createTestApp({ LOGIN_RATE_LIMIT_PER_IP: '4', LOGIN_RATE_LIMIT_PER_ACCOUNT: '1000' });
  });
  afterAll(() => app.close());

  it('the 5th login attempt from one IP within 15 min is refused with 429, other IPs go on', async () => {
    const u = await createUser(app);
    for (let i = 0; i < 4; i++) {
      const email = `spray-${i}-${randomUUID().slice(0, 6)}@example.test`;
      const res = await login(app, email, 'password spraying', '10.2.0.1');
      expect(res.statusCode).toBe(401);
      expect(res.headers['ratelimit-limit']).toBe('4');
      expect(res.headers['ratelimit-remaining']).toBe(String(3 - i));
    }
    const blocked = await login(app, u.email, u.password, '10.2.0.1');
    const retryAfter = expect429(blocked);
    expect(retryAfter).toBeGreaterThan(60); // the 15-minute window, not the 1-minute global one
    expect((await login(app, u.email, u.password, '10.2.0.2')).statusCode).toBe(200);
  });
});
