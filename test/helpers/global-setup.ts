import type { TestProject } from 'vitest/node';
import { runMigrations } from '../../src/db/migrate.js';
import { tempDatabase } from './temp-database.js';

declare module 'vitest' {
  export interface ProvidedContext {
    databaseUrl: string;
  }
}

/**
 * One throwaway database per test run: on TEST_DATABASE_URL's server when set (created and dropped
 * here), otherwise on an embedded PostgreSQL in a temporary directory (removed afterwards).
 */
export default async function setup(project: TestProject) {
  const db = await tempDatabase('helpdesk_test');
  await runMigrations(db.url);
  project.provide('databaseUrl', db.url);
  return db.drop;
}
