import { randomUUID } from 'node:crypto';
import type { Readable } from 'node:stream';
import { PassThrough } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import {
  CopyObjectCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  S3Client,
  type S3ClientConfig,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import {
  BlobNotFoundError,
  type BlobStore,
  BlobStoreUnavailableError,
  BlobTooLargeError,
  CONTENT_KEY,
  contentKey,
  MeteringStream,
  type StagedBlob,
} from './blob-store.js';

export interface S3StoreOptions {
  bucket: string;
  region: string;
  /** MinIO, R2, Ceph…: their URL; undefined for AWS S3. */
  endpoint?: string;
  forcePathStyle: boolean;
  /** Seconds a presigned download URL stays valid; 0 = downloads only stream through the API. */
  presignedDownloadTtl: number;
  /** Tests pass explicit credentials; otherwise the standard AWS chain (env, profile, SSO, IMDS, ECS…). */
  credentials?: S3ClientConfig['credentials'];
}

const STAGED = /^tmp\/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** Parts of a multipart upload: the most any one upload holds in memory is PART_SIZE × QUEUE_SIZE. */
const PART_SIZE = 5 * 1024 * 1024;
const QUEUE_SIZE = 2;

function isNotFound(err: unknown): boolean {
  const e = err as { name?: string; $metadata?: { httpStatusCode?: number } };
  return e?.name === 'NoSuchKey' || e?.name === 'NotFound' || e?.$metadata?.httpStatusCode === 404;
}

/** Any failure of the store itself (down, timeout, 5xx, refused credentials) is a 503 for the client. */
function unavailable(err: unknown): Error {
  if (err instanceof BlobTooLargeError || err instanceof BlobNotFoundError) return err;
  if (err instanceof BlobStoreUnavailableError) return err;
  return new BlobStoreUnavailableError(err);
}

/**
 * Blobs in an S3-compatible bucket. put() streams the source through a size/sha256 meter into a
 * multipart upload under `tmp/<uuid>` (parts of 5 MiB, never the whole file in memory); commit() copies
 * it server-side to `sha256/<2 hex>/<sha256>` — unless those bytes are already there — checks the stored
 * size, and deletes the staged object. Downloads stream GetObject through the API; with a presigned TTL
 * they may instead redirect to a short-lived signed URL.
 *
 * Checksums: the SDK's default CRC trailers (aws-chunked bodies) are not understood by every
 * S3-compatible server, so they are sent only when an operation requires them; integrity is our sha256.
 */
export function createS3Store(opts: S3StoreOptions): BlobStore & { client: S3Client; bucket: string } {
  const client = new S3Client({
    region: opts.region,
    ...(opts.endpoint ? { endpoint: opts.endpoint } : {}),
    forcePathStyle: opts.forcePathStyle,
    ...(opts.credentials ? { credentials: opts.credentials } : {}),
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    maxAttempts: 3,
    // Bounded waits: an unreachable store answers 503 within seconds, not after the request timeout.
    requestHandler: { connectionTimeout: 3_000, requestTimeout: 60_000 },
  });
  const Bucket = opts.bucket;

  async function remove(Key: string): Promise<void> {
    await client.send(new DeleteObjectCommand({ Bucket, Key }));
  }

  async function sizeOf(Key: string): Promise<number | undefined> {
    try {
      const head = await client.send(new HeadObjectCommand({ Bucket, Key }));
      return head.ContentLength;
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  }

  return {
    kind: 's3',
    client,
    bucket: Bucket,

    async put(source, { maxBytes }): Promise<StagedBlob> {
      const tmpKey = `tmp/${randomUUID()}`;
      source.once('error', () => {});
      const meter = new MeteringStream(maxBytes);
      const body = new PassThrough();
      const upload = new Upload({
        client,
        params: { Bucket, Key: tmpKey, Body: body, ContentType: 'application/octet-stream' },
        partSize: PART_SIZE,
        queueSize: QUEUE_SIZE,
        // A failed multipart upload is aborted, so no parts linger in the bucket.
        leavePartsOnError: false,
      });
      // A failing store stops reading the body: end the source side too, or the pipeline would wait forever.
      let storeError: unknown;
      const uploaded = upload.done().catch((err: unknown) => {
        storeError = err;
        body.destroy(err as Error);
      });
      try {
        await pipeline(source, meter, body);
        await uploaded;
        if (storeError) throw storeError;
      } catch (err) {
        await upload.abort().catch(() => {});
        await remove(tmpKey).catch(() => {});
        // Too large or a client abort stay what they are; a failure of the store itself is a 503.
        throw err === storeError ? unavailable(err) : err;
      }
      const sha256 = meter.hash.digest('hex');
      const size = meter.size;
      let settled = false;
      return {
        size,
        sha256,
        async open() {
          try {
            const res = await client.send(new GetObjectCommand({ Bucket, Key: tmpKey }));
            return res.Body as Readable;
          } catch (err) {
            throw unavailable(err);
          }
        },
        async commit() {
          const key = contentKey(sha256);
          if (settled) return key;
          try {
            const existing = await sizeOf(key);
            if (existing === undefined) {
              await client.send(
                new CopyObjectCommand({
                  Bucket,
                  Key: key,
                  CopySource: `${Bucket}/${tmpKey}`,
                  MetadataDirective: 'REPLACE',
                  ContentType: 'application/octet-stream',
                  Metadata: { sha256 },
                }),
              );
            }
            const stored = existing ?? (await sizeOf(key));
            if (stored !== size) {
              throw new Error(`stored object ${key} has ${stored} bytes, expected ${size}`);
            }
            settled = true;
            await remove(tmpKey).catch(() => {});
            return key;
          } catch (err) {
            throw unavailable(err);
          }
        },
        async discard() {
          if (settled) return;
          settled = true;
          await remove(tmpKey).catch(() => {});
        },
      };
    },

    async open(key) {
      if (!CONTENT_KEY.test(key)) throw new BlobNotFoundError(key);
      try {
        const res = await client.send(new GetObjectCommand({ Bucket, Key: key }));
        return { stream: res.Body as Readable, size: Number(res.ContentLength) };
      } catch (err) {
        if (isNotFound(err)) throw new BlobNotFoundError(key);
        throw unavailable(err);
      }
    },

    async *list() {
      let ContinuationToken: string | undefined;
      do {
        const page = await client
          .send(new ListObjectsV2Command({ Bucket, Prefix: 'tmp/', ContinuationToken }))
          .catch((err: unknown) => {
            throw unavailable(err);
          });
        for (const o of page.Contents ?? []) {
          if (o.Key && STAGED.test(o.Key)) yield { key: o.Key, modifiedAt: o.LastModified ?? new Date() };
        }
        ContinuationToken = page.IsTruncated ? page.NextContinuationToken : undefined;
      } while (ContinuationToken);
    },

    async delete(key) {
      if (!STAGED.test(key)) return;
      try {
        await remove(key);
      } catch (err) {
        throw unavailable(err);
      }
    },

    ...(opts.presignedDownloadTtl > 0
      ? {
          async presignDownload(key: string, headers: { contentType: string; contentDisposition: string }) {
            if (!CONTENT_KEY.test(key)) throw new BlobNotFoundError(key);
            // Signing is local (no request), so it cannot fail for an unreachable store.
            return getSignedUrl(
              client,
              new GetObjectCommand({
                Bucket,
                Key: key,
                ResponseContentType: headers.contentType,
                ResponseContentDisposition: headers.contentDisposition,
                ResponseCacheControl: 'private, no-store',
              }),
              { expiresIn: opts.presignedDownloadTtl },
            );
          },
        }
      : {}),
  };
}
