import { chmod, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../../scripts/lib/free-port.js';
import { buildApp } from '../../src/app.js';
import { type EmbeddedDatabase, startEmbeddedPostgres } from '../../src/db/embedded.js';
import { runMigrations } from '../../src/db/migrate.js';
import { testConfig } from '../helpers/app.js';

describe('readiness follows the database', () => {
  let dir: string;
  let port: number;
  let pgServer: EmbeddedDatabase;

  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'helpdesk-ready-'));
    if (process.getuid?.() === 0) await chmod(dir, 0o777);
    port = await freePort();
    pgServer = await startEmbeddedPostgres({ dir, port });
    await runMigrations(pgServer.url);
  });
  afterAll(async () => {
    await pgServer.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('answers 503 with Retry-After while the database is stopped, and 200 again once it is back', async () => {
    const app = await buildApp(testConfig({ DATABASE_URL: pgServer.url, DB_CONNECTION_TIMEOUT_MS: '1000' }), {
      logger: false,
    });
    try {
      expect((await app.inject({ method: 'GET', url: '/readyz' })).statusCode).toBe(200);

      await pgServer.stop();
      const down = await app.inject({ method: 'GET', url: '/readyz' });
      expect(down.statusCode).toBe(503);
      expect(down.headers['content-type']).toMatch(/^application\/problem\+json/);
      expect(down.headers['retry-after']).toMatch(/^\d+$/);
      expect(down.json()).toMatchObject({
        code: 'SERVICE_UNAVAILABLE',
        traceId: down.headers['x-request-id'],
      });
      // Liveness does not depend on the database.
      expect((await app.inject({ method: 'GET', url: '/healthz' })).statusCode).toBe(200);

      pgServer = await startEmbeddedPostgres({ dir, port });
      expect((await app.inject({ method: 'GET', url: '/readyz' })).statusCode).toBe(200);
    } finally {
      await app.close();
    }
  });
});
