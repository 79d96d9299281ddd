import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import type { TestProject } from 'vitest/node';
import { startEmbeddedPostgres } from '../../src/db/embedded.js';
import { runMigrations } from '../../src/db/migrate.js';
import { freePort } from '../../src/lib/free-port.js';

declare module 'vitest' {
  export interface ProvidedContext {
    databaseUrl: string;
  }
}

/**
 * One throwaway database per test run: on TEST_DATABASE_URL's server when set (created and dropped
 * here), otherwise on an embedded PostgreSQL in a temporary directory (removed afterwards).
 */
export default async function setup(project: TestProject) {
  const name = `helpdesk_test_${Date.now()}_${randomBytes(3).toString('hex')}`;
  const external = process.env.TEST_DATABASE_URL;
  let url: string;
  let teardown: () => Promise<void>;

  if (external) {
    const admin = new pg.Client({ connectionString: external });
    await admin.connect();
    await admin.query(`CREATE DATABASE ${name}`);
    await admin.end();
    const u = new URL(external);
    u.pathname = `/${name}`;
    url = u.toString();
    teardown = async () => {
      const c = new pg.Client({ connectionString: external });
      await c.connect();
      await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await c.end();
    };
  } else {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'helpdesk-test-pg-'));
    if (process.getuid?.() === 0) await import('node:fs/promises').then((fs) => fs.chmod(dir, 0o777));
    const server = await startEmbeddedPostgres({ dir, port: await freePort(), database: name });
    url = server.url;
    teardown = async () => {
      await server.stop();
      await rm(dir, { recursive: true, force: true });
    };
  }

  await runMigrations(url);
  project.provide('databaseUrl', url);
  return teardown;
}
