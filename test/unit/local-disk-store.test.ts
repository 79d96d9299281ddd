import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BlobNotFoundError, BlobTooLargeError } from '../../src/lib/storage/blob-store.js';
import { createLocalDiskStore } from '../../src/lib/storage/local-disk-store.js';

async function filesUnder(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true }).catch(() => []);
  return entries.filter((e) => e.isFile()).map((e) => path.join(e.parentPath, e.name));
}

describe('local disk blob store', () => {
  let root: string;
  beforeAll(async () => {
    root = await mkdtemp(path.join(tmpdir(), 'blobs-'));
  });
  afterAll(() => rm(root, { recursive: true, force: true }));

  it('stores the bytes under a generated key with their size and sha256', async () => {
    const store = createLocalDiskStore(path.join(root, 'a'));
    const bytes = randomBytes(200_000);
    const blob = await store.put(Readable.from([bytes.subarray(0, 1000), bytes.subarray(1000)]), {
      maxBytes: 1_000_000,
    });
    expect(blob.size).toBe(bytes.length);
    expect(blob.sha256).toBe(createHash('sha256').update(bytes).digest('hex'));
    expect(blob.key).toMatch(/^[0-9a-f]{2}\/[0-9a-f-]{36}$/);
    expect((await readFile(path.join(root, 'a', blob.key))).equals(bytes)).toBe(true);
    const { stream, size } = await store.open(blob.key);
    expect(size).toBe(bytes.length);
    const chunks: Buffer[] = [];
    for await (const c of stream) chunks.push(c as Buffer);
    expect(Buffer.concat(chunks).equals(bytes)).toBe(true);
    expect(await filesUnder(path.join(root, 'a', 'tmp'))).toEqual([]);
  });

  it('a source over the limit is refused and leaves nothing behind', async () => {
    const store = createLocalDiskStore(path.join(root, 'b'));
    await expect(
      store.put(Readable.from([randomBytes(600), randomBytes(600)]), { maxBytes: 1000 }),
    ).rejects.toBeInstanceOf(BlobTooLargeError);
    expect(await filesUnder(path.join(root, 'b'))).toEqual([]);
  });

  it('a source that fails midway (client abort) leaves nothing behind', async () => {
    const store = createLocalDiskStore(path.join(root, 'c'));
    const source = new PassThrough();
    const put = store.put(source, { maxBytes: 1_000_000 });
    source.write(randomBytes(5000));
    setImmediate(() => source.destroy(new Error('aborted')));
    await expect(put).rejects.toThrow('aborted');
    expect(await filesUnder(path.join(root, 'c'))).toEqual([]);
  });

  it('exactly maxBytes is accepted', async () => {
    const store = createLocalDiskStore(path.join(root, 'd'));
    const blob = await store.put(Readable.from([randomBytes(1000)]), { maxBytes: 1000 });
    expect(blob.size).toBe(1000);
  });

  it('refuses keys that are not its own (no path traversal) and deletes idempotently', async () => {
    const store = createLocalDiskStore(path.join(root, 'e'));
    await expect(store.open('../../etc/passwd')).rejects.toBeInstanceOf(BlobNotFoundError);
    await expect(store.open('ab/00000000-0000-4000-8000-000000000000')).rejects.toBeInstanceOf(
      BlobNotFoundError,
    );
    const blob = await store.put(Readable.from([Buffer.from('x')]), { maxBytes: 10 });
    await store.delete(blob.key);
    await store.delete(blob.key);
    await expect(store.open(blob.key)).rejects.toBeInstanceOf(BlobNotFoundError);
  });
});
