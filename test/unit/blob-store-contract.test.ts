import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { ListObjectsV2Command } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  BlobNotFoundError,
  type BlobStore,
  BlobStoreUnavailableError,
  BlobTooLargeError,
  contentKey,
} from '../../src/lib/storage/blob-store.js';
import { createLocalDiskStore } from '../../src/lib/storage/local-disk-store.js';
import { createS3Store } from '../../src/lib/storage/s3-store.js';
import { S3RVER_CREDENTIALS, TestS3Server } from '../helpers/s3-server.js';

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

async function readAll(stream: NodeJS.ReadableStream): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

/** A fresh, empty store of one backend, and every key it holds (staged ones included). */
interface Backend {
  store: BlobStore;
  keys(): Promise<string[]>;
}

let s3: TestS3Server;
let localRoot: string;
let n = 0;

const backends: Record<'local' | 's3', () => Promise<Backend>> = {
  async local() {
    const root = path.join(localRoot, String(n++));
    return {
      store: createLocalDiskStore(root),
      async keys() {
        const entries = await readdir(root, { recursive: true, withFileTypes: true }).catch(() => []);
        return entries
          .filter((e) => e.isFile())
          .map((e) => path.relative(root, path.join(e.parentPath, e.name)))
          .sort();
      },
    };
  },
  async s3() {
    // One bucket per backend instance would need bucket creation; a fresh server directory is simpler.
    const store = createS3Store({
      bucket: s3.bucket,
      region: 'us-east-1',
      endpoint: s3.endpoint,
      forcePathStyle: true,
      presignedDownloadTtl: 0,
      credentials: S3RVER_CREDENTIALS,
    });
    return {
      store,
      async keys() {
        const out: string[] = [];
        let token: string | undefined;
        do {
          const page = await store.client.send(
            new ListObjectsV2Command({ Bucket: s3.bucket, ContinuationToken: token }),
          );
          for (const o of page.Contents ?? []) out.push(o.Key!);
          token = page.IsTruncated ? page.NextContinuationToken : undefined;
        } while (token);
        return out.sort();
      },
    };
  },
};

beforeAll(async () => {
  s3 = await TestS3Server.create();
  localRoot = await mkdtemp(path.join(tmpdir(), 'hd-blobs-'));
});

afterAll(async () => {
  await s3?.destroy();
  await rm(localRoot, { recursive: true, force: true });
});

describe.each(['local', 's3'] as const)('blob store contract: %s', (kind) => {
  let b: Backend;
  beforeAll(async () => {
    b = await backends[kind]();
  });

  it('stores the bytes under their content key with size and sha256; nothing stays staged', async () => {
    const bytes = randomBytes(200_000);
    const staged = await b.store.put(Readable.from([bytes.subarray(0, 1000), bytes.subarray(1000)]), {
      maxBytes: 1_000_000,
    });
    expect(staged.size).toBe(bytes.length);
    expect(staged.sha256).toBe(sha256(bytes));
    const key = await staged.commit();
    expect(key).toBe(contentKey(sha256(bytes)));
    expect(key).toMatch(/^sha256\/[0-9a-f]{2}\/[0-9a-f]{64}$/);
    const { stream, size } = await b.store.open(key);
    expect(size).toBe(bytes.length);
    expect((await readAll(stream)).equals(bytes)).toBe(true);
    expect((await b.keys()).filter((k) => k.startsWith('tmp'))).toEqual([]);
  });

  it('a file of several multipart parts (12 MiB) streams in and out unchanged', async () => {
    const bytes = randomBytes(12 * 1024 * 1024);
    const chunks = Array.from({ length: 192 }, (_, i) => bytes.subarray(i * 65_536, (i + 1) * 65_536));
    const staged = await b.store.put(Readable.from(chunks), { maxBytes: 16 * 1024 * 1024 });
    const key = await staged.commit();
    const { stream, size } = await b.store.open(key);
    expect(size).toBe(bytes.length);
    expect(sha256(await readAll(stream))).toBe(sha256(bytes));
  });

  it('identical bytes are stored once, under one key', async () => {
    const bytes = randomBytes(10_000);
    const first = await (await b.store.put(Readable.from([bytes]), { maxBytes: 20_000 })).commit();
    const before = await b.keys();
    const second = await (await b.store.put(Readable.from([bytes]), { maxBytes: 20_000 })).commit();
    expect(second).toBe(first);
    expect(await b.keys()).toEqual(before);
    expect((await b.keys()).filter((k) => k === first)).toHaveLength(1);
  });

  it('discarding a staged copy never removes a committed blob with the same bytes', async () => {
    const bytes = randomBytes(5000);
    const key = await (await b.store.put(Readable.from([bytes]), { maxBytes: 10_000 })).commit();
    const before = await b.keys();
    const again = await b.store.put(Readable.from([bytes]), { maxBytes: 10_000 });
    await again.discard();
    await again.discard();
    expect(await b.keys()).toEqual(before);
    expect((await readAll((await b.store.open(key)).stream)).equals(bytes)).toBe(true);
  });

  it('a source over the limit is refused and leaves nothing behind', async () => {
    const before = await b.keys();
    await expect(
      b.store.put(Readable.from([randomBytes(600), randomBytes(600)]), { maxBytes: 1000 }),
    ).rejects.toBeInstanceOf(BlobTooLargeError);
    expect(await b.keys()).toEqual(before);
  });

  it('a first chunk already over the limit is refused and leaves nothing behind', async () => {
    const before = await b.keys();
    await expect(b.store.put(Readable.from([randomBytes(1001)]), { maxBytes: 1000 })).rejects.toBeInstanceOf(
      BlobTooLargeError,
    );
    expect(await b.keys()).toEqual(before);
  });

  it('a source that fails midway (client abort) rejects with its error and leaves nothing behind', async () => {
    const before = await b.keys();
    const source = new PassThrough();
    const put = b.store.put(source, { maxBytes: 10_000_000 });
    source.write(randomBytes(5000));
    setImmediate(() => source.destroy(new Error('aborted')));
    await expect(put).rejects.toThrow('aborted');
    expect(await b.keys()).toEqual(before);
  });

  it('exactly maxBytes is accepted', async () => {
    const staged = await b.store.put(Readable.from([randomBytes(1000)]), { maxBytes: 1000 });
    expect(staged.size).toBe(1000);
    await staged.discard();
  });

  it('list() reports only staged leftovers, and delete() removes only those, never a committed blob', async () => {
    const bytes = randomBytes(4000);
    const key = await (await b.store.put(Readable.from([bytes]), { maxBytes: 10_000 })).commit();
    const leftover = await b.store.put(Readable.from([randomBytes(4000)]), { maxBytes: 10_000 });
    const listed: string[] = [];
    for await (const item of b.store.list()) {
      expect(item.modifiedAt).toBeInstanceOf(Date);
      listed.push(item.key);
    }
    expect(listed).toHaveLength(1);
    expect(listed[0]).toMatch(/^tmp\//);
    await b.store.delete(key);
    expect((await readAll((await b.store.open(key)).stream)).equals(bytes)).toBe(true);
    await b.store.delete(listed[0]!);
    await b.store.delete(listed[0]!);
    expect((await b.keys()).filter((k) => k.startsWith('tmp'))).toEqual([]);
    await leftover.discard();
  });

  it('refuses keys that are not content keys (no path traversal) and unknown ones', async () => {
    for (const key of [
      '../../etc/passwd',
      'tmp/whatever',
      `sha256/ff/${'0'.repeat(64)}`,
      `sha256/00/../../${'0'.repeat(58)}`,
    ]) {
      await expect(b.store.open(key)).rejects.toBeInstanceOf(BlobNotFoundError);
    }
    await expect(b.store.open(contentKey('ab'.repeat(32)))).rejects.toBeInstanceOf(BlobNotFoundError);
  });
});

describe('S3 store when the server is down', () => {
  it('put, commit and open fail as "unavailable" (503), and work again once it is back', async () => {
    const server = await TestS3Server.create('outage');
    const store = createS3Store({
      bucket: server.bucket,
      region: 'us-east-1',
      endpoint: server.endpoint,
      forcePathStyle: true,
      presignedDownloadTtl: 0,
      credentials: S3RVER_CREDENTIALS,
    });
    try {
      const bytes = randomBytes(3000);
      const key = await (await store.put(Readable.from([bytes]), { maxBytes: 10_000 })).commit();
      const staged = await store.put(Readable.from([randomBytes(3000)]), { maxBytes: 10_000 });

      await server.stop();
      await expect(store.put(Readable.from([bytes]), { maxBytes: 10_000 })).rejects.toBeInstanceOf(
        BlobStoreUnavailableError,
      );
      await expect(staged.commit()).rejects.toBeInstanceOf(BlobStoreUnavailableError);
      const err = await store.open(key).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(BlobStoreUnavailableError);
      expect(err).toMatchObject({ status: 503, code: 'SERVICE_UNAVAILABLE' });

      await server.start();
      expect((await readAll((await store.open(key)).stream)).equals(bytes)).toBe(true);
    } finally {
      await server.destroy();
    }
  });
});
