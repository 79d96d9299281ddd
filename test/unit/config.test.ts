import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseEnv } from 'node:util';
import { afterEach, describe, expect, it } from 'vitest';
import { ConfigError, environmentWithDotEnv, loadConfig, weakSecretReason } from '../../src/config.js';

const RANDOM_SECRET = randomBytes(48).toString('base64url');

function problemsOf(env: Record<string, string>): string[] {
  try {
    loadConfig(env);
  } catch (err) {
    if (err instanceof ConfigError) return err.problems;
    throw err;
  }
  return [];
}

describe('config', () => {
  it('has the contract defaults', () => {
    const c = loadConfig({});
    expect(c).toMatchObject({
      port: 3000,
      host: '127.0.0.1',
      databaseUrl: undefined,
      accessTokenTtl: 900,
      refreshTokenTtl: 30 * 86_400,
      allowSignup: true,
      rateLimitMax: 600,
      loginRateLimitPerAccount: 10,
      loginRateLimitPerIp: 100,
      trustProxy: false,
      uploadMaxBytes: 10 * 1024 * 1024,
      logLevel: 'info',
      passwordMinLength: 12,
      corsOrigins: [],
    });
    expect(c.dataDir.endsWith('data')).toBe(true);
  });

  it('listens on 0.0.0.0 by default in production', () => {
    expect(loadConfig({ NODE_ENV: 'production', JWT_SECRET: RANDOM_SECRET }).host).toBe('0.0.0.0');
  });

  it('serves HTTP from one process outside production, from one worker per CPU in production', () => {
    expect(loadConfig({}).webConcurrency).toBe(1);
    expect(loadConfig({ NODE_ENV: 'test' }).webConcurrency).toBe(1);
    expect(loadConfig({ NODE_ENV: 'production', JWT_SECRET: RANDOM_SECRET }).webConcurrency).toBe(
      os.availableParallelism(),
    );
    expect(
      loadConfig({ NODE_ENV: 'production', JWT_SECRET: RANDOM_SECRET, WEB_CONCURRENCY: '3' }).webConcurrency,
    ).toBe(3);
    expect(loadConfig({ WEB_CONCURRENCY: '' }).webConcurrency).toBe(1);
    expect(problemsOf({ WEB_CONCURRENCY: '0' })[0]).toMatch(/^WEB_CONCURRENCY: /);
    expect(problemsOf({ WEB_CONCURRENCY: 'many' })[0]).toMatch(/^WEB_CONCURRENCY: /);
  });

  it('runs API and worker in one process by default; ROLE picks api or worker, nothing else', () => {
    expect(loadConfig({}).role).toBe('all');
    expect(loadConfig({ ROLE: 'api' }).role).toBe('api');
    expect(loadConfig({ ROLE: 'worker' }).role).toBe('worker');
    expect(problemsOf({ ROLE: 'scheduler' })[0]).toMatch(/^ROLE: /);
    expect(loadConfig({}).jobs).toEqual({
      concurrency: 8,
      pollIntervalMs: 1000,
      batchSize: 50,
      shutdownTimeoutMs: 10_000,
      workerTimeoutMs: 60_000,
      retentionDays: 14,
      orphanGraceMinutes: 60,
    });
    expect(problemsOf({ JOBS_CONCURRENCY: '0' })[0]).toMatch(/^JOBS_CONCURRENCY: /);
    expect(problemsOf({ JOBS_WORKER_TIMEOUT_MS: '500' })[0]).toMatch(/^JOBS_WORKER_TIMEOUT_MS: /);
  });

  it('names every bad variable at once', () => {
    const problems = problemsOf({
      PORT: 'eighty',
      LOG_LEVEL: 'loud',
      DATABASE_URL: 'mysql://x',
      ALLOW_SIGNUP: 'maybe',
    });
    const names = problems.map((p) => p.split(':')[0]);
    expect(names).toEqual(expect.arrayContaining(['PORT', 'LOG_LEVEL', 'DATABASE_URL', 'ALLOW_SIGNUP']));
  });

  it('inbound email: production refuses a weak INBOUND_EMAIL_TOKEN; requesters are created by default', () => {
    expect(
      problemsOf({
        NODE_ENV: 'production',
        JWT_SECRET: RANDOM_SECRET,
        INBOUND_EMAIL_TOKEN: 'changeme-changeme-changeme-changeme',
      }),
    ).toEqual([expect.stringMatching(/^INBOUND_EMAIL_TOKEN: is a placeholder value/)]);
    const c = loadConfig({
      NODE_ENV: 'production',
      JWT_SECRET: RANDOM_SECRET,
      INBOUND_EMAIL_TOKEN: RANDOM_SECRET,
    });
    expect(c.inbound).toMatchObject({ token: RANDOM_SECRET, createRequesters: true });
    expect(loadConfig({ INBOUND_CREATE_REQUESTERS: 'false' }).inbound).toMatchObject({
      token: undefined,
      createRequesters: false,
    });
  });

  it('refuses to start in production without JWT_SECRET', () => {
    expect(problemsOf({ NODE_ENV: 'production' })).toEqual([
      expect.stringMatching(/^JWT_SECRET: is missing; production needs at least 32 random bytes/),
    ]);
  });

  it('refuses a short or example JWT_SECRET in production', () => {
    expect(problemsOf({ NODE_ENV: 'production', JWT_SECRET: 'short' })[0]).toMatch(/^JWT_SECRET/);
    expect(
      problemsOf({
        NODE_ENV: 'production',
        JWT_SECRET: 'change-me-to-a-long-random-secret-of-at-least-32-bytes',
      })[0],
    ).toMatch(/^JWT_SECRET/);
  });

  it.each([
    ['one repeated character', 'x'.repeat(40), /one short pattern repeated/],
    ['a short pattern repeated', 'abc123'.repeat(8), /one short pattern repeated/],
    ['the placeholder with spaces', 'change me to a long random secret of at least 32 bytes', /whitespace/],
    ['a placeholder without spaces', 'ChangeMe-ChangeMe-please-0123456789-xyz', /placeholder/],
    ['few distinct characters', 'aabbaabbaabbababbbaabababbbabaaababab', /distinct characters/],
    ['mostly one character', `${'a'.repeat(60)}0123456789`, /low-entropy \(about \d+ bits\)/],
  ])('refuses a low-entropy JWT_SECRET in production: %s', (_name, secret, reason) => {
    const [problem] = problemsOf({ NODE_ENV: 'production', JWT_SECRET: secret });
    expect(problem).toMatch(/^JWT_SECRET: /);
    expect(problem).toMatch(reason);
    expect(problem).toMatch(/openssl rand -base64 48/);
  });

  it('accepts random secrets in production (openssl rand -base64 48 / -hex 32)', () => {
    for (let i = 0; i < 50; i++) {
      expect(weakSecretReason(randomBytes(48).toString('base64'))).toBeNull();
      expect(weakSecretReason(randomBytes(32).toString('hex'))).toBeNull();
    }
  });

  it('never lets PASSWORD_MIN_LENGTH go below 8', () => {
    expect(problemsOf({ PASSWORD_MIN_LENGTH: '6' })[0]).toMatch(/^PASSWORD_MIN_LENGTH/);
  });

  it('requires ADMIN_EMAIL and ADMIN_PASSWORD together', () => {
    expect(problemsOf({ ADMIN_EMAIL: 'a@b.co' })[0]).toMatch(/^ADMIN_PASSWORD/);
  });

  it('runs migrations with DATABASE_MIGRATION_URL, defaulting to DATABASE_URL', () => {
    const app = 'postgres://app@db/helpdesk';
    const ownerUrl = 'postgres://owner@db/helpdesk';
    expect(loadConfig({ DATABASE_URL: app }).databaseMigrationUrl).toBe(app);
    expect(loadConfig({ DATABASE_URL: app, DATABASE_MIGRATION_URL: ownerUrl }).databaseMigrationUrl).toBe(
      ownerUrl,
    );
    expect(loadConfig({}).databaseMigrationUrl).toBeUndefined();
    expect(problemsOf({ DATABASE_MIGRATION_URL: ownerUrl })[0]).toMatch(
      /^DATABASE_MIGRATION_URL: needs DATABASE_URL/,
    );
  });

  it('parses lists and proxies', () => {
    const c = loadConfig({ CORS_ORIGINS: 'http://a.test, http://b.test', TRUST_PROXY: '1' });
    expect(c.corsOrigins).toEqual(['http://a.test', 'http://b.test']);
    expect(c.trustProxy).toBe(1);
    expect(problemsOf({ CORS_ORIGINS: 'not a url' })[0]).toMatch(/^CORS_ORIGINS/);
  });
});

describe('.env file in the working directory', () => {
  let dir: string | undefined;
  afterEach(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
    dir = undefined;
  });
  const withFile = (text: string) => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'helpdesk-dotenv-'));
    writeFileSync(path.join(dir, '.env'), text);
    return dir;
  };

  it('supplies variables the environment does not set', () => {
    const env = environmentWithDotEnv(withFile('PORT=4100\nLOG_LEVEL=debug\n# comment\n'), {});
    expect(loadConfig(env)).toMatchObject({ port: 4100, logLevel: 'debug' });
  });

  it('real environment variables win over the file, also when set to an empty string', () => {
    const env = environmentWithDotEnv(withFile('PORT=4100\nLOG_LEVEL=debug\nRATE_LIMIT_MAX=7\n'), {
      PORT: '4200',
      LOG_LEVEL: '',
    });
    expect(env).toMatchObject({ PORT: '4200', LOG_LEVEL: '', RATE_LIMIT_MAX: '7' });
  });

  it('without a .env file the environment is used as it is', () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'helpdesk-dotenv-'));
    const real = { PORT: '4300' };
    expect(environmentWithDotEnv(dir, real)).toEqual(real);
  });

  it('.env.example copied to .env starts as it is (every empty line means "default")', () => {
    const example = readFileSync(path.join(import.meta.dirname, '../../.env.example'), 'utf8');
    expect(() => loadConfig(parseEnv(example))).not.toThrow();
  });
});
