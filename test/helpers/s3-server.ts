import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import S3rver from 's3rver';
import { freePort } from '../../scripts/lib/free-port.js';

/** s3rver's fixed credentials: it checks SigV4 signatures made with them. */
export const S3RVER_CREDENTIALS = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' };

/**
 * A real S3-protocol server (s3rver) on 127.0.0.1 with one bucket, files in a temp directory.
 * stop() and start() again keep the port and the data, so a test can take the store down and back.
 */
export class TestS3Server {
  private server: S3rver | undefined;
  private constructor(
    readonly dir: string,
    readonly port: number,
    readonly bucket: string,
  ) {}

  static async create(bucket = 'helpdesk-test'): Promise<TestS3Server> {
    const s = new TestS3Server(await mkdtemp(path.join(tmpdir(), 'hd-s3rver-')), await freePort(), bucket);
    await s.start();
    return s;
  }

  get endpoint(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** The app's environment for STORAGE=s3 against this server (credentials via the AWS env chain). */
  env(extra: Record<string, string> = {}): Record<string, string> {
    return {
      STORAGE: 's3',
      S3_BUCKET: this.bucket,
      S3_REGION: 'us-east-1',
      S3_ENDPOINT: this.endpoint,
      S3_FORCE_PATH_STYLE: 'true',
      ...extra,
    };
  }

  async start(): Promise<void> {
    const server = new S3rver({
      address: '127.0.0.1',
      port: this.port,
      silent: true,
      directory: this.dir,
      configureBuckets: [{ name: this.bucket, configs: [] }],
    });
    await server.run();
    this.server = server;
  }

  async stop(): Promise<void> {
    await this.server?.close();
    this.server = undefined;
  }

  async destroy(): Promise<void> {
    await this.stop().catch(() => {});
    await rm(this.dir, { recursive: true, force: true });
  }
}
