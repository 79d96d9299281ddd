import { randomBytes } from 'node:crypto';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApp } from '../helpers/app.js';
import { type FilePart, multipart } from '../helpers/attachments-fixtures.js';
import { createUser, type TestUser } from '../helpers/factory.js';
import { expectProblem } from '../helpers/http.js';

const QUOTA = 100_000;
const STAFF_QUOTA = 150_000;
const DAY = 86_400;

/** A text file of exactly n bytes, different every call. */
function textFile(n: number): FilePart {
  const line = `${randomBytes(8).toString('hex')}\n`;
  return { filename: 'log.txt', content: line.repeat(Math.ceil(n / line.length)).slice(0, n) };
}

describe('upload quota per account and day', () => {
  let app: FastifyInstance;
  let dataDir: string;

  async function ticket(owner: TestUser): Promise<number> {
    const { rows } = await app.db.$client.query<{ id: number }>(
      'INSERT INTO tickets (title, description, requester_id) VALUES ($1, $2, $3) RETURNING id',
      ['Quota', 'Files.', owner.id],
    );
    return rows[0]!.id;
  }

  function upload(user: TestUser, ticketId: number, files: FilePart[]) {
    const { payload, headers } = multipart(files);
    return app.inject({
      method: 'POST',
      url: `/api/v1/tickets/${ticketId}/attachments`,
      headers: { ...user.auth, ...headers },
      payload,
    });
  }

  beforeAll(async () => {
    dataDir = await mkdtemp(path.join(tmpdir(), 'hd-quota-'));
    app = await createTestApp({
      DATA_DIR: dataDir,
      UPLOAD_MAX_BYTES: String(64 * 1024),
      UPLOAD_QUOTA_BYTES_PER_USER_PER_DAY: String(QUOTA),
      UPLOAD_QUOTA_STAFF_BYTES_PER_DAY: String(STAFF_QUOTA),
    });
  });

  afterAll(async () => {
    await app?.close();
    await rm(dataDir, { recursive: true, force: true });
  });

  it('an upload that would pass the daily quota → 413 QUOTA_EXCEEDED with Retry-After; nothing stored', async () => {
    const user = await createUser(app);
    const id = await ticket(user);
    expect((await upload(user, id, [textFile(60_000)])).statusCode).toBe(201);
    const res = await upload(user, id, [textFile(50_000)]);
    const body = expectProblem(res, 413, 'QUOTA_EXCEEDED');
    expect(body.detail).toContain(String(QUOTA));
    // Room again only when the first upload leaves the 24-hour window.
    const retryAfter = Number(res.headers['retry-after']);
    expect(retryAfter).toBeGreaterThan(DAY - 120);
    expect(retryAfter).toBeLessThanOrEqual(DAY);
    const { rows } = await app.db.$client.query('SELECT size FROM attachments WHERE ticket_id = $1', [id]);
    expect(rows).toEqual([{ size: 60_000 }]);
    // What still fits is accepted: the limit is on bytes, not on requests.
    expect((await upload(user, id, [textFile(40_000)])).statusCode).toBe(201);
    expectProblem(await upload(user, id, [textFile(1)]), 413, 'QUOTA_EXCEEDED');
  });

  it('concurrent uploads cannot both squeeze past the quota', async () => {
    const user = await createUser(app);
    const id = await ticket(user);
    // Four at once, 40 kB each, 100 kB allowed: exactly two fit, whatever the interleaving.
    const results = await Promise.all(Array.from({ length: 4 }, () => upload(user, id, [textFile(40_000)])));
    const statuses = results.map((r) => r.statusCode).sort();
    expect(statuses).toEqual([201, 201, 413, 413]);
    for (const r of results.filter((x) => x.statusCode === 413)) expectProblem(r, 413, 'QUOTA_EXCEEDED');
    const { rows } = await app.db.$client.query<{ total: string }>(
      'SELECT sum(size)::text AS total FROM attachments WHERE uploader_id = $1',
      [user.id],
    );
    expect(Number(rows[0]!.total)).toBe(80_000);
  });

  it('the window is rolling: Retry-After is when the oldest upload ages out; older uploads no longer count', async () => {
    const user = await createUser(app);
    const id = await ticket(user);
    await app.db.$client.query(
      `INSERT INTO upload_usage (user_id, bytes, created_at) VALUES
         ($1, 1000000, now() - interval '25 hours'),
         ($1, $2, now() - interval '23 hours')`,
      [user.id, QUOTA - 10],
    );
    const res = await upload(user, id, [textFile(20)]);
    expectProblem(res, 413, 'QUOTA_EXCEEDED');
    const retryAfter = Number(res.headers['retry-after']);
    expect(retryAfter).toBeGreaterThan(3600 - 120);
    expect(retryAfter).toBeLessThanOrEqual(3600);
    expect((await upload(user, id, [textFile(10)])).statusCode).toBe(201);
  });

  it('deleting files gives no quota back; identical bytes count every time but are stored once', async () => {
    const user = await createUser(app);
    const id = await ticket(user);
    const same = textFile(45_000);
    const first = await upload(user, id, [same]);
    const second = await upload(user, id, [same]);
    expect([first.statusCode, second.statusCode]).toEqual([201, 201]);
    const [a, b] = [first.json().data[0], second.json().data[0]];
    expect(a.id).not.toBe(b.id);
    const { rows: keys } = await app.db.$client.query<{ storage_key: string }>(
      'SELECT DISTINCT storage_key FROM attachments WHERE id = ANY($1::uuid[])',
      [[a.id, b.id]],
    );
    expect(keys).toEqual([{ storage_key: `sha256/${a.sha256.slice(0, 2)}/${a.sha256}` }]);
    const blobs = await readdir(path.join(dataDir, 'uploads', 'sha256', a.sha256.slice(0, 2)));
    expect(blobs.filter((f) => f === a.sha256)).toHaveLength(1);

    await app.db.$client.query('DELETE FROM attachments WHERE uploader_id = $1', [user.id]);
    expectProblem(await upload(user, id, [textFile(20_000)]), 413, 'QUOTA_EXCEEDED');
  });

  it('agents and admins have their own, higher limit (UPLOAD_QUOTA_STAFF_BYTES_PER_DAY)', async () => {
    const requester = await createUser(app);
    const id = await ticket(requester);
    for (const role of ['agent', 'admin'] as const) {
      const staff = await createUser(app, { role });
      for (let i = 0; i < 3; i++) expect((await upload(staff, id, [textFile(50_000)])).statusCode).toBe(201);
      expectProblem(await upload(staff, id, [textFile(1)]), 413, 'QUOTA_EXCEEDED');
    }
  });

  it('with the quota set to 0 there is no limit', async () => {
    const open = await createTestApp({
      DATA_DIR: dataDir,
      UPLOAD_MAX_BYTES: String(64 * 1024),
      UPLOAD_QUOTA_BYTES_PER_USER_PER_DAY: '0',
    });
    try {
      const user = await createUser(open);
      const { rows } = await open.db.$client.query<{ id: number }>(
        'INSERT INTO tickets (title, description, requester_id) VALUES ($1, $2, $3) RETURNING id',
        ['Unlimited', 'Files.', user.id],
      );
      const { payload, headers } = multipart([textFile(60_000), textFile(60_000)]);
      const res = await open.inject({
        method: 'POST',
        url: `/api/v1/tickets/${rows[0]!.id}/attachments`,
        headers: { ...user.auth, ...headers },
        payload,
      });
      expect(res.statusCode).toBe(201);
    } finally {
      await open.close();
    }
  });
});
