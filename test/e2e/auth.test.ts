import { createHmac, randomUUID } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { JWT_AUDIENCE, JWT_ISSUER } from '../../src/modules/auth/token-signer.js';
import { createTestApp } from '../helpers/app.js';
import { createUser, DEFAULT_PASSWORD } from '../helpers/factory.js';
import { expectProblem } from '../helpers/http.js';
import { auditEvents } from '../helpers/tickets.js';

const STRONG = 'violet tractor sings at dawn';

function uniqueEmail(prefix = 'user') {
  return `${prefix}-${randomUUID().slice(0, 8)}@example.test`;
}

function b64url(v: unknown) {
  return Buffer.from(typeof v === 'string' ? v : JSON.stringify(v)).toString('base64url');
}

/** Hand-made JWT: lets a test forge exactly the header/payload it needs. */
function forgeJwt(header: object, payload: object, secret?: string) {
  const body = `${b64url(header)}.${b64url(payload)}`;
  const sig = secret ? createHmac('sha256', secret).update(body).digest('base64url') : '';
  return `${body}.${sig}`;
}

describe('auth: register, login, tokens', () => {
  let app: FastifyInstance;
  beforeAll(async () => {
    app = await createTestApp({ RATE_LIMIT_MAX: '100000', LOGIN_RATE_LIMIT_PER_ACCOUNT: '1000' });
  });
  afterAll(() => app.close());

  const register = (body: Record<string, unknown>) =>
    app.inject({ method: 'POST', url: '/api/v1/auth/register', payload: body });
  const login = (email: string, password: string, headers: Record<string, string> = {}) =>
    app.inject({ method: 'POST', url: '/api/v1/auth/login', payload: { email, password }, headers });

  it('register creates a requester and never returns the password hash', async () => {
    const email = uniqueEmail('Reg');
    const res = await register({ email, password: STRONG, name: 'Rita Requester' });
    expect(res.statusCode).toBe(201);
    const user = res.json();
    expect(user).toEqual({
      id: expect.any(String),
      email,
      name: 'Rita Requester',
      role: 'requester',
      active: true,
      createdAt: expect.any(String),
    });
    expect(JSON.stringify(user)).not.toMatch(/argon2|hash|password/i);
    const audit = await auditEvents(app, { action: 'user.created', entityId: user.id });
    expect(audit).toHaveLength(1);
    expect(audit[0]!.actor_id).toBe(user.id);
    expect(JSON.stringify(audit[0])).not.toContain(STRONG);
  });

  it('mass-assignment: register with role is refused with 422 and creates nothing', async () => {
    const email = uniqueEmail();
    const res = await register({ email, password: STRONG, name: 'Mallory', role: 'admin' });
    const body = expectProblem(res, 422, 'VALIDATION_FAILED');
    expect(JSON.stringify(body.errors)).toMatch(/role/);
    const after = await login(email, STRONG);
    expect(after.statusCode).toBe(401);
  });

  it('emails are unique case-insensitively (409 EMAIL_TAKEN)', async () => {
    const email = uniqueEmail('dup');
    expect((await register({ email, password: STRONG, name: 'One' })).statusCode).toBe(201);
    expectProblem(
      await register({ email: email.toUpperCase(), password: STRONG, name: 'Two' }),
      409,
      'EMAIL_TAKEN',
    );
  });

  it.each([
    ['too short', 'short pass'],
    ['common', 'password1234'],
    ['common in another case', 'PassWord1234'],
    ['one repeated character', 'aaaaaaaaaaaaaaaa'],
    ['over 256 characters', 'x'.repeat(200) + 'y'.repeat(57)],
    ['11 emoji (22 UTF-16 units, 11 characters)', '🔑🔒🚪🗝🏠🌙🌟🍀🎲🎯🧩'],
  ])('weak password refused with 422 WEAK_PASSWORD: %s', async (_label, password) => {
    const res = await register({ email: uniqueEmail(), password, name: 'Weak' });
    const body = expectProblem(res, 422, 'WEAK_PASSWORD');
    expect(body.errors).toEqual([{ path: 'body.password', message: expect.any(String) }]);
  });

  it('a password equal to the email is refused', async () => {
    const email = uniqueEmail('sameasemail');
    expectProblem(await register({ email, password: email, name: 'Sam' }), 422, 'WEAK_PASSWORD');
  });

  it('any Unicode is accepted, exactly 256 characters is accepted (no truncation)', async () => {
    const unicode = 'Ünïcødé пароль 密码 🔑🔒';
    const email = uniqueEmail('uni');
    expect((await register({ email, password: unicode, name: 'Uni' })).statusCode).toBe(201);
    expect((await login(email, unicode)).statusCode).toBe(200);

    const long = `${'a'.repeat(128)}${'b'.repeat(127)}c`;
    const email2 = uniqueEmail('long');
    expect((await register({ email: email2, password: long, name: 'Long' })).statusCode).toBe(201);
    expect((await login(email2, long)).statusCode).toBe(200);
    // A truncating hasher would accept a prefix or a different tail.
    expect((await login(email2, long.slice(0, 255))).statusCode).toBe(401);
    expect((await login(email2, `${long.slice(0, 255)}d`)).statusCode).toBe(401);
  });

  it('login returns the token pair and the user, and is audited with trace id, ip and user agent', async () => {
    const u = await createUser(app, { role: 'agent' });
    const res = await login(u.email.toUpperCase(), u.password, {
      'x-request-id': 'login-trace-1',
      'user-agent': 'vitest-agent/1.0',
    });
    expect(res.statusCode).toBe(200);
    const body = res.json();
    expect(body).toEqual({
      accessToken: expect.any(String),
      refreshToken: expect.any(String),
      tokenType: 'Bearer',
      expiresIn: 900,
      user: expect.objectContaining({ id: u.id, email: u.email, role: 'agent', active: true }),
    });
    expect(body.user).not.toHaveProperty('passwordHash');
    const me = await app.inject({
      method: 'GET',
      url: '/api/v1/auth/me',
      headers: { authorization: `Bearer ${body.accessToken}` },
    });
    expect(me.statusCode).toBe(200);
    expect(me.json().id).toBe(u.id);

    const [event] = await auditEvents(app, { action: 'auth.login', traceId: 'login-trace-1' });
    expect(event).toMatchObject({
      actor_id: u.id,
      actor_role: 'agent',
      entity_type: 'user',
      entity_id: u.id,
      ip: '127.0.0.1',
      user_agent: 'vitest-agent/1.0',
    });
  });

  it('no user enumeration: unknown email, wrong password and deactivated account get the same answer', async () => {
    const active = await createUser(app);
    const inactive = await createUser(app, { active: false });
    const answers = [
      await login(uniqueEmail('ghost'), 'whatever it is 123'),
      await login(active.email, 'not the password at all'),
      await login(inactive.email, inactive.password),
    ];
    const strip = (r: (typeof answers)[number]) => {
      const { traceId: _t, ...rest } = r.json();
      return { status: r.statusCode, body: rest, www: r.headers['www-authenticate'] };
    };
    for (const r of answers) expectProblem(r, 401, 'INVALID_CREDENTIALS');
    expect(strip(answers[1]!)).toEqual(strip(answers[0]!));
    expect(strip(answers[2]!)).toEqual(strip(answers[0]!));
  });

  it('unknown email costs an argon2 verification too (similar timing to a wrong password)', async () => {
    // Registered through the API so its hash has the server's argon2 parameters, like the dummy one.
    const u = { email: uniqueEmail('timing') };
    expect((await register({ ...u, password: STRONG, name: 'Timing' })).statusCode).toBe(201);
    // Warm the dummy hash and this user's row.
    await login(uniqueEmail('warm'), 'x'.repeat(20));
    await login(u.email, 'y'.repeat(20));
    const time = async (email: string) => {
      const start = performance.now();
      const res = await login(email, 'definitely wrong password');
      expect(res.statusCode).toBe(401);
      return performance.now() - start;
    };
    const unknown: number[] = [];
    const wrong: number[] = [];
    for (let i = 0; i < 5; i++) {
      unknown.push(await time(uniqueEmail('nobody')));
      wrong.push(await time(u.email));
    }
    // Without the dummy hash an unknown email answers in ~2 ms against ~40 ms; the fastest of five
    // of each stays in the same range when both do the same work.
    expect(Math.min(...unknown)).toBeGreaterThan(Math.min(...wrong) * 0.3);
  });

  it('failed logins are audited with the reason and never the password', async () => {
    const u = await createUser(app);
    const secretGuess = `guess-${randomUUID()}`;
    await login(u.email, secretGuess, { 'x-request-id': `failed-${u.id}` });
    const [event] = await auditEvents(app, { action: 'auth.login_failed', traceId: `failed-${u.id}` });
    expect(event).toMatchObject({ entity_id: u.id, actor_id: null, ip: '127.0.0.1' });
    expect(event!.metadata).toMatchObject({ reason: 'wrong_password', email: u.email.toLowerCase() });
    expect(JSON.stringify(event)).not.toContain(secretGuess);
  });

  describe('access tokens', () => {
    let user: Awaited<ReturnType<typeof createUser>>;
    beforeAll(async () => {
      user = await createUser(app);
    });
    const me = (authorization?: string) =>
      app.inject({ method: 'GET', url: '/api/v1/auth/me', headers: authorization ? { authorization } : {} });
    const now = () => Math.floor(Date.now() / 1000);
    const claims = () => ({
      sub: user.id,
      role: user.role,
      typ: 'access',
      iss: JWT_ISSUER,
      aud: JWT_AUDIENCE,
      iat: now(),
      exp: now() + 600,
    });

    it('no token → 401 UNAUTHENTICATED with WWW-Authenticate', async () => {
      const res = await me();
      expectProblem(res, 401, 'UNAUTHENTICATED');
      expect(res.headers['www-authenticate']).toBe('Bearer');
    });

    it('a valid hand-made token is accepted (the forging helper is right)', async () => {
      const token = forgeJwt({ alg: 'HS256', typ: 'JWT' }, claims(), app.config.jwtSecret);
      expect((await me(`Bearer ${token}`)).statusCode).toBe(200);
    });

    it('tampered token (payload changed, signature kept) → 401', async () => {
      const [h, , s] = user.token.split('.');
      const payload = b64url({ ...claims(), role: 'admin' });
      expectProblem(await me(`Bearer ${h}.${payload}.${s}`), 401, 'UNAUTHENTICATED');
    });

    it('tampered signature → 401', async () => {
      const t = user.token;
      const flipped = t.slice(0, -2) + (t.at(-2) === 'A' ? 'B' : 'A') + t.at(-1);
      expectProblem(await me(`Bearer ${flipped}`), 401, 'UNAUTHENTICATED');
    });

    it('alg:none → 401', async () => {
      const token = forgeJwt({ alg: 'none', typ: 'JWT' }, claims());
      expectProblem(await me(`Bearer ${token}`), 401, 'UNAUTHENTICATED');
    });

    it('another algorithm (HS512 with the same secret) → 401', async () => {
      const body = `${b64url({ alg: 'HS512', typ: 'JWT' })}.${b64url(claims())}`;
      const sig = createHmac('sha512', app.config.jwtSecret).update(body).digest('base64url');
      expectProblem(await me(`Bearer ${body}.${sig}`), 401, 'UNAUTHENTICATED');
    });

    it('signed with another secret → 401', async () => {
      const token = forgeJwt({ alg: 'HS256', typ: 'JWT' }, claims(), 'another-secret-of-at-least-32-bytes!!');
      expectProblem(await me(`Bearer ${token}`), 401, 'UNAUTHENTICATED');
    });

    it('wrong issuer or audience → 401', async () => {
      for (const bad of [{ iss: 'someone-else' }, { aud: 'another-api' }]) {
        const token = forgeJwt({ alg: 'HS256', typ: 'JWT' }, { ...claims(), ...bad }, app.config.jwtSecret);
        expectProblem(await me(`Bearer ${token}`), 401, 'UNAUTHENTICATED');
      }
    });

    it('expired token → 401 TOKEN_EXPIRED', async () => {
      const token = forgeJwt(
        { alg: 'HS256', typ: 'JWT' },
        { ...claims(), iat: now() - 2000, exp: now() - 1000 },
        app.config.jwtSecret,
      );
      expectProblem(await me(`Bearer ${token}`), 401, 'TOKEN_EXPIRED');
    });

    it('a refresh token is never accepted as an access token', async () => {
      const pair = (await login(user.email, user.password)).json();
      expectProblem(await me(`Bearer ${pair.refreshToken}`), 401, 'UNAUTHENTICATED');
      // Nor a correctly signed JWT of another kind.
      const token = forgeJwt(
        { alg: 'HS256', typ: 'JWT' },
        { ...claims(), typ: 'refresh' },
        app.config.jwtSecret,
      );
      expectProblem(await me(`Bearer ${token}`), 401, 'UNAUTHENTICATED');
    });
  });

  describe('refresh and logout', () => {
    const refresh = (refreshToken: string) =>
      app.inject({ method: 'POST', url: '/api/v1/auth/refresh', payload: { refreshToken } });

    it('refresh rotates: a new pair, and the new access token works', async () => {
      const u = await createUser(app);
      const first = (await login(u.email, u.password)).json();
      const res = await refresh(first.refreshToken);
      expect(res.statusCode).toBe(200);
      const second = res.json();
      expect(second.refreshToken).not.toBe(first.refreshToken);
      expect(second).toMatchObject({ tokenType: 'Bearer', expiresIn: 900, user: { id: u.id } });
      const me = await app.inject({
        method: 'GET',
        url: '/api/v1/auth/me',
        headers: { authorization: `Bearer ${second.accessToken}` },
      });
      expect(me.statusCode).toBe(200);
      // Only hashes are stored.
      const { rows } = await app.db.$client.query(
        'SELECT token_hash FROM refresh_tokens WHERE user_id = $1',
        [u.id],
      );
      expect(rows).toHaveLength(2);
      for (const r of rows) {
        expect(r.token_hash).toMatch(/^[0-9a-f]{64}$/);
        expect([first.refreshToken, second.refreshToken]).not.toContain(r.token_hash);
      }
    });

    it('re-use of a rotated refresh token revokes the whole family (401) and is audited', async () => {
      const u = await createUser(app);
      const first = (await login(u.email, u.password)).json();
      const second = (await refresh(first.refreshToken)).json();
      const reuse = await app.inject({
        method: 'POST',
        url: '/api/v1/auth/refresh',
        payload: { refreshToken: first.refreshToken },
        headers: { 'x-request-id': `reuse-${u.id}` },
      });
      expectProblem(reuse, 401, 'UNAUTHENTICATED');
      // The legitimate-looking newest token of the family is dead too.
      expectProblem(await refresh(second.refreshToken), 401, 'UNAUTHENTICATED');
      const [event] = await auditEvents(app, {
        action: 'auth.refresh_reuse_detected',
        traceId: `reuse-${u.id}`,
      });
      expect(event).toMatchObject({ entity_type: 'user', entity_id: u.id, actor_id: u.id, ip: '127.0.0.1' });
      expect(event!.metadata).toMatchObject({ revokedTokens: 2 });
      // Another session (another login) of the same user is not affected.
      const other = (await login(u.email, u.password)).json();
      expect((await refresh(other.refreshToken)).statusCode).toBe(200);
    });

    it('unknown or malformed refresh token → 401', async () => {
      expectProblem(await refresh('hdr_not-a-real-token'), 401, 'UNAUTHENTICATED');
      expectProblem(await refresh(user0AccessTokenLike()), 401, 'UNAUTHENTICATED');
    });

    function user0AccessTokenLike() {
      return forgeJwt(
        { alg: 'HS256', typ: 'JWT' },
        { sub: randomUUID(), typ: 'access' },
        app.config.jwtSecret,
      );
    }

    it('logout revokes the session: 204, then the refresh token is refused; audited', async () => {
      const u = await createUser(app);
      const pair = (await login(u.email, u.password)).json();
      const res = await app.inject({
        method: 'POST',
        url: '/api/v1/auth/logout',
        headers: { authorization: `Bearer ${pair.accessToken}`, 'x-request-id': `logout-${u.id}` },
        payload: { refreshToken: pair.refreshToken },
      });
      expect(res.statusCode).toBe(204);
      expect(res.body).toBe('');
      expectProblem(await refresh(pair.refreshToken), 401, 'UNAUTHENTICATED');
      const [event] = await auditEvents(app, { action: 'auth.logout', traceId: `logout-${u.id}` });
      expect(event).toMatchObject({ actor_id: u.id, entity_id: u.id });
      expect(event!.metadata).toMatchObject({ revokedTokens: 1 });
    });

    it('logout needs an access token, and cannot revoke another user’s session', async () => {
      const a = await createUser(app);
      const b = await createUser(app);
      const pairB = (await login(b.email, b.password)).json();
      expectProblem(
        await app.inject({
          method: 'POST',
          url: '/api/v1/auth/logout',
          payload: { refreshToken: pairB.refreshToken },
        }),
        401,
        'UNAUTHENTICATED',
      );
      const res = await app.inject({
        method: 'POST',
        url: '/api/v1/auth/logout',
        headers: a.auth,
        payload: { refreshToken: pairB.refreshToken },
      });
      expect(res.statusCode).toBe(204);
      expect((await refresh(pairB.refreshToken)).statusCode).toBe(200);
    });
  });

  describe('own profile (GET/PATCH /auth/me)', () => {
    const patchMe = (auth: { authorization: string }, payload: Record<string, unknown>, headers = {}) =>
      app.inject({ method: 'PATCH', url: '/api/v1/auth/me', headers: { ...auth, ...headers }, payload });

    it('every role reads and renames itself', async () => {
      for (const role of ['requester', 'agent', 'admin'] as const) {
        const u = await createUser(app, { role });
        const get = await app.inject({ method: 'GET', url: '/api/v1/auth/me', headers: u.auth });
        expect(get.json()).toMatchObject({ id: u.id, role, email: u.email });
        const res = await patchMe(u.auth, { name: `Renamed ${role}` });
        expect(res.statusCode).toBe(200);
        expect(res.json()).toMatchObject({ id: u.id, name: `Renamed ${role}`, role });
        const [event] = await auditEvents(app, { action: 'user.updated', entityId: u.id });
        expect(event!.changes).toEqual({ name: [u.name, `Renamed ${role}`] });
      }
    });

    it('role and active cannot be set on yourself (422, nothing changes)', async () => {
      const u = await createUser(app);
      expectProblem(await patchMe(u.auth, { role: 'admin' }), 422, 'VALIDATION_FAILED');
      expectProblem(await patchMe(u.auth, { name: 'X', active: true }), 422, 'VALIDATION_FAILED');
      const me = await app.inject({ method: 'GET', url: '/api/v1/auth/me', headers: u.auth });
      expect(me.json()).toMatchObject({ role: 'requester', name: u.name });
    });

    it('password change needs the current password (422 without, 401 when wrong) and a strong new one', async () => {
      const u = await createUser(app);
      expectProblem(await patchMe(u.auth, { newPassword: STRONG }), 422, 'VALIDATION_FAILED');
      expectProblem(
        await patchMe(u.auth, { currentPassword: 'wrong wrong wrong', newPassword: STRONG }),
        401,
        'INVALID_CREDENTIALS',
      );
      expectProblem(
        await patchMe(u.auth, { currentPassword: u.password, newPassword: 'qwerty123456' }),
        422,
        'WEAK_PASSWORD',
      );
      expect((await login(u.email, u.password)).statusCode).toBe(200);
    });

    it('password change revokes every refresh token, is audited, and the new password works', async () => {
      const u = await createUser(app);
      const s1 = (await login(u.email, u.password)).json();
      const s2 = (await login(u.email, u.password)).json();
      const res = await patchMe(
        { authorization: `Bearer ${s1.accessToken}` },
        { currentPassword: u.password, newPassword: STRONG },
        { 'x-request-id': `pwchange-${u.id}` },
      );
      expect(res.statusCode).toBe(200);
      for (const s of [s1, s2]) {
        const r = await app.inject({
          method: 'POST',
          url: '/api/v1/auth/refresh',
          payload: { refreshToken: s.refreshToken },
        });
        expectProblem(r, 401, 'UNAUTHENTICATED');
      }
      expectProblem(await login(u.email, u.password), 401, 'INVALID_CREDENTIALS');
      expect((await login(u.email, STRONG)).statusCode).toBe(200);
      const [event] = await auditEvents(app, {
        action: 'user.password_changed',
        traceId: `pwchange-${u.id}`,
      });
      expect(event).toMatchObject({ actor_id: u.id, entity_id: u.id, ip: '127.0.0.1' });
      expect(event!.metadata).toMatchObject({ revokedRefreshTokens: 2 });
      expect(JSON.stringify(event)).not.toContain(STRONG);
      expect(JSON.stringify(event)).not.toContain(DEFAULT_PASSWORD);
    });
  });
});

describe('auth: sign-up switch', () => {
  let app: FastifyInstance;
  beforeAll(async () => {
    app = await createTestApp({ ALLOW_SIGNUP: 'false' });
  });
  afterAll(() => app.close());

  it('ALLOW_SIGNUP=false → 403 SIGNUP_DISABLED, whatever the body', async () => {
    for (const payload of [{ email: uniqueEmail(), password: STRONG, name: 'No' }, { junk: true }]) {
      const res = await app.inject({ method: 'POST', url: '/api/v1/auth/register', payload });
      expectProblem(res, 403, 'SIGNUP_DISABLED');
    }
  });
});

describe('auth: refresh token lifetime', () => {
  // A clock the test moves forward: the refresh family's absolute expiry is decided by the server clock.
  let offsetMs = 0;
  const clock = { now: () => new Date(Date.now() + offsetMs) };
  let app: FastifyInstance;
  beforeAll(async () => {
    app = await createTestApp({ REFRESH_TOKEN_TTL: '600', RATE_LIMIT_MAX: '100000' }, { clock });
  });
  afterAll(() => app.close());

  const refresh = (refreshToken: string) =>
    app.inject({ method: 'POST', url: '/api/v1/auth/refresh', payload: { refreshToken } });

  it('rotation does not extend the session: the family expires REFRESH_TOKEN_TTL after login (401 TOKEN_EXPIRED)', async () => {
    offsetMs = 0;
    const u = await createUser(app);
    const first = (
      await app.inject({
        method: 'POST',
        url: '/api/v1/auth/login',
        payload: { email: u.email, password: u.password },
      })
    ).json();
    offsetMs = 400_000; // 400 s later: still inside the 600 s session
    const second = await refresh(first.refreshToken);
    expect(second.statusCode).toBe(200);
    offsetMs = 601_000; // past login + 600 s, although the second token is only 201 s old
    expectProblem(await refresh(second.json().refreshToken), 401, 'TOKEN_EXPIRED');
  });
});
