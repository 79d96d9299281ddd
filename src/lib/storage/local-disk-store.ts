import { randomUUID } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, open, readdir, rename, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import {
  BlobNotFoundError,
  type BlobStore,
  CONTENT_KEY,
  contentKey,
  MeteringStream,
  type StagedBlob,
} from './blob-store.js';

// Files stored before content addressing: "<2 hex>/<uuid>". Still readable; never written any more.
const LEGACY_KEY = /^[0-9a-f]{2}\/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
// A staged write: tmp/<uuid>.part. A crash leaves one behind; list() reports it so the orphan sweep removes it.
const STAGED = /^tmp\/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\.part$/;

async function fsync(file: string, flags = 'r'): Promise<void> {
  const fh = await open(file, flags);
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/**
 * Blobs as files under `<root>` (DATA_DIR/uploads): streamed to `tmp/<uuid>.part` and fsynced (put),
 * then renamed to `sha256/<2 hex>/<sha256>` (commit), so a reader never sees a half-written file, the
 * same bytes are stored once, and a crash leaves at most a stray .part file. Files are created 0600
 * and never executable. The same relative keys work in a bucket (STORAGE=s3), so `uploads/` can be
 * copied into one as it is.
 */
export function createLocalDiskStore(root: string): BlobStore & { root: string } {
  const tmpDir = path.join(root, 'tmp');

  function pathOf(key: string): string {
    if (!CONTENT_KEY.test(key) && !LEGACY_KEY.test(key)) throw new BlobNotFoundError(key);
    return path.join(root, key);
  }

  return {
    kind: 'local',
    root,

    async put(source, { maxBytes }): Promise<StagedBlob> {
      const tmpPath = path.join(tmpDir, `${randomUUID()}.part`);
      // Until the pipeline is attached, an early source error (client abort) must not go unhandled;
      // pipeline() still sees it because the source is then errored.
      source.once('error', () => {});
      await mkdir(tmpDir, { recursive: true });
      const meter = new MeteringStream(maxBytes);
      const out = createWriteStream(tmpPath, { flags: 'wx', mode: 0o600 });
      try {
        await pipeline(source, meter, out);
        await fsync(tmpPath);
      } catch (err) {
        // pipeline() rejects at the first error, which can come before the file is even open (a first chunk
        // already over the limit): the file is removed once the write stream has closed, not before its
        // open creates it.
        if (!out.closed) await new Promise<void>((resolve) => out.once('close', () => resolve()));
        await rm(tmpPath, { force: true });
        throw err;
      }
      const sha256 = meter.hash.digest('hex');
      let settled = false;
      return {
        size: meter.size,
        sha256,
        async open() {
          return createReadStream(tmpPath);
        },
        async commit() {
          const key = contentKey(sha256);
          const finalPath = path.join(root, key);
          if (settled) return key;
          const exists = await stat(finalPath).then(
            () => true,
            () => false,
          );
          if (exists) {
            await rm(tmpPath, { force: true });
          } else {
            await mkdir(path.dirname(finalPath), { recursive: true });
            // Atomic: a concurrent commit of the same bytes replaces an identical file.
            await rename(tmpPath, finalPath);
            await fsync(path.dirname(finalPath)).catch(() => {});
          }
          settled = true;
          return key;
        },
        async discard() {
          if (settled) return;
          settled = true;
          await rm(tmpPath, { force: true });
        },
      };
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

    async *list() {
      const names = await readdir(tmpDir).catch((err: NodeJS.ErrnoException) => {
        if (err.code === 'ENOENT') return [] as string[];
        throw err;
      });
      for (const name of names) {
        const key = `tmp/${name}`;
        if (!STAGED.test(key)) continue;
        try {
          yield { key, modifiedAt: (await stat(path.join(root, key))).mtime };
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err; // committed or discarded meanwhile
        }
      }
    },

    async delete(key) {
      if (!STAGED.test(key)) return;
      await rm(path.join(root, key), { force: true });
    },
  };
}
