import { defineConfig } from 'vitest/config';

/**
 * Fault tests (npm run test:faults): real server processes, a private embedded PostgreSQL that is
 * stopped and restarted, Redis on 127.0.0.1:6379. One file at a time: they measure timings on 2 cores.
 */
export default defineConfig({
  test: {
    include: ['test/faults/**/*.test.ts'],
    testTimeout: 180_000,
    hookTimeout: 120_000,
    fileParallelism: false,
    maxWorkers: 1,
  },
});
