import { createHash, randomUUID } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, open, readdir, rename, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { Transform, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { BlobNotFoundError, type BlobStore, BlobTooLargeError, type StoredBlob } from './blob-store.js';

// Keys are ours: "<2 hex>/<uuid>". Anything else is refused before it can touch a path.
const KEY = /^[0-9a-f]{2}\/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
// A write interrupted by a crash leaves tmp/<uuid>.part; list() reports it so the orphan sweep removes it.
const PARTIAL = /^tmp\/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\.part$/;

async function entries(dir: string): Promise<string[]> {
  try {
    return await readdir(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
}

/** Counts and hashes bytes as they pass; fails the pipeline as soon as the limit is crossed. */
class MeteringStream extends Transform {
  readonly hash = createHash('sha256');
  size = 0;

  constructor(private readonly maxBytes: number) {
    super();
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    this.size += chunk.length;
    if (this.size > this.maxBytes) {
      done(new BlobTooLargeError(this.maxBytes));
      return;
    }
    this.hash.update(chunk);
    done(null, chunk);
  }
}

/**
 * Blobs as files under `<root>` (DATA_DIR/uploads): written to `tmp/<uuid>.part`, fsynced, then renamed
 * to `<first two hex of the uuid>/<uuid>` so a reader never sees a half-written file and a crash leaves
 * at most a stray .part file. Files are created 0600 and never executable.
 */
export function createLocalDiskStore(root: string): BlobStore & { root: string } {
  const tmpDir = path.join(root, 'tmp');

  function pathOf(key: string): string {
    if (!KEY.test(key)) throw new BlobNotFoundError(key);
    return path.join(root, key);
  }

  return {
    root,

    async put(source, { maxBytes }): Promise<StoredBlob> {
      const id = randomUUID();
      const key = `${id.slice(0, 2)}/${id}`;
      const finalPath = path.join(root, key);
      const tmpPath = path.join(tmpDir, `${id}.part`);
      // Until the pipeline is attached, an early source error (client abort) must not go unhandled;
      // pipeline() still sees it because the source is then errored.
      source.once('error', () => {});
      await mkdir(tmpDir, { recursive: true });
      const meter = new MeteringStream(maxBytes);
      try {
        await pipeline(source, meter, createWriteStream(tmpPath, { flags: 'wx', mode: 0o600 }));
        const fh = await open(tmpPath, 'r');
        try {
          await fh.sync();
        } finally {
          await fh.close();
        }
        await mkdir(path.dirname(finalPath), { recursive: true });
        await rename(tmpPath, finalPath);
      } catch (err) {
        await rm(tmpPath, { force: true });
        throw err;
      }
      return { key, size: meter.size, sha256: meter.hash.digest('hex') };
    },

    async open(key) {
      const file = pathOf(key);
      try {
        const { size } = await stat(file);
        return { stream: createReadStream(file), size };
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new BlobNotFoundError(key);
        throw err;
      }
    },

    async delete(key) {
      if (!KEY.test(key) && !PARTIAL.test(key)) return;
      await rm(path.join(root, key), { force: true });
    },

    async *list() {
      for (const dir of await entries(root)) {
        for (const name of await entries(path.join(root, dir))) {
          const key = `${dir}/${name}`;
          if (!KEY.test(key) && !PARTIAL.test(key)) continue;
          try {
            yield { key, modifiedAt: (await stat(path.join(root, key))).mtime };
          } catch (err) {
            if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err; // removed meanwhile
          }
        }
      }
    },
  };
}
