import type { Readable } from 'node:stream';

/** What the store knows about a blob once it is safely written. */
export interface StoredBlob {
  /** Server-generated, opaque; the only handle to the bytes. */
  key: string;
  size: number;
  /** Lowercase hex SHA-256 of the bytes, computed while they streamed in. */
  sha256: string;
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

/**
 * Where attachment bytes live. Services depend on this interface only, so an S3-compatible store
 * (multipart upload + ETag/size, GetObject stream, DeleteObject) can replace the local disk one.
 *
 * put() streams — never buffers the whole source — counting bytes and hashing on the way; it either
 * resolves with a durable blob or rejects having removed every partial byte (too large, source
 * error, client abort).
 */
export interface BlobStore {
  put(source: Readable, opts: { maxBytes: number }): Promise<StoredBlob>;
  open(key: string): Promise<{ stream: Readable; size: number }>;
  /** Idempotent: deleting a missing key is not an error. */
  delete(key: string): Promise<void>;
  /**
   * Every blob with its last-modified time, including leftovers of interrupted writes; the orphan sweep
   * (a maintenance job) deletes those no attachment row names once they are older than a grace period.
   */
  list?(): AsyncIterable<{ key: string; modifiedAt: Date }>;
}
