import { randomUUID } from 'node:crypto';
import net from 'node:net';
import { Writable } from 'node:stream';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isDatabaseUnavailable } from '../../src/db/errors.js';
import { mapError } from '../../src/http/errors.js';
import { createTestApp } from '../helpers/app.js';
import { expectProblem } from '../helpers/http.js';

let app: FastifyInstance;
const lines: string[] = [];
// Registrations whose email starts with this fail inside PostgreSQL (a trigger), like any database error would.
const TRAP = `logtrap-${randomUUID().slice(0, 8)}`;
const TRIGGER = `force_failure_${TRAP.replace(/-/g, '_')}`;

beforeAll(async () => {
  const stream = new Writable({
    write(chunk, _enc, cb) {
      lines.push(...String(chunk).split('\n').filter(Boolean));
      cb();
    },
  });
  app = await createTestApp({}, { logger: { level: 'info', stream } });
  await app.db.$client.query(`
    CREATE FUNCTION ${TRIGGER}() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      IF NEW.email LIKE '${TRAP}%' THEN RAISE EXCEPTION 'forced failure for the log test'; END IF;
      RETURN NEW;
    END $$;
    CREATE TRIGGER ${TRIGGER} BEFORE INSERT ON users FOR EACH ROW EXECUTE FUNCTION ${TRIGGER}();`);
});
afterAll(async () => {
  await app.db.$client.query(
    `DROP TRIGGER IF EXISTS ${TRIGGER} ON users; DROP FUNCTION IF EXISTS ${TRIGGER}();`,
  );
  await app.close();
});

describe('no log line carries query parameters', () => {
  it('a database error on register logs its code and a safe message, never the email or the password hash', async () => {
    const email = `${TRAP}@example.com`;
    const traceId = `log-safety-${randomUUID()}`;
    const res = await app.inject({
      method: 'POST',
      url: '/api/v1/auth/register',
      headers: { 'x-request-id': traceId },
      payload: { email, password: 'a long enough passphrase 2026', name: 'Logged Nobody' },
    });
    expectProblem(res, 500, 'INTERNAL_ERROR');
    const mine = lines.filter((l) => l.includes(traceId));
    const failure = mine.map((l) => JSON.parse(l)).find((l) => l.err);
    expect(failure, mine.join('\n')).toBeDefined();
    const text = mine.join('\n');
    expect(text).not.toContain(email);
    expect(text).not.toContain(TRAP);
    expect(text).not.toMatch(/\$argon2id\$/);
    expect(text).not.toMatch(/insert into/i);
    // What is left is enough to act on: the SQLSTATE of the RAISE and PostgreSQL's own message.
    expect(JSON.stringify(failure.err)).toContain('P0001');
    expect(JSON.stringify(failure.err)).toContain('forced failure for the log test');
  });
});

describe('a client aborting mid-body is not a database outage', () => {
  it('the abort is not mapped to 503 and nothing is logged as a database problem', async () => {
    await app.listen({ port: 0, host: '127.0.0.1' });
    const { port } = app.server.address() as net.AddressInfo;
    const traceId = `abort-${randomUUID()}`;
    await new Promise<void>((resolve, reject) => {
      const socket = net.connect(port, '127.0.0.1', () => {
        socket.write(
          'POST /api/v1/auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n' +
            `X-Request-Id: ${traceId}\r\nContent-Length: 1000\r\n\r\n{"email":"a`,
          () => setImmediate(() => socket.destroy()),
        );
      });
      socket.on('close', () => resolve());
      socket.on('error', reject);
    });
    // The server notices the reset and finishes the request; wait for its completion line.
    await expect
      .poll(() => lines.some((l) => l.includes(traceId) && l.includes('client closed the connection')), {
        timeout: 5000,
      })
      .toBe(true);
    const mine = lines.filter((l) => l.includes(traceId));
    expect(mine.join('\n')).not.toMatch(/SERVICE_UNAVAILABLE|database/i);
    expect(mine.map((l) => JSON.parse(l).level as number).every((level) => level < 50)).toBe(true);
  });

  it('classifies socket errors by their origin', () => {
    const clientAbort = Object.assign(new Error('aborted'), { code: 'ECONNRESET' });
    expect(isDatabaseUnavailable(clientAbort)).toBe(false);
    expect(mapError(clientAbort)?.status ?? 500).not.toBe(503);

    const inQuery = Object.assign(new Error('Failed query: select 1\nparams: '), {
      query: 'select 1',
      params: [],
      cause: Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET', syscall: 'read' }),
    });
    expect(isDatabaseUnavailable(inQuery)).toBe(true);
    const refused = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), {
      code: 'ECONNREFUSED',
      syscall: 'connect',
    });
    expect(isDatabaseUnavailable(refused)).toBe(true);
    expect(isDatabaseUnavailable(Object.assign(new Error('terminating connection'), { code: '57P01' }))).toBe(
      true,
    );
  });
});
