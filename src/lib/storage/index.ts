import path from 'node:path';
import type { Config } from '../../config.js';
import type { BlobStore, StagedBlob } from './blob-store.js';
import { createLocalDiskStore } from './local-disk-store.js';
import type { S3StoreOptions } from './s3-store.js';

/** The blob store STORAGE names: DATA_DIR/uploads on this machine, or an S3-compatible bucket. */
export function createBlobStore(config: Pick<Config, 'storage' | 'dataDir'>): BlobStore {
  const s = config.storage;
  if (s.kind === 'local') return createLocalDiskStore(path.join(config.dataDir, 'uploads'));
  return lazyS3Store({
    bucket: s.bucket,
    region: s.region,
    endpoint: s.endpoint,
    forcePathStyle: s.forcePathStyle,
    presignedDownloadTtl: s.presignedDownloadTtl,
  });
}

/**
 * The S3 store, its SDK loaded on first use: the AWS SDK is ≈ 8 MB of heap and more of code in every
 * process, including those (workers, an API that only lists tickets) that never touch an upload.
 */
function lazyS3Store(opts: S3StoreOptions): BlobStore {
  let store: Promise<BlobStore> | undefined;
  const load = () => {
    store ??= import('./s3-store.js').then((m) => m.createS3Store(opts));
    return store;
  };
  return {
    kind: 's3',
    put: async (source, o): Promise<StagedBlob> => (await load()).put(source, o),
    open: async (key) => (await load()).open(key),
    async *list() {
      yield* (await load()).list();
    },
    delete: async (key) => (await load()).delete(key),
    ...(opts.presignedDownloadTtl > 0
      ? { presignDownload: async (key, headers) => (await load()).presignDownload?.(key, headers) }
      : {}),
  };
}
