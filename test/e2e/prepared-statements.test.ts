import { eq } from 'drizzle-orm';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { createDb, type DbHandle } from '../../src/db/client.js';
import { statementName } from '../../src/db/prepared.js';
import { users } from '../../src/db/schema/index.js';

const opts = { poolMax: 1, connectionTimeoutMs: 3000, statementTimeoutMs: 5000 };

describe('prepared statements', () => {
  const handles: DbHandle[] = [];
  afterAll(async () => {
    await Promise.all(handles.map((h) => h.close()));
  });

  it('names each distinct DML text once and leaves the rest unnamed', () => {
    const a = statementName('select "id" from "users" where "users"."id" = $1 limit $2');
    expect(a).toMatch(/^hd_/);
    expect(statementName('select "id" from "users" where "users"."id" = $1 limit $2')).toBe(a);
    expect(statementName('select "email" from "users" where "users"."id" = $1')).not.toBe(a);
    expect(statementName('insert into "teams" ("name") values ($1)')).toMatch(/^hd_/);
    // Full-text: the plan depends on how common the term is, so it is planned for each value.
    expect(statementName('select "id" from "tickets" where "search" @@ websearch_to_tsquery($1)')).toBeNull();
    expect(statementName('begin')).toBeNull();
    expect(statementName('SET LOCAL statement_timeout = 100')).toBeNull();
  });

  it('the pool prepares repeated queries on the server and answers them correctly', async () => {
    const h = createDb(inject('databaseUrl'), { ...opts, preparedStatements: true });
    handles.push(h);
    const missing = '00000000-0000-4000-8000-000000000000';
    for (let i = 0; i < 3; i++) {
      const rows = await h.db.select({ id: users.id }).from(users).where(eq(users.id, missing)).limit(1);
      expect(rows).toEqual([]);
    }
    // One connection (poolMax 1): this plain query runs in the session that prepared the select.
    const { rows } = await h.pool.query<{ name: string }>('select name from pg_prepared_statements');
    expect(rows.map((r) => r.name).filter((n) => n.startsWith('hd_')).length).toBeGreaterThan(0);
  });

  it('DB_PREPARED_STATEMENTS=false keeps every query unnamed (e.g. behind a transaction-mode pooler)', async () => {
    const h = createDb(inject('databaseUrl'), { ...opts, preparedStatements: false });
    handles.push(h);
    await h.db.select({ id: users.id }).from(users).limit(1);
    const { rows } = await h.pool.query<{ name: string }>('select name from pg_prepared_statements');
    expect(rows).toEqual([]);
  });
});
