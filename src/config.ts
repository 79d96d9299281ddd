import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parseEnv } from 'node:util';
import { z } from 'zod';

/** Placeholder secrets that ship in docs and examples; never acceptable in production. */
const KNOWN_PLACEHOLDER_SECRETS = new Set([
  'change-me-to-a-long-random-secret-of-at-least-32-bytes',
  'changeme',
  'secret',
]);

/**
 * Why a production JWT_SECRET is unacceptable, or null. Beyond the length: no whitespace (a sentence or the
 * placeholder with spaces), no known placeholder, not one short pattern repeated ("aaaa…", "abab…"),
 * enough distinct characters, and at least 128 bits by a character-frequency (Shannon) estimate.
 */
export function weakSecretReason(secret: string): string | null {
  if (Buffer.byteLength(secret) < 32) return 'is shorter than 32 bytes';
  if (/\s/.test(secret)) return 'contains whitespace (a phrase or placeholder, not a random secret)';
  const folded = secret.toLowerCase().replace(/[^a-z0-9]/g, '');
  if (KNOWN_PLACEHOLDER_SECRETS.has(secret) || /changeme|replaceme|yoursecret|placeholder/.test(folded))
    return 'is a placeholder value';
  for (let period = 1; period <= secret.length / 2; period++) {
    if (secret.length % period === 0 && secret.slice(0, period).repeat(secret.length / period) === secret)
      return 'is one short pattern repeated';
  }
  const counts = new Map<string, number>();
  for (const ch of secret) counts.set(ch, (counts.get(ch) ?? 0) + 1);
  if (counts.size < 10) return `uses only ${counts.size} distinct characters`;
  const n = [...secret].length;
  let bits = 0;
  for (const c of counts.values()) bits -= c * Math.log2(c / n);
  if (bits < 128) return `looks low-entropy (about ${Math.floor(bits)} bits)`;
  return null;
}

const bool = (fallback: boolean) =>
  z
    .enum(['true', 'false', '1', '0', 'yes', 'no'])
    .optional()
    .transform((v) => (v === undefined ? fallback : ['true', '1', 'yes'].includes(v)));

const int = (fallback: number, min: number, max = Number.MAX_SAFE_INTEGER) =>
  z.coerce.number().int().min(min).max(max).default(fallback);

/** An IANA timezone name Intl (and so PostgreSQL's tz database) knows. */
function isTimeZone(tz: string): boolean {
  try {
    new Intl.DateTimeFormat('en', { timeZone: tz });
    return true;
  } catch {
    return false;
  }
}

const emptyAsUndefined = (v: unknown) => (v === '' ? undefined : v);

/** `address@domain` or `Display Name <address@domain>`; no CR/LF anywhere (header injection). */
const MAIL_FROM_PATTERN = /^(?:[^\r\n<>]*<[^\s<>@]+@[^\s<>@]+>|[^\s<>@]+@[^\s<>@]+)$/;

const envSchema = z
  .object({
    NODE_ENV: z.enum(['development', 'production', 'test']).default('development'),
    PORT: int(3000, 0, 65535),
    HOST: z.preprocess(emptyAsUndefined, z.string().min(1).optional()),
    DATABASE_URL: z.preprocess(
      emptyAsUndefined,
      z
        .string()
        .regex(/^postgres(ql)?:\/\//, 'must be a postgres:// or postgresql:// URL')
        .optional(),
    ),
    DATABASE_MIGRATION_URL: z.preprocess(
      emptyAsUndefined,
      z
        .string()
        .regex(/^postgres(ql)?:\/\//, 'must be a postgres:// or postgresql:// URL')
        .optional(),
    ),
    DATA_DIR: z.string().min(1).default('./data'),
    EMBEDDED_PG_PORT: int(54329, 1024, 65535),
    JWT_SECRET: z.preprocess(emptyAsUndefined, z.string().optional()),
    ACCESS_TOKEN_TTL: int(900, 30, 86_400),
    REFRESH_TOKEN_TTL: int(30 * 86_400, 300, 365 * 86_400),
    ADMIN_EMAIL: z.preprocess(emptyAsUndefined, z.email().optional()),
    ADMIN_PASSWORD: z.preprocess(emptyAsUndefined, z.string().optional()),
    ALLOW_SIGNUP: bool(true),
    CORS_ORIGINS: z
      .string()
      .default('')
      .transform((v) =>
        v
          .split(',')
          .map((s) => s.trim())
          .filter(Boolean),
      )
      .pipe(z.array(z.union([z.literal('*'), z.url()]))),
    REDIS_URL: z.preprocess(
      emptyAsUndefined,
      z
        .string()
        .regex(/^rediss?:\/\//, 'must be a redis:// or rediss:// URL')
        .optional(),
    ),
    REDIS_KEY_PREFIX: z.string().min(1).max(100).default('helpdesk:rl:'),
    RATE_LIMIT_MAX: int(600, 1),
    LOGIN_RATE_LIMIT_PER_ACCOUNT: int(10, 1),
    LOGIN_RATE_LIMIT_PER_IP: int(100, 1),
    TRUST_PROXY: z
      .string()
      .default('false')
      .transform((v): boolean | number | string => {
        if (v === 'true') return true;
        if (v === 'false' || v === '') return false;
        if (/^\d+$/.test(v)) return Number(v); // number of hops
        return v; // comma list of trusted addresses / CIDRs
      }),
    UPLOAD_MAX_BYTES: int(10 * 1024 * 1024, 1, 1024 * 1024 * 1024),
    UPLOAD_QUOTA_BYTES_PER_USER_PER_DAY: int(200 * 1024 * 1024, 0),
    UPLOAD_QUOTA_STAFF_BYTES_PER_DAY: int(2 * 1024 * 1024 * 1024, 0),
    STORAGE: z.enum(['local', 's3']).default('local'),
    S3_BUCKET: z.preprocess(emptyAsUndefined, z.string().min(3).max(63).optional()),
    S3_REGION: z.preprocess(emptyAsUndefined, z.string().min(1).default('us-east-1')),
    S3_ENDPOINT: z.preprocess(emptyAsUndefined, z.url({ protocol: /^https?$/ }).optional()),
    S3_FORCE_PATH_STYLE: bool(false),
    S3_PRESIGNED_DOWNLOADS: bool(false),
    S3_PRESIGNED_TTL_SECONDS: int(60, 1, 3600),
    BODY_LIMIT_BYTES: int(1024 * 1024, 1024, 64 * 1024 * 1024),
    LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
    PASSWORD_MIN_LENGTH: int(12, 8, 256),
    DB_POOL_MAX: int(10, 1, 200),
    DB_CONNECTION_TIMEOUT_MS: int(3000, 100, 60_000),
    DB_STATEMENT_TIMEOUT_MS: int(5000, 100, 600_000),
    DB_PREPARED_STATEMENTS: bool(true),
    METRICS_TOKEN: z.preprocess(emptyAsUndefined, z.string().min(16).optional()),
    OVERLOAD_MAX_EVENT_LOOP_DELAY_MS: int(1000, 0, 60_000),
    OVERLOAD_MAX_HEAP_USED_BYTES: int(0, 0),
    SHUTDOWN_DRAIN_MS: int(1000, 0, 60_000),
    SMTP_URL: z.preprocess(
      emptyAsUndefined,
      z
        .string()
        .regex(/^smtps?:\/\/[^\s]+$/, 'must be an smtp:// or smtps:// URL')
        .optional(),
    ),
    MAIL_FROM: z.preprocess(
      emptyAsUndefined,
      z
        .string()
        .max(320)
        .regex(MAIL_FROM_PATTERN, 'must be "address@domain" or "Name <address@domain>"')
        .optional(),
    ),
    MAIL_REPLY_TO: z.preprocess(emptyAsUndefined, z.email().optional()),
    PUBLIC_APP_URL: z.preprocess(
      emptyAsUndefined,
      z
        .url({ protocol: /^https?$/ })
        .default('http://localhost:5173')
        .transform((v) => v.replace(/\/+$/, '')),
    ),
    INBOUND_EMAIL_TOKEN: z.preprocess(emptyAsUndefined, z.string().min(16).max(512).optional()),
    INBOUND_CREATE_REQUESTERS: bool(true),
    PASSWORD_RESET_RATE_LIMIT_PER_ACCOUNT: int(3, 1),
    PASSWORD_RESET_RATE_LIMIT_PER_IP: int(20, 1),
    WEBHOOK_RETRY_SCHEDULE: z
      .string()
      .regex(
        /^\s*\d{1,6}[smh]\s*(,\s*\d{1,6}[smh]\s*)*$/,
        'must be a comma list of durations like 5s,5m,30m,2h',
      )
      .default('5s,5m,30m,2h,5h,10h,10h'),
    WEBHOOK_ALLOW_PRIVATE_NETWORKS: bool(false),
    WEBHOOK_TIMEOUT_MS: int(10_000, 100, 60_000),
    REPORT_TIMEZONE: z
      .string()
      .default('UTC')
      .refine(isTimeZone, 'must be an IANA timezone such as UTC or Europe/Berlin'),
    ROLE: z.enum(['all', 'api', 'worker']).default('all'),
    WEB_CONCURRENCY: z.preprocess(emptyAsUndefined, z.coerce.number().int().min(1).max(64).optional()),
    JOBS_CONCURRENCY: int(8, 1, 100),
    JOBS_POLL_INTERVAL_MS: int(1000, 100, 60_000),
    JOBS_BATCH_SIZE: int(50, 0, 1000),
    JOBS_SHUTDOWN_TIMEOUT_MS: int(10_000, 0, 600_000),
    JOBS_WORKER_TIMEOUT_MS: int(60_000, 1000, 3_600_000),
    JOBS_RETENTION_DAYS: int(14, 1, 3650),
    UPLOAD_ORPHAN_GRACE_MINUTES: int(60, 1, 7 * 24 * 60),
    CHANGES_RETENTION_DAYS: int(7, 7, 3650),
    CHANGES_STREAM_HEARTBEAT_MS: int(15_000, 50, 300_000),
    CHANGES_STREAM_RETRY_MS: int(3000, 100, 300_000),
    CHANGES_STREAMS_PER_USER: int(10, 1, 10_000),
    CHANGES_STREAM_BUFFER_BYTES: int(1024 * 1024, 4096, 256 * 1024 * 1024),
    CHANGES_STREAM_AUTH_CHECK_MS: int(2000, 50, 60_000),
  })
  .superRefine((env, ctx) => {
    if (env.NODE_ENV === 'production') {
      const s = env.JWT_SECRET;
      const weak = s ? weakSecretReason(s) : 'is missing';
      if (weak) {
        ctx.addIssue({
          code: 'custom',
          path: ['JWT_SECRET'],
          message: `${weak}; production needs at least 32 random bytes, e.g. \`openssl rand -base64 48\``,
        });
      }
    } else if (env.JWT_SECRET !== undefined && Buffer.byteLength(env.JWT_SECRET) < 32) {
      ctx.addIssue({ code: 'custom', path: ['JWT_SECRET'], message: 'must be at least 32 bytes' });
    }
    if (env.NODE_ENV === 'production' && env.INBOUND_EMAIL_TOKEN !== undefined) {
      const weak = weakSecretReason(env.INBOUND_EMAIL_TOKEN);
      if (weak) {
        ctx.addIssue({
          code: 'custom',
          path: ['INBOUND_EMAIL_TOKEN'],
          message: `${weak}; use at least 32 random bytes, e.g. \`openssl rand -base64 48\``,
        });
      }
    }
    if (env.STORAGE === 's3' && env.S3_BUCKET === undefined) {
      ctx.addIssue({ code: 'custom', path: ['S3_BUCKET'], message: 'is required when STORAGE=s3' });
    }
    if (env.DATABASE_MIGRATION_URL !== undefined && env.DATABASE_URL === undefined) {
      ctx.addIssue({
        code: 'custom',
        path: ['DATABASE_MIGRATION_URL'],
        message: 'needs DATABASE_URL too (the embedded database has one role)',
      });
    }
    if ((env.ADMIN_EMAIL === undefined) !== (env.ADMIN_PASSWORD === undefined)) {
      ctx.addIssue({
        code: 'custom',
        path: [env.ADMIN_EMAIL === undefined ? 'ADMIN_EMAIL' : 'ADMIN_PASSWORD'],
        message: 'ADMIN_EMAIL and ADMIN_PASSWORD must be set together',
      });
    }
  });

export type Env = z.output<typeof envSchema>;

export interface Config {
  env: Env['NODE_ENV'];
  isProduction: boolean;
  port: number;
  host: string;
  databaseUrl: string | undefined;
  /** Migrations run with this URL (the tables' owner); the app with databaseUrl. Defaults to databaseUrl. */
  databaseMigrationUrl: string | undefined;
  dataDir: string;
  embeddedPgPort: number;
  /** Undefined only until resolveJwtSecret() has run (development without JWT_SECRET). */
  jwtSecret: string | undefined;
  accessTokenTtl: number;
  refreshTokenTtl: number;
  admin: { email: string; password: string } | undefined;
  allowSignup: boolean;
  corsOrigins: string[];
  redisUrl: string | undefined;
  /** Namespace of the rate-limit keys in Redis (instances sharing a budget use the same one). */
  redisKeyPrefix: string;
  rateLimitMax: number;
  loginRateLimitPerAccount: number;
  loginRateLimitPerIp: number;
  trustProxy: boolean | number | string;
  uploadMaxBytes: number;
  /** Bytes one account may upload in any 24 hours (0 = no limit): requesters, and agents/admins (staff). */
  uploadQuota: { perUserPerDay: number; perStaffPerDay: number };
  /** Where attachment bytes live. */
  storage:
    | { kind: 'local' }
    | {
        kind: 's3';
        bucket: string;
        region: string;
        endpoint: string | undefined;
        forcePathStyle: boolean;
        /** Seconds a presigned download redirect is valid; 0 = downloads stream through the API only. */
        presignedDownloadTtl: number;
      };
  bodyLimitBytes: number;
  logLevel: Env['LOG_LEVEL'];
  passwordMinLength: number;
  db: {
    poolMax: number;
    connectionTimeoutMs: number;
    statementTimeoutMs: number;
    preparedStatements: boolean;
  };
  metricsToken: string | undefined;
  /** Load shedding (503): event-loop delay in ms (0 = off); heap used in bytes (0 = 90 % of the V8 heap limit). */
  overload: { maxEventLoopDelayMs: number; maxHeapUsedBytes: number };
  /** On SIGTERM: how long to keep serving (not ready, Connection: close) before closing the listener. */
  shutdownDrainMs: number;
  mail: {
    /** smtp:// or smtps:// with credentials; undefined → messages are written as .eml files under DATA_DIR/mail. */
    smtpUrl: string | undefined;
    /** From header: { name, address }. */
    from: { name: string; address: string };
    /** Base address of the signed Reply-To (plus-addressed per ticket); defaults to the From address. */
    replyTo: string;
    /** Base URL of the web app, for links in emails (no trailing slash). */
    publicAppUrl: string;
  };
  passwordReset: { perAccountPer15Min: number; perIpPer15Min: number };
  /** POST /inbound/email: mail in as tickets and comments. */
  inbound: {
    /** The bearer token a mail server or forwarder sends; undefined → the route answers 404. */
    token: string | undefined;
    /** Unknown senders get a requester account without a password (else their mail is ignored). */
    createRequesters: boolean;
    /** Largest raw message: one upload's worth of base64 (4/3, plus line breaks) and 1 MiB for the rest. */
    maxBytes: number;
  };
  webhooks: {
    /** Retry schedule, e.g. `5s,5m,30m,2h` (parsed by the webhooks module). */
    retrySchedule: string;
    allowPrivateNetworks: boolean;
    timeoutMs: number;
  };
  /** IANA timezone the reports count days in. */
  reportTimezone: string;
  /** What this process runs: the API and the job worker (all), the API only, or the worker only. */
  role: Env['ROLE'];
  /**
   * HTTP worker processes (node:cluster). 1 = the single process serves HTTP itself; more = a primary that
   * owns the once-only work (embedded database, migrations, admin bootstrap, jobs) and forks this many workers.
   */
  webConcurrency: number;
  jobs: {
    concurrency: number;
    /** New jobs start on LISTEN/NOTIFY; retries and future runAt are found by polling this often. */
    pollIntervalMs: number;
    /**
     * Jobs fetched (and locked) per query into a worker-local queue; 0 = one query per job. Below
     * `concurrency` the runner uses `concurrency` (a smaller batch leaves workers waiting on every fetch).
     */
    batchSize: number;
    /** On shutdown, running jobs get this long to finish before they are handed back to the queue. */
    shutdownTimeoutMs: number;
    /** A worker process that has not heartbeaten for this long is presumed dead; its jobs are unlocked. */
    workerTimeoutMs: number;
    /** Finished job records (succeeded or failed) are kept this many days. */
    retentionDays: number;
    /** An upload file with no attachment row is removed once it is older than this. */
    orphanGraceMinutes: number;
  };
  /** Change feed and live stream. */
  changes: {
    /** Events are kept at least this long (≥ 7 days); older ones are pruned by a recurring job. */
    retentionDays: number;
    /** SSE comment heartbeat interval. */
    heartbeatMs: number;
    /** The `retry:` reconnection hint sent to EventSource clients. */
    retryMs: number;
    /** Open streams per user per instance; one more → 429 TOO_MANY_STREAMS. */
    streamsPerUser: number;
    /** Bytes a stream may have waiting for a slow client before it is closed. */
    bufferBytes: number;
    /** How often an open stream re-checks its credentials (session end closes it). */
    authCheckMs: number;
  };
}

/** Splits MAIL_FROM ("Name <a@b>" or "a@b") into its display name and address. */
export function parseMailFrom(
  value: string | undefined,
  publicAppUrl: string,
): { name: string; address: string } {
  if (!value) return { name: 'Helpdesk', address: `helpdesk@${new URL(publicAppUrl).hostname}` };
  const m = /^\s*"?([^"<]*?)"?\s*<([^>]+)>\s*$/.exec(value);
  if (m) return { name: m[1]!.trim(), address: m[2]!.trim() };
  return { name: '', address: value.trim() };
}

export class ConfigError extends Error {
  constructor(public readonly problems: string[]) {
    super(`Invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}

/**
 * The environment with a `.env` file in `dir` (the working directory) filled in underneath: a variable
 * set in the real environment always wins, the file only supplies the missing ones. No file, no change.
 */
export function environmentWithDotEnv(
  dir: string = process.cwd(),
  env: NodeJS.ProcessEnv = process.env,
): NodeJS.ProcessEnv {
  let text: string;
  try {
    text = readFileSync(path.join(dir, '.env'), 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return env;
    throw err;
  }
  return { ...parseEnv(text), ...env };
}

/**
 * Parses the environment once (by default the process environment over ./.env); throws ConfigError
 * naming every bad variable.
 */
export function loadConfig(source: NodeJS.ProcessEnv = environmentWithDotEnv()): Config {
  const parsed = envSchema.safeParse(source);
  if (!parsed.success) {
    throw new ConfigError(
      parsed.error.issues.map((i) => `${i.path.join('.') || '(environment)'}: ${i.message}`),
    );
  }
  const e = parsed.data;
  return {
    env: e.NODE_ENV,
    isProduction: e.NODE_ENV === 'production',
    port: e.PORT,
    host: e.HOST ?? (e.NODE_ENV === 'production' ? '0.0.0.0' : '127.0.0.1'),
    databaseUrl: e.DATABASE_URL,
    databaseMigrationUrl: e.DATABASE_MIGRATION_URL ?? e.DATABASE_URL,
    dataDir: path.resolve(e.DATA_DIR),
    embeddedPgPort: e.EMBEDDED_PG_PORT,
    jwtSecret: e.JWT_SECRET,
    accessTokenTtl: e.ACCESS_TOKEN_TTL,
    refreshTokenTtl: e.REFRESH_TOKEN_TTL,
    admin:
      e.ADMIN_EMAIL && e.ADMIN_PASSWORD ? { email: e.ADMIN_EMAIL, password: e.ADMIN_PASSWORD } : undefined,
    allowSignup: e.ALLOW_SIGNUP,
    corsOrigins: e.CORS_ORIGINS,
    redisUrl: e.REDIS_URL,
    redisKeyPrefix: e.REDIS_KEY_PREFIX,
    rateLimitMax: e.RATE_LIMIT_MAX,
    loginRateLimitPerAccount: e.LOGIN_RATE_LIMIT_PER_ACCOUNT,
    loginRateLimitPerIp: e.LOGIN_RATE_LIMIT_PER_IP,
    trustProxy: e.TRUST_PROXY,
    uploadMaxBytes: e.UPLOAD_MAX_BYTES,
    uploadQuota: {
      perUserPerDay: e.UPLOAD_QUOTA_BYTES_PER_USER_PER_DAY,
      perStaffPerDay: e.UPLOAD_QUOTA_STAFF_BYTES_PER_DAY,
    },
    storage:
      e.STORAGE === 's3'
        ? {
            kind: 's3',
            bucket: e.S3_BUCKET!,
            region: e.S3_REGION,
            endpoint: e.S3_ENDPOINT,
            forcePathStyle: e.S3_FORCE_PATH_STYLE,
            presignedDownloadTtl: e.S3_PRESIGNED_DOWNLOADS ? e.S3_PRESIGNED_TTL_SECONDS : 0,
          }
        : { kind: 'local' },
    bodyLimitBytes: e.BODY_LIMIT_BYTES,
    logLevel: e.LOG_LEVEL,
    passwordMinLength: e.PASSWORD_MIN_LENGTH,
    db: {
      poolMax: e.DB_POOL_MAX,
      connectionTimeoutMs: e.DB_CONNECTION_TIMEOUT_MS,
      statementTimeoutMs: e.DB_STATEMENT_TIMEOUT_MS,
      preparedStatements: e.DB_PREPARED_STATEMENTS,
    },
    metricsToken: e.METRICS_TOKEN,
    overload: {
      maxEventLoopDelayMs: e.OVERLOAD_MAX_EVENT_LOOP_DELAY_MS,
      maxHeapUsedBytes: e.OVERLOAD_MAX_HEAP_USED_BYTES,
    },
    shutdownDrainMs: e.SHUTDOWN_DRAIN_MS,
    mail: (() => {
      const from = parseMailFrom(e.MAIL_FROM, e.PUBLIC_APP_URL);
      return {
        smtpUrl: e.SMTP_URL,
        from,
        replyTo: e.MAIL_REPLY_TO ?? from.address,
        publicAppUrl: e.PUBLIC_APP_URL,
      };
    })(),
    passwordReset: {
      perAccountPer15Min: e.PASSWORD_RESET_RATE_LIMIT_PER_ACCOUNT,
      perIpPer15Min: e.PASSWORD_RESET_RATE_LIMIT_PER_IP,
    },
    inbound: {
      token: e.INBOUND_EMAIL_TOKEN,
      createRequesters: e.INBOUND_CREATE_REQUESTERS,
      maxBytes: Math.ceil(e.UPLOAD_MAX_BYTES * 1.4) + 1024 * 1024,
    },
    webhooks: {
      retrySchedule: e.WEBHOOK_RETRY_SCHEDULE,
      allowPrivateNetworks: e.WEBHOOK_ALLOW_PRIVATE_NETWORKS,
      timeoutMs: e.WEBHOOK_TIMEOUT_MS,
    },
    reportTimezone: e.REPORT_TIMEZONE,
    role: e.ROLE,
    webConcurrency: e.WEB_CONCURRENCY ?? (e.NODE_ENV === 'production' ? os.availableParallelism() : 1),
    jobs: {
      concurrency: e.JOBS_CONCURRENCY,
      pollIntervalMs: e.JOBS_POLL_INTERVAL_MS,
      batchSize: e.JOBS_BATCH_SIZE,
      shutdownTimeoutMs: e.JOBS_SHUTDOWN_TIMEOUT_MS,
      workerTimeoutMs: e.JOBS_WORKER_TIMEOUT_MS,
      retentionDays: e.JOBS_RETENTION_DAYS,
      orphanGraceMinutes: e.UPLOAD_ORPHAN_GRACE_MINUTES,
    },
    changes: {
      retentionDays: e.CHANGES_RETENTION_DAYS,
      heartbeatMs: e.CHANGES_STREAM_HEARTBEAT_MS,
      retryMs: e.CHANGES_STREAM_RETRY_MS,
      streamsPerUser: e.CHANGES_STREAMS_PER_USER,
      bufferBytes: e.CHANGES_STREAM_BUFFER_BYTES,
      authCheckMs: e.CHANGES_STREAM_AUTH_CHECK_MS,
    },
  };
}

/**
 * The configuration of `npm run create-admin`: the server's settings without the start-up admin pair
 * (ADMIN_EMAIL alone need not come with a password), and ADMIN_PASSWORD as the command's password
 * when none is given on the command line (keeps it out of shell history and `ps`).
 */
export function loadCreateAdminConfig(source: NodeJS.ProcessEnv = environmentWithDotEnv()): {
  config: Config;
  adminPassword: string | undefined;
} {
  const config = loadConfig({ ...source, ADMIN_EMAIL: '', ADMIN_PASSWORD: '' });
  return { config, adminPassword: source.ADMIN_PASSWORD || undefined };
}

/**
 * Outside production a missing JWT_SECRET is generated once and kept in DATA_DIR, so tokens
 * survive restarts of a development server. Production never gets here without a secret.
 */
export async function resolveJwtSecret(config: Config): Promise<Config & { jwtSecret: string }> {
  if (config.jwtSecret) return { ...config, jwtSecret: config.jwtSecret };
  const file = path.join(config.dataDir, 'jwt-secret');
  try {
    const existing = (await readFile(file, 'utf8')).trim();
    if (existing.length >= 32) return { ...config, jwtSecret: existing };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  const secret = randomBytes(48).toString('base64url');
  await mkdir(config.dataDir, { recursive: true });
  await writeFile(file, `${secret}\n`, { mode: 0o600 });
  return { ...config, jwtSecret: secret };
}
