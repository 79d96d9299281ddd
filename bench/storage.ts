/**
 * `npm run bench:storage`: upload and download throughput of a 10 MiB attachment through the real server
 * (a child process on 127.0.0.1) with each blob store — STORAGE=local (DATA_DIR on this disk) and
 * STORAGE=s3 against s3rver on 127.0.0.1 — plus the server's peak resident memory, which shows that a
 * file is streamed, not buffered. Bounded: ROUNDS uploads and downloads per backend, loopback only.
 *
 * Database: BENCH_PG (default postgres://postgres@127.0.0.1:5432/postgres) gets a throwaway database.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { freePort } from '../scripts/lib/free-port.js';
import { runMigrations } from '../src/db/migrate.js';
import { INSERT_USER_WITH_SESSION, signAccessToken } from '../test/faults/harness.js';
import { S3RVER_CREDENTIALS, TestS3Server } from '../test/helpers/s3-server.js';
import { machine, writeJson } from './report.js';

const FILE_BYTES = 10 * 1024 * 1024;
const ROUNDS = Number(process.env.BENCH_STORAGE_ROUNDS ?? 5);
const MiB = 1024 * 1024;
const log = (msg: string) => console.log(`[bench:storage ${new Date().toISOString().slice(11, 19)}] ${msg}`);

/** 10 MiB of UTF-8 text (accepted as text/plain), different every call so nothing is deduplicated. */
function textFile(): Buffer {
  const line = `${randomBytes(30).toString('hex')} bench line\n`;
  return Buffer.from(line.repeat(Math.ceil(FILE_BYTES / line.length)).slice(0, FILE_BYTES));
}

function multipartBody(content: Buffer): { body: Uint8Array<ArrayBuffer>; contentType: string } {
  const boundary = `----bench${randomBytes(8).toString('hex')}`;
  const body = Buffer.concat([
    Buffer.from(
      `--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="bench.log"\r\n` +
        'Content-Type: text/plain\r\n\r\n',
    ),
    content,
    Buffer.from(`\r\n--${boundary}--\r\n`),
  ]);
  return { body: new Uint8Array(body), contentType: `multipart/form-data; boundary=${boundary}` };
}

async function procMemory(pid: number, field: 'VmHWM' | 'VmRSS'): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8').catch(() => '');
  const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status);
  return m ? Number(m[1]) * 1024 : Number.NaN;
}

async function startApi(env: Record<string, string>): Promise<{ url: string; child: ChildProcess }> {
  const port = await freePort();
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/server.ts'], {
    env: {
      PATH: process.env.PATH ?? '',
      HOME: process.env.HOME ?? '/tmp',
      NODE_ENV: 'production',
      HOST: '127.0.0.1',
      PORT: String(port),
      LOG_LEVEL: 'warn',
      OVERLOAD_MAX_EVENT_LOOP_DELAY_MS: '0',
      UPLOAD_QUOTA_BYTES_PER_USER_PER_DAY: '0',
      RATE_LIMIT_MAX: '1000000',
      AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
      ...env,
    },
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error('server exited during start-up');
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error('server not live within 60 s');
    }
    const ok = await fetch(`${url}/healthz`, { signal: AbortSignal.timeout(1000) }).then(
      (r) => r.ok,
      () => false,
    );
    if (ok) return { url, child };
    await new Promise((r) => setTimeout(r, 100));
  }
}

interface BackendResult {
  backend: string;
  rounds: number;
  uploadMiBps: { median: number; best: number };
  downloadMiBps: { median: number; best: number };
  /** Resident memory of the idle server after start-up, and its peak over the whole run. */
  serverIdleRssMiB: number;
  serverPeakRssMiB: number;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function measure(
  backend: string,
  env: Record<string, string>,
  databaseUrl: string,
  secret: string,
): Promise<BackendResult> {
  const db = new pg.Client({ connectionString: databaseUrl });
  await db.connect();
  const { rows: users } = await db.query<{ id: string; sid: string }>(INSERT_USER_WITH_SESSION, [
    `bench-${randomBytes(4).toString('hex')}@example.test`,
    'Bench',
    'requester',
  ]);
  const userId = users[0]!.id;
  const sessionId = users[0]!.sid;
  const { rows: tickets } = await db.query<{ id: number }>(
    `INSERT INTO tickets (title, description, requester_id) VALUES ('Storage bench', 'Files.', $1) RETURNING id`,
    [userId],
  );
  await db.end();
  const authorization = `Bearer ${signAccessToken(secret, userId, 'requester', sessionId)}`;

  const api = await startApi({ ...env, DATABASE_URL: databaseUrl, JWT_SECRET: secret });
  const up: number[] = [];
  const down: number[] = [];
  const idleRss = await procMemory(api.child.pid!, 'VmRSS');
  try {
    for (let i = 0; i < ROUNDS + 1; i++) {
      const content = textFile();
      const { body, contentType } = multipartBody(content);
      let t = performance.now();
      const res = await fetch(`${api.url}/api/v1/tickets/${tickets[0]!.id}/attachments`, {
        method: 'POST',
        headers: { authorization, 'content-type': contentType },
        body,
        signal: AbortSignal.timeout(120_000),
      });
      const json = (await res.json()) as { data?: { id: string; sha256: string }[] };
      const upMs = performance.now() - t;
      if (res.status !== 201) throw new Error(`upload answered ${res.status}: ${JSON.stringify(json)}`);
      const att = json.data![0]!;

      t = performance.now();
      const dl = await fetch(`${api.url}/api/v1/attachments/${att.id}`, {
        headers: { authorization },
        signal: AbortSignal.timeout(120_000),
      });
      const got = Buffer.from(await dl.arrayBuffer());
      const downMs = performance.now() - t;
      if (dl.status !== 200 || createHash('sha256').update(got).digest('hex') !== att.sha256) {
        throw new Error(`download answered ${dl.status} with ${got.length} bytes`);
      }
      // Round 0 warms up (JIT, connections, first directory creation) and is not counted.
      if (i === 0) continue;
      up.push(FILE_BYTES / MiB / (upMs / 1000));
      down.push(FILE_BYTES / MiB / (downMs / 1000));
      log(`${backend} round ${i}: upload ${upMs.toFixed(0)} ms, download ${downMs.toFixed(0)} ms`);
    }
    const rss = await procMemory(api.child.pid!, 'VmHWM');
    return {
      backend,
      rounds: ROUNDS,
      uploadMiBps: { median: median(up), best: Math.max(...up) },
      downloadMiBps: { median: median(down), best: Math.max(...down) },
      serverIdleRssMiB: idleRss / MiB,
      serverPeakRssMiB: rss / MiB,
    };
  } finally {
    api.child.kill('SIGTERM');
    await new Promise((r) => api.child.once('exit', r));
  }
}

async function main() {
  const adminUrl = process.env.BENCH_PG ?? 'postgres://postgres@127.0.0.1:5432/postgres';
  const name = `helpdesk_bench_storage_${randomBytes(3).toString('hex')}`;
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  const u = new URL(adminUrl);
  u.pathname = `/${name}`;
  const databaseUrl = u.toString();
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'helpdesk-bench-storage-'));
  const s3 = await TestS3Server.create('bench');
  const secret = randomBytes(32).toString('hex');
  const results: BackendResult[] = [];
  try {
    await runMigrations(databaseUrl);
    log(`${ROUNDS} rounds of a ${FILE_BYTES / MiB} MiB upload + download per backend`);
    results.push(await measure('local', { STORAGE: 'local', DATA_DIR: dataDir }, databaseUrl, secret));
    results.push(
      await measure(
        's3 (s3rver)',
        {
          ...s3.env(),
          DATA_DIR: dataDir,
          AWS_ACCESS_KEY_ID: S3RVER_CREDENTIALS.accessKeyId,
          AWS_SECRET_ACCESS_KEY: S3RVER_CREDENTIALS.secretAccessKey,
        },
        databaseUrl,
        secret,
      ),
    );
  } finally {
    await s3.destroy();
    await rm(dataDir, { recursive: true, force: true });
    await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    await admin.end();
  }

  console.log(
    '\n| backend | upload MiB/s (median / best) | download MiB/s (median / best) | server RSS idle → peak |',
  );
  console.log('|---|---|---|---|');
  for (const r of results) {
    console.log(
      `| ${r.backend} | ${r.uploadMiBps.median.toFixed(1)} / ${r.uploadMiBps.best.toFixed(1)} | ` +
        `${r.downloadMiBps.median.toFixed(1)} / ${r.downloadMiBps.best.toFixed(1)} | ${r.serverIdleRssMiB.toFixed(0)} → ${r.serverPeakRssMiB.toFixed(0)} MiB |`,
    );
  }
  const file = await writeJson('storage', { machine: machine(), fileBytes: FILE_BYTES, results });
  console.log(`\nwritten to ${file}`);
}

await main();
