import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/config.js';

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
    expect(loadConfig({ NODE_ENV: 'production', JWT_SECRET: 'x'.repeat(40) }).host).toBe('0.0.0.0');
  });

  it('runs API and worker in one process by default; ROLE picks api or worker, nothing else', () => {
    expect(loadConfig({}).role).toBe('all');
    expect(loadConfig({ ROLE: 'api' }).role).toBe('api');
    expect(loadConfig({ ROLE: 'worker' }).role).toBe('worker');
    expect(problemsOf({ ROLE: 'scheduler' })[0]).toMatch(/^ROLE: /);
    expect(loadConfig({}).jobs).toEqual({
      concurrency: 8,
      pollIntervalMs: 1000,
      shutdownTimeoutMs: 10_000,
      retentionDays: 14,
      orphanGraceMinutes: 60,
    });
    expect(problemsOf({ JOBS_CONCURRENCY: '0' })[0]).toMatch(/^JOBS_CONCURRENCY: /);
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

  it('refuses to start in production without JWT_SECRET', () => {
    expect(problemsOf({ NODE_ENV: 'production' })).toEqual([
      expect.stringMatching(/^JWT_SECRET: is required/),
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
