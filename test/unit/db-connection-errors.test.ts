import net from 'node:net';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDb } from '../../src/db/client.js';
import { isDatabaseUnavailable } from '../../src/db/errors.js';

/** A "database" that resets each connection on its startup message: a PostgreSQL going down mid-handshake
 * (the error is a `read ECONNRESET`, with no query and no connect syscall to tell whose socket it was). */
let server: net.Server;
let url: string;
beforeAll(async () => {
  server = net.createServer((socket) => socket.once('data', () => socket.resetAndDestroy()));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  url = `postgres://nobody@127.0.0.1:${(server.address() as net.AddressInfo).port}/none`;
});
afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

const opts = { poolMax: 1, connectionTimeoutMs: 2000, statementTimeoutMs: 5000 };

describe('a connection reset while connecting is an outage, not a bug', () => {
  for (const preparedStatements of [false, true]) {
    it(`pool query (prepared statements ${preparedStatements ? 'on' : 'off'}) → unavailable`, async () => {
      const handle = createDb(url, { ...opts, preparedStatements } as never);
      const err = await handle.pool.query('SELECT 1').catch((e: unknown) => e);
      await handle.close();
      expect((err as NodeJS.ErrnoException).code).toBe('ECONNRESET');
      expect(isDatabaseUnavailable(err)).toBe(true);
    });
  }

  it('a transaction through drizzle → unavailable', async () => {
    const handle = createDb(url, { ...opts, preparedStatements: true } as never);
    const err = await handle.db.transaction(async () => {}).catch((e: unknown) => e);
    await handle.close();
    expect(isDatabaseUnavailable(err)).toBe(true);
  });

  it('the same reset on a plain pg client (not ours) is not taken for the database', async () => {
    const client = new pg.Client({ connectionString: url });
    const err = await client.connect().catch((e: unknown) => e);
    expect((err as NodeJS.ErrnoException).code).toBe('ECONNRESET');
    expect(isDatabaseUnavailable(err)).toBe(false);
  });
});
