import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { createTestApp } from '../helpers/app.js';
import { elf, type FilePart, multipart, pdf, png } from '../helpers/attachments-fixtures.js';
import { createUser, type TestUser } from '../helpers/factory.js';
import { expectProblem } from '../helpers/http.js';
import { S3RVER_CREDENTIALS, TestS3Server } from '../helpers/s3-server.js';

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

/** The attachments API with STORAGE=s3 against a real S3-protocol server on 127.0.0.1. */
describe('attachments on S3-compatible storage', () => {
  let s3: TestS3Server;
  let client: S3Client;
  let app: FastifyInstance;
  let presigning: FastifyInstance;
  let dataDir: string;
  let requester: TestUser;
  let other: TestUser;

  async function ticket(owner: TestUser): Promise<number> {
    const { rows } = await app.db.$client.query<{ id: number }>(
      'INSERT INTO tickets (title, description, requester_id) VALUES ($1, $2, $3) RETURNING id',
      ['On S3', 'Files.', owner.id],
    );
    return rows[0]!.id;
  }

  function upload(user: TestUser, ticketId: number, files: FilePart[], on = app) {
    const { payload, headers } = multipart(files);
    return on.inject({
      method: 'POST',
      url: `/api/v1/tickets/${ticketId}/attachments`,
      headers: { ...user.auth, ...headers },
      payload,
    });
  }

  function download(user: TestUser, id: string, on = app) {
    return on.inject({ method: 'GET', url: `/api/v1/attachments/${id}`, headers: user.auth });
  }

  async function objects(): Promise<string[]> {
    const page = await client.send(new ListObjectsV2Command({ Bucket: s3.bucket }));
    return (page.Contents ?? []).map((o) => o.Key!).sort();
  }

  beforeAll(async () => {
    // Credentials reach the app the standard way: the AWS SDK's environment provider.
    vi.stubEnv('AWS_ACCESS_KEY_ID', S3RVER_CREDENTIALS.accessKeyId);
    vi.stubEnv('AWS_SECRET_ACCESS_KEY', S3RVER_CREDENTIALS.secretAccessKey);
    s3 = await TestS3Server.create();
    client = new S3Client({
      region: 'us-east-1',
      endpoint: s3.endpoint,
      forcePathStyle: true,
      credentials: S3RVER_CREDENTIALS,
    });
    // DATA_DIR exists but must stay free of uploads: nothing is written to local disk with STORAGE=s3.
    dataDir = await mkdtemp(path.join(tmpdir(), 'hd-s3-app-'));
    const JWT_SECRET = randomBytes(32).toString('hex');
    app = await createTestApp({
      ...s3.env(),
      JWT_SECRET,
      DATA_DIR: dataDir,
      UPLOAD_MAX_BYTES: String(64 * 1024),
    });
    presigning = await createTestApp({
      ...s3.env({ S3_PRESIGNED_DOWNLOADS: 'true', S3_PRESIGNED_TTL_SECONDS: '30' }),
      JWT_SECRET,
      DATA_DIR: dataDir,
    });
    [requester, other] = await Promise.all([createUser(app), createUser(app)]);
  });

  afterAll(async () => {
    await app?.close();
    await presigning?.close();
    client?.destroy();
    await s3?.destroy();
    await rm(dataDir, { recursive: true, force: true });
    vi.unstubAllEnvs();
  });

  it('round trip: bytes go to the bucket under their content key and come back through the API', async () => {
    const id = await ticket(requester);
    const bytes = png();
    const res = await upload(requester, id, [{ filename: 'shot.png', content: bytes }]);
    expect(res.statusCode).toBe(201);
    const [att] = res.json().data;
    expect(att).toMatchObject({ size: bytes.length, sha256: sha256(bytes), contentType: 'image/png' });
    const key = `sha256/${att.sha256.slice(0, 2)}/${att.sha256}`;
    expect(await objects()).toContain(key);
    expect((await objects()).filter((k) => k.startsWith('tmp/'))).toEqual([]);

    const dl = await download(requester, att.id);
    expect(dl.statusCode).toBe(200);
    expect(dl.rawPayload.equals(bytes)).toBe(true);
    expect(dl.headers['content-type']).toBe('image/png');
    expect(dl.headers['content-length']).toBe(String(bytes.length));
    expect(dl.headers['content-disposition']).toBe(
      `attachment; filename="shot.png"; filename*=UTF-8''shot.png`,
    );
    expect(dl.headers['x-content-type-options']).toBe('nosniff');
    // Our permission check still decides.
    expectProblem(await download(other, att.id), 404, 'ATTACHMENT_NOT_FOUND');
  });

  it('identical bytes uploaded to two tickets are one object', async () => {
    const bytes = pdf();
    const a = (
      await upload(requester, await ticket(requester), [{ filename: 'a.pdf', content: bytes }])
    ).json().data[0];
    const before = await objects();
    const b = (
      await upload(requester, await ticket(requester), [{ filename: 'b.pdf', content: bytes }])
    ).json().data[0];
    expect(b.id).not.toBe(a.id);
    expect(await objects()).toEqual(before);
    expect((await download(requester, b.id)).rawPayload.equals(bytes)).toBe(true);
  });

  it('a refused file leaves nothing in the bucket', async () => {
    const before = await objects();
    const res = await upload(requester, await ticket(requester), [
      { filename: 'ok.txt', content: 'fine\n' },
      { filename: 'x.png', content: elf() },
    ]);
    expectProblem(res, 415, 'UNSUPPORTED_MEDIA_TYPE');
    expect(await objects()).toEqual(before);
  });

  it('store down → 503 SERVICE_UNAVAILABLE with Retry-After for uploads and downloads, never 500', async () => {
    const id = await ticket(requester);
    const att = (await upload(requester, id, [{ filename: 'n.txt', content: 'before the outage\n' }])).json()
      .data[0];
    await s3.stop();
    try {
      for (const res of [
        await upload(requester, id, [{ filename: 'm.txt', content: 'during the outage\n' }]),
        await download(requester, att.id),
      ]) {
        expectProblem(res, 503, 'SERVICE_UNAVAILABLE');
        expect(Number(res.headers['retry-after'])).toBeGreaterThan(0);
      }
      const { rows } = await app.db.$client.query('SELECT 1 FROM attachments WHERE ticket_id = $1', [id]);
      expect(rows).toHaveLength(1);
    } finally {
      await s3.start();
    }
    expect((await download(requester, att.id)).statusCode).toBe(200);
    expect((await upload(requester, id, [{ filename: 'm.txt', content: 'after\n' }])).statusCode).toBe(201);
  });

  it('S3_PRESIGNED_DOWNLOADS: a short-lived redirect to the object, after our permission check', async () => {
    const bytes = Buffer.from('presigned bytes\n');
    const att = (
      await upload(
        requester,
        await ticket(requester),
        [{ filename: 'Grüße.txt', content: bytes }],
        presigning,
      )
    ).json().data[0];
    const res = await download(requester, att.id, presigning);
    expect(res.statusCode).toBe(302);
    const location = new URL(res.headers.location as string);
    expect(location.origin).toBe(s3.endpoint);
    expect(location.searchParams.get('X-Amz-Expires')).toBe('30');
    const direct = await fetch(location);
    expect(direct.status).toBe(200);
    expect(Buffer.from(await direct.arrayBuffer()).equals(bytes)).toBe(true);
    expect(direct.headers.get('content-type')).toBe('text/plain; charset=utf-8');
    expect(direct.headers.get('content-disposition')).toBe(
      `attachment; filename="Gru_e.txt"; filename*=UTF-8''Gr%C3%BC%C3%9Fe.txt`,
    );
    expectProblem(await download(other, att.id, presigning), 404, 'ATTACHMENT_NOT_FOUND');
  });
});
