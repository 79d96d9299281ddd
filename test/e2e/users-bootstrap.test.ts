import { randomBytes, randomUUID } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { runMigrations } from '../../src/db/migrate.js';
import { createTestApp } from '../helpers/app.js';
import { createUser } from '../helpers/factory.js';

const PASSWORD = 'a sturdy admin passphrase';

function logger() {
  const lines: string[] = [];
  return {
    lines,
    info: (m: string) => lines.push(`info ${m}`),
    error: (m: string) => lines.push(`error ${m}`),
  };
}

// The start-up rule needs a database without any admin: a private one, created and dropped here.
describe('admin bootstrap on an empty database (ADMIN_EMAIL / ADMIN_PASSWORD)', () => {
  const name = `helpdesk_boot_${randomBytes(4).toString('hex')}`;
  let url: string;
  let app: FastifyInstance;

  beforeAll(async () => {
    const admin = new pg.Client({ connectionString: inject('databaseUrl') });
    await admin.connect();
    await admin.query(`CREATE DATABASE ${name}`);
    await admin.end();
    const u = new URL(inject('databaseUrl'));
    u.pathname = `/${name}`;
    url = u.toString();
    await runMigrations(url);
    app = await createTestApp({ DATABASE_URL: url, RATE_LIMIT_MAX: '100000' });
  });
  afterAll(async () => {
    await app?.close();
    const admin = new pg.Client({ connectionString: inject('databaseUrl') });
    await admin.connect();
    await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    await admin.end();
  });

  it('creates the admin once; a second start (or instance) leaves it alone', async () => {
    const log = logger();
    const config = { admin: { email: 'Boss@Example.test', password: PASSWORD }, passwordMinLength: 12 };
    const { adminAccounts } = app.services; // PASSWORD_MIN_LENGTH: 12
    await Promise.all([
      adminAccounts.bootstrap(config.admin, log),
      adminAccounts.bootstrap(config.admin, log),
    ]);
    const { rows } = await app.db.$client.query("SELECT email, role, active FROM users WHERE role = 'admin'");
    expect(rows).toEqual([{ email: 'Boss@Example.test', role: 'admin', active: true }]);
    expect(log.lines.filter((l) => l.startsWith('info'))).toHaveLength(1);
    await adminAccounts.bootstrap({ email: 'other@example.test', password: PASSWORD }, log);
    const again = await app.db.$client.query("SELECT count(*)::int AS n FROM users WHERE role = 'admin'");
    expect(again.rows[0].n).toBe(1);

    const login = await app.inject({
      method: 'POST',
      url: '/api/v1/auth/login',
      payload: { email: 'boss@example.test', password: PASSWORD },
    });
    expect(login.statusCode).toBe(200);
    expect(login.json().user.role).toBe('admin');
    const audit = await app.db.$client.query(
      "SELECT actor_id, metadata FROM audit_events WHERE action = 'user.created' AND entity_id = $1",
      [login.json().user.id],
    );
    expect(audit.rows).toEqual([{ actor_id: null, metadata: { source: 'bootstrap' } }]);
  });

  it('the last active admin cannot demote or deactivate themself (409 LAST_ADMIN)', async () => {
    const pair = (
      await app.inject({
        method: 'POST',
        url: '/api/v1/auth/login',
        payload: { email: 'boss@example.test', password: PASSWORD },
      })
    ).json();
    const auth = { authorization: `Bearer ${pair.accessToken}` };
    for (const payload of [{ role: 'agent' }, { active: false }]) {
      const res = await app.inject({
        method: 'PATCH',
        url: `/api/v1/users/${pair.user.id}`,
        headers: auth,
        payload,
      });
      expect(res.statusCode).toBe(409);
      expect(res.json().code).toBe('LAST_ADMIN');
    }
    // With a second admin it is allowed.
    const second = await createUser(app, { role: 'admin' });
    const res = await app.inject({
      method: 'PATCH',
      url: `/api/v1/users/${pair.user.id}`,
      headers: second.auth,
      payload: { role: 'agent' },
    });
    expect(res.statusCode).toBe(200);
  });

  it('never promotes an existing account that holds ADMIN_EMAIL', async () => {
    await app.db.$client.query("UPDATE users SET active = false WHERE role = 'admin'");
    const squatter = await createUser(app, { role: 'requester' });
    const log = logger();
    await app.services.adminAccounts.bootstrap(
      { email: squatter.email.toUpperCase(), password: PASSWORD },
      log,
    );
    const { rows } = await app.db.$client.query('SELECT role FROM users WHERE id = $1', [squatter.id]);
    expect(rows[0].role).toBe('requester');
    expect(log.lines.join()).toMatch(/NOT promoted/);
  });

  it('refuses a weak ADMIN_PASSWORD (fails start-up rather than creating a guessable admin)', async () => {
    await expect(
      app.services.adminAccounts.bootstrap(
        { email: `weak-${randomUUID()}@example.test`, password: 'administrator' },
        logger(),
      ),
    ).rejects.toMatchObject({ code: 'WEAK_PASSWORD' });
  });
});

describe('create-admin (operators)', () => {
  let app: FastifyInstance;
  beforeAll(async () => {
    app = await createTestApp();
  });
  afterAll(() => app.close());

  it('creates an admin even when others exist, and refuses a taken email (409 EMAIL_TAKEN)', async () => {
    const email = `ops-${randomUUID().slice(0, 8)}@example.test`;
    const res = await app.services.adminAccounts.create(
      { email, password: PASSWORD, name: 'Ops Admin' },
      { source: 'cli', onlyIfNoAdmin: false },
    );
    expect(res).toMatchObject({ kind: 'created', user: { email, role: 'admin', name: 'Ops Admin' } });
    await expect(
      app.services.adminAccounts.create(
        { email: email.toUpperCase(), password: PASSWORD },
        { source: 'cli', onlyIfNoAdmin: false },
      ),
    ).rejects.toMatchObject({ code: 'EMAIL_TAKEN' });
  });
});
