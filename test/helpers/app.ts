import { randomBytes } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { inject } from 'vitest';
import { type AppConfig, type AppOverrides, buildApp } from '../../src/app.js';
import { loadConfig } from '../../src/config.js';

/** Config for a test app on the run's throwaway database; env entries override defaults. */
export function testConfig(env: Record<string, string> = {}): AppConfig {
  const config = loadConfig({
    NODE_ENV: 'test',
    LOG_LEVEL: 'silent',
    JWT_SECRET: randomBytes(32).toString('hex'),
    DATABASE_URL: inject('databaseUrl'),
    DATA_DIR: 'data/test',
    // A busy 2-core test machine stalls the event loop while workers import; shedding must not answer
    // tests 503 (test/e2e/overload.test.ts exercises load shedding on its own).
    OVERLOAD_MAX_EVENT_LOOP_DELAY_MS: '0',
    ...env,
  });
  return config as AppConfig;
}

export async function createTestApp(
  env: Record<string, string> = {},
  overrides: AppOverrides = {},
): Promise<FastifyInstance> {
  return buildApp(testConfig(env), { logger: false, ...overrides });
}
