import type { FastifyInstance } from 'fastify';
import { createTestApp } from './app.js';
import { ownDatabase } from './own-database.js';
import { TestSmtpServer } from './smtp.js';

export interface MailTestApp {
  app: FastifyInstance;
  smtp: TestSmtpServer;
  /** Every log line the app wrote (JSON text), to check that no secret is logged. */
  logLines: string[];
  /** Resolves once no mail job is queued or running (bounded). */
  settle(timeoutMs?: number): Promise<void>;
  /** Resolves once a job of this kind has failed at least one attempt and waits for its retry. */
  waitForFailedAttempt(kind: string, timeoutMs?: number): Promise<void>;
  /** Jobs of this kind that ended failed, with their kept error. */
  failedJobs(kind: string): Promise<Array<{ id: string; error: string | null }>>;
  close(): Promise<void>;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * A test app sending through a real SMTP server on 127.0.0.1, with its job runner started, on a database of
 * its own (no other file's runner takes its mail jobs).
 */
export async function startMailTestApp(env: Record<string, string> = {}): Promise<MailTestApp> {
  const smtp = await TestSmtpServer.start();
  const logLines: string[] = [];
  const database = await ownDatabase('helpdesk_mail');
  const app = await createTestApp(
    { DATABASE_URL: database.url, SMTP_URL: smtp.url, JOBS_POLL_INTERVAL_MS: '200', ...env },
    { logger: { level: 'info', stream: { write: (line: string) => logLines.push(line) } } },
  );
  await app.jobRunner.start();
  const q = async <T>(text: string, values: unknown[] = []) =>
    (await app.db.$client.query(text, values)).rows as T[];

  async function pending(): Promise<number> {
    const [row] = await q<{ n: number }>(
      // A breach pass hands its events to mail through sla.notify_breaches: mail is not settled while it waits.
      `SELECT count(*)::int AS n FROM graphile_worker.jobs
        WHERE task_identifier LIKE 'mail.%' OR task_identifier = 'sla.notify_breaches'`,
    );
    return row?.n ?? 0;
  }

  return {
    app,
    smtp,
    logLines,
    async settle(timeoutMs = 30_000) {
      const deadline = Date.now() + timeoutMs;
      // Twice in a row: a notify job that just finished may have enqueued its sends in the same moment.
      let quiet = 0;
      while (quiet < 2) {
        if (Date.now() > deadline) throw new Error('mail jobs did not settle');
        quiet = (await pending()) === 0 ? quiet + 1 : 0;
        if (quiet < 2) await sleep(100);
      }
    },
    async waitForFailedAttempt(kind, timeoutMs = 20_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const [row] = await q<{ n: number }>(
          `SELECT count(*)::int AS n FROM graphile_worker.jobs
            WHERE task_identifier = $1 AND attempts > 0 AND last_error IS NOT NULL`,
          [kind],
        );
        if ((row?.n ?? 0) > 0) return;
        if (Date.now() > deadline) throw new Error(`no failed attempt of ${kind}`);
        await sleep(100);
      }
    },
    async failedJobs(kind) {
      return q<{ id: string; error: string | null }>(
        `SELECT id::text, error FROM job_records WHERE kind = $1 AND state = 'failed'`,
        [kind],
      );
    },
    async close() {
      await app.close();
      await smtp.close();
      await database.drop();
    },
  };
}
