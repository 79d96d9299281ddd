import { randomBytes } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { runMigrations } from '../../src/db/migrate.js';
import { createTestApp } from '../helpers/app.js';
import { createUser } from '../helpers/factory.js';
import { createTicket, patchTicket } from '../helpers/tickets.js';

/** Runs one statement as `url`'s role; the PostgreSQL error code when it is refused. */
async function attempt(url: string, statement: string): Promise<string | 'ok'> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    await client.query(statement);
    return 'ok';
  } catch (err) {
    return (err as { code?: string }).code ?? String(err);
  } finally {
    await client.end();
  }
}

describe('separate migration (owner) and runtime roles', () => {
  const ownerUrl = inject('databaseUrl');
  const role = `helpdesk_rt_${randomBytes(4).toString('hex')}`;
  let runtimeUrl: string;
  let owner: pg.Client;
  let app: FastifyInstance;

  beforeAll(async () => {
    owner = new pg.Client({ connectionString: ownerUrl });
    await owner.connect();
    await owner.query(`CREATE ROLE ${role} LOGIN PASSWORD 'runtime-secret'`);
    const u = new URL(ownerUrl);
    u.username = role;
    u.password = 'runtime-secret';
    runtimeUrl = u.toString();
    // What server start-up does with DATABASE_MIGRATION_URL=ownerUrl and DATABASE_URL=runtimeUrl.
    await runMigrations(ownerUrl, runtimeUrl);
    app = await createTestApp({ DATABASE_URL: runtimeUrl, DATABASE_MIGRATION_URL: ownerUrl });
    // The job worker runs as the runtime role too (the queue library checks its schema on start).
    await app.jobRunner.start({ schedules: false });
  });

  afterAll(async () => {
    await app?.close();
    await owner.query(`DROP OWNED BY ${role}`);
    await owner.query(`DROP ROLE ${role}`);
    await owner.end();
  });

  it('the app works as the runtime role: tickets, changes and their audit rows are written', async () => {
    const { rows } = await app.db.$client.query<{ user: string }>('SELECT current_user AS "user"');
    expect(rows[0]!.user).toBe(role);
    const agent = await createUser(app, { role: 'agent' });
    const ticket = await createTicket(app, agent);
    const res = await patchTicket(app, agent, ticket.id, { priority: 'high' });
    expect(res.statusCode, res.body).toBe(200);
    const count = await owner.query('SELECT count(*)::int AS n FROM audit_events WHERE entity_id = $1', [
      String(ticket.id),
    ]);
    expect(count.rows[0].n).toBeGreaterThanOrEqual(2);
  });

  it('the runtime role can neither change nor remove audit rows, nor switch their triggers off', async () => {
    // Other test files write audit rows into this database meanwhile: compare the rows that exist now.
    const snapshot = (upTo: string) =>
      owner.query(
        `SELECT count(*)::int AS n, md5(string_agg(id::text || action, ',' ORDER BY seq)) AS digest
           FROM audit_events WHERE seq <= $1`,
        [upTo],
      );
    const { rows: top } = await owner.query('SELECT max(seq)::text AS seq FROM audit_events');
    const before = await snapshot(top[0].seq);
    expect(before.rows[0].n).toBeGreaterThan(0);
    expect(await attempt(runtimeUrl, 'SELECT count(*) FROM audit_events')).toBe('ok');
    // 42501 insufficient_privilege: refused by the grants, before any trigger runs.
    expect(await attempt(runtimeUrl, `UPDATE audit_events SET action = 'x'`)).toBe('42501');
    expect(await attempt(runtimeUrl, 'DELETE FROM audit_events')).toBe('42501');
    expect(await attempt(runtimeUrl, 'TRUNCATE audit_events')).toBe('42501');
    expect(await attempt(runtimeUrl, 'ALTER TABLE audit_events DISABLE TRIGGER USER')).toBe('42501');
    expect(await attempt(runtimeUrl, 'DROP TABLE audit_events')).toBe('42501');
    const after = await snapshot(top[0].seq);
    expect(after.rows[0]).toEqual(before.rows[0]);
  });

  it("the grant step is a no-op with one URL and refuses a runtime role with the owner's powers", async () => {
    await expect(owner.query('SELECT helpdesk_grant_runtime_role(current_user)')).resolves.toBeDefined();
    const member = `${role}_m`;
    await owner.query(`CREATE ROLE ${member} LOGIN`);
    try {
      await owner.query(
        `GRANT ${owner.escapeIdentifier(new URL(ownerUrl).username || 'postgres')} TO ${member}`,
      );
      await expect(owner.query('SELECT helpdesk_grant_runtime_role($1)', [member])).rejects.toThrow(
        /has the privileges of the migration role/,
      );
    } finally {
      await owner.query(`DROP ROLE ${member}`);
    }
  });
});
