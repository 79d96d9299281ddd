/**
 * Writes the OpenAPI document exactly as the server serves it at /openapi.json (built by
 * @fastify/swagger from the routes' zod schemas) to artifacts/openapi/openapi.{json,yaml},
 * for the spec lint, the typed client generator and the Postman collection.
 *
 * Usage: node --import tsx scripts/export-openapi.ts [outDir]
 * Needs a database for buildApp: TEST_DATABASE_URL's server when set, else an embedded one in a temp dir.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { type AppConfig, buildApp } from '../src/app.js';
import { loadConfig } from '../src/config.js';
import { runMigrations } from '../src/db/migrate.js';
import { ARTIFACTS, tempDatabase, withCleanup } from './lib/harness.js';

export const SPEC_DIR = path.join(ARTIFACTS, 'openapi');
export const SPEC_JSON = path.join(SPEC_DIR, 'openapi.json');

export async function exportOpenApi(outDir = SPEC_DIR): Promise<string> {
  return withCleanup(async (defer) => {
    const db = await tempDatabase();
    defer(db.drop);
    await runMigrations(db.url);
    const dataDir = await mkdtemp(path.join(os.tmpdir(), 'helpdesk-export-'));
    defer(() => rm(dataDir, { recursive: true, force: true }));
    const config = loadConfig({
      NODE_ENV: 'test',
      LOG_LEVEL: 'silent',
      JWT_SECRET: randomBytes(32).toString('hex'),
      DATABASE_URL: db.url,
      DATA_DIR: dataDir,
    }) as AppConfig;
    const app = await buildApp(config, { logger: false });
    defer(() => app.close());
    const doc = app.swagger();
    await mkdir(outDir, { recursive: true });
    const file = path.join(outDir, 'openapi.json');
    await writeFile(file, `${JSON.stringify(doc, null, 2)}\n`);
    await writeFile(path.join(outDir, 'openapi.yaml'), app.swagger({ yaml: true }));
    return file;
  });
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const out = process.argv[2] ? path.resolve(process.argv[2]) : SPEC_DIR;
  exportOpenApi(out)
    .then((file) => console.log(`OpenAPI document written to ${path.relative(process.cwd(), file)}`))
    .catch((err) => {
      console.error('export-openapi failed:', err);
      process.exit(1);
    });
}
