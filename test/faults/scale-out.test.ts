import { createHash, randomBytes } from 'node:crypto';
import { ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { S3RVER_CREDENTIALS, TestS3Server } from '../helpers/s3-server.js';
import { arrangeUser, FaultDatabase, report, type ServerProcess, startServer, tempDir } from './harness.js';

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

/** Reads SSE frames from a fetch body until `match` accepts one (or the signal ends the stream). */
async function nextFrame(
  body: ReadableStream<Uint8Array>,
  match: (f: { event?: string; data?: string }) => boolean,
): Promise<{ event?: string; data?: string }> {
  const decoder = new TextDecoder();
  let buffer = '';
  for await (const chunk of body as unknown as AsyncIterable<Uint8Array>) {
    buffer += decoder.decode(chunk, { stream: true });
    let end = buffer.indexOf('\n\n');
    while (end >= 0) {
      const frame: { event?: string; data?: string } = {};
      for (const line of buffer.slice(0, end).split('\n')) {
        if (line.startsWith('event: ')) frame.event = line.slice(7);
        if (line.startsWith('data: ')) frame.data = line.slice(6);
      }
      buffer = buffer.slice(end + 2);
      if (match(frame)) return frame;
      end = buffer.indexOf('\n\n');
    }
  }
  throw new Error('stream ended without the expected frame');
}

/** A multipart/form-data body with one file. */
function form(filename: string, content: Buffer): { body: Buffer; contentType: string } {
  const boundary = `----scale${randomBytes(8).toString('hex')}`;
  const body = Buffer.concat([
    Buffer.from(
      `--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="${filename}"\r\n` +
        'Content-Type: application/octet-stream\r\n\r\n',
    ),
    content,
    Buffer.from(`\r\n--${boundary}--\r\n`),
  ]);
  return { body, contentType: `multipart/form-data; boundary=${boundary}` };
}

/**
 * Two API processes on one database and one S3-compatible bucket, each with its own empty DATA_DIR:
 * nothing an instance needs may live on its local disk.
 */
describe('two API instances, one database, S3 storage', () => {
  let db: FaultDatabase;
  let s3: TestS3Server;
  let a: ServerProcess;
  let b: ServerProcess;
  const secret = randomBytes(32).toString('hex');

  beforeAll(async () => {
    db = await FaultDatabase.create();
    s3 = await TestS3Server.create('scale-out');
    const common = {
      DATABASE_URL: db.url,
      JWT_SECRET: secret,
      ...s3.env(),
      AWS_ACCESS_KEY_ID: S3RVER_CREDENTIALS.accessKeyId,
      AWS_SECRET_ACCESS_KEY: S3RVER_CREDENTIALS.secretAccessKey,
      AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
    };
    [a, b] = await Promise.all([
      startServer({ ...common, DATA_DIR: await tempDir('helpdesk-scale-a-') }),
      startServer({ ...common, DATA_DIR: await tempDir('helpdesk-scale-b-') }),
    ]);
  });

  afterAll(async () => {
    await Promise.all([a?.kill(), b?.kill()]);
    await db?.destroy();
    await s3?.destroy();
  });

  it('a file uploaded through A downloads byte-identical through B; the same bytes through B are stored once; B streams the change', async () => {
    const user = await arrangeUser(db, secret, 'requester');
    const [ticket] = await db.query<{ id: number }>(
      'INSERT INTO tickets (title, description, requester_id) VALUES ($1, $2, $3) RETURNING id',
      ['Scale-out', 'Two instances.', user.id],
    );
    // 6 MiB of UTF-8 text: more than one multipart part on the way to the bucket.
    const line = `${randomBytes(24).toString('hex')} log line\n`;
    const bytes = Buffer.from(line.repeat(Math.ceil((6 * 1024 * 1024) / line.length)));
    const { body, contentType } = form('big.log', bytes);

    // A live change stream on B, open before the upload through A (change events are shared via PostgreSQL).
    const streamAbort = new AbortController();
    const stopStream = setTimeout(() => streamAbort.abort(), 60_000);
    const stream = await fetch(`${b.url}/api/v1/changes/stream`, {
      headers: { authorization: user.authorization, accept: 'text/event-stream' },
      signal: streamAbort.signal,
    });
    expect(stream.status).toBe(200);
    const seenOnB = nextFrame(
      stream.body!,
      (f) => f.event === 'attachment.created' && (f.data ?? '').includes(String(ticket!.id)),
    );
    seenOnB.catch(() => {});

    const t0 = performance.now();
    const up = await fetch(`${a.url}/api/v1/tickets/${ticket!.id}/attachments`, {
      method: 'POST',
      headers: { authorization: user.authorization, 'content-type': contentType },
      body: new Uint8Array(body),
      signal: AbortSignal.timeout(60_000),
    });
    const uploadMs = performance.now() - t0;
    expect(up.status, await up.clone().text()).toBe(201);
    const att = ((await up.json()) as { data: { id: string; sha256: string; size: number }[] }).data[0]!;
    expect(att.sha256).toBe(sha256(bytes));
    const frame = await seenOnB;
    const streamedMs = performance.now() - t0;
    clearTimeout(stopStream);
    streamAbort.abort();
    expect(JSON.parse(frame.data!)).toMatchObject({
      type: 'attachment.created',
      ticketId: ticket!.id,
      data: { attachment: { id: att.id, sha256: att.sha256 } },
    });

    const t1 = performance.now();
    const down = await fetch(`${b.url}/api/v1/attachments/${att.id}`, {
      headers: { authorization: user.authorization },
      signal: AbortSignal.timeout(60_000),
    });
    const got = Buffer.from(await down.arrayBuffer());
    const downloadMs = performance.now() - t1;
    expect(down.status).toBe(200);
    expect(got.length).toBe(bytes.length);
    expect(sha256(got)).toBe(att.sha256);

    // The same bytes again, through B: a second row, one object.
    const again = form('copy.log', bytes);
    const up2 = await fetch(`${b.url}/api/v1/tickets/${ticket!.id}/attachments`, {
      method: 'POST',
      headers: { authorization: user.authorization, 'content-type': again.contentType },
      body: new Uint8Array(again.body),
      signal: AbortSignal.timeout(60_000),
    });
    expect(up2.status).toBe(201);
    const client = new S3Client({
      region: 'us-east-1',
      endpoint: s3.endpoint,
      forcePathStyle: true,
      credentials: S3RVER_CREDENTIALS,
    });
    const listed = await client.send(new ListObjectsV2Command({ Bucket: s3.bucket }));
    client.destroy();
    const keys = (listed.Contents ?? []).map((o) => o.Key);
    expect(keys).toEqual([`sha256/${att.sha256.slice(0, 2)}/${att.sha256}`]);

    report('scale-out: upload through A, download through B (S3)', {
      'file size': `${(bytes.length / 1024 / 1024).toFixed(1)} MiB`,
      'upload through A': `${uploadMs.toFixed(0)} ms`,
      'download through B': `${downloadMs.toFixed(0)} ms`,
      'objects in the bucket after 2 uploads': keys.length,
      'upload start → event on B stream': `${streamedMs.toFixed(0)} ms`,
    });
  });
});
