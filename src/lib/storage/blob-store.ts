import { createHash } from 'node:crypto';
import type { Readable } from 'node:stream';
import { Transform, type TransformCallback } from 'node:stream';
import { ServiceUnavailableError } from '../errors.js';

/**
 * Bytes streamed into the store's private staging area, measured and hashed on the way, not yet
 * visible under a content key. Exactly one of commit() or discard() follows.
 */
export interface StagedBlob {
  size: number;
  /** Lowercase hex SHA-256 of the bytes, computed while they streamed in. */
  sha256: string;
  /**
   * Makes the bytes readable under their content-addressed key (`contentKey(sha256)`) and returns it.
   * Identical bytes get the same key and are stored once; committing bytes that are already there
   * only drops the staged copy.
   */
  commit(): Promise<string>;
  /** Removes the staged copy; never touches a committed blob. Idempotent. */
  discard(): Promise<void>;
  /** Reads the staged bytes again (content checks that need more than the first and last bytes). */
  open(): Promise<Readable>;
}

/** Thrown by put() when the source is longer than maxBytes; nothing is left behind. */
export class BlobTooLargeError extends Error {
  constructor(public readonly maxBytes: number) {
    super(`blob exceeds ${maxBytes} bytes`);
    this.name = 'BlobTooLargeError';
  }
}

/** Thrown by open() when no blob has that key. */
export class BlobNotFoundError extends Error {
  constructor(key: string) {
    super(`no blob ${key}`);
    this.name = 'BlobNotFoundError';
  }
}

/** The object store cannot be reached or failed (network, 5xx, credentials): a 503 for the client. */
export class BlobStoreUnavailableError extends ServiceUnavailableError {
  constructor(cause: unknown) {
    super('File storage is unavailable right now; try again shortly.', 5);
    this.cause = cause;
  }
}

/**
 * Where attachment bytes live: the local disk (STORAGE=local) or an S3-compatible bucket (STORAGE=s3).
 * Services depend on this interface only; test/unit/blob-store-contract.test.ts runs one suite against both.
 *
 * put() streams — never buffers the whole source — counting bytes and hashing on the way; it either
 * resolves with a staged blob or rejects having removed every partial byte (too large, source error,
 * client abort, store failure). There is deliberately no delete of committed blobs: a content key may be
 * shared by many attachment rows, so no request path may remove one.
 */
export interface BlobStore {
  readonly kind: 'local' | 's3';
  put(source: Readable, opts: { maxBytes: number }): Promise<StagedBlob>;
  open(key: string): Promise<{ stream: Readable; size: number }>;
  /**
   * A short-lived URL that serves the blob directly from the store with these response headers,
   * or undefined when the store serves bytes only through the API.
   */
  presignDownload?(
    key: string,
    headers: { contentType: string; contentDisposition: string },
  ): Promise<string | undefined>;
  /**
   * Staged leftovers (`tmp/…`) with their last-modified time: what a process killed mid-upload leaves
   * behind. The orphan sweep (a maintenance job) deletes those older than a grace period. Committed
   * content keys are never listed: whether one is still needed cannot be decided outside the upload's
   * transaction, and nothing a committed row points to may be deleted.
   */
  list(): AsyncIterable<{ key: string; modifiedAt: Date }>;
  /** Deletes a staged leftover that list() reported; any other key (a content key) is left alone. Idempotent. */
  delete(key: string): Promise<void>;
}

const HEX64 = /^[0-9a-f]{64}$/;

/** The content-addressed key of these bytes, the same for both stores: `sha256/<first two hex>/<hex>`. */
export function contentKey(sha256: string): string {
  if (!HEX64.test(sha256)) throw new Error('not a lowercase hex sha256');
  return `sha256/${sha256.slice(0, 2)}/${sha256}`;
}

/** Content keys, plus the `<2 hex>/<uuid>` keys of files stored before content addressing (local only). */
export const CONTENT_KEY = /^sha256\/([0-9a-f]{2})\/(\1[0-9a-f]{62})$/;

/** Counts and hashes bytes as they pass; fails the pipeline as soon as the limit is crossed. */
export class MeteringStream extends Transform {
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
