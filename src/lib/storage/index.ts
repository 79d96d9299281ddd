import path from 'node:path';
import type { Config } from '../../config.js';
import type { BlobStore } from './blob-store.js';
import { createLocalDiskStore } from './local-disk-store.js';
import { createS3Store } from './s3-store.js';

/** The blob store STORAGE names: DATA_DIR/uploads on this machine, or an S3-compatible bucket. */
export function createBlobStore(config: Pick<Config, 'storage' | 'dataDir'>): BlobStore {
  const s = config.storage;
  if (s.kind === 'local') return createLocalDiskStore(path.join(config.dataDir, 'uploads'));
  return createS3Store({
    bucket: s.bucket,
    region: s.region,
    endpoint: s.endpoint,
    forcePathStyle: s.forcePathStyle,
    presignedDownloadTtl: s.presignedDownloadTtl,
  });
}
