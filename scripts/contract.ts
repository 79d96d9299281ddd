/**
 * Contract run (npm run test:contract, after npm run postman): starts the API as users do
 * (node src/server.ts, fresh database, bootstrap admin) and runs the Postman collection's
 * "Contract: main flow" folder with newman. Every request asserts status, content type and the
 * OpenAPI response schema; any failed assertion fails the run.
 * Reports: artifacts/newman/junit.xml and artifacts/newman/report.json.
 */
import { mkdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import newman from 'newman';
import { ARTIFACTS, startApiServer, tempDatabase, withCleanup } from './lib/harness.js';
import { COLLECTION, FLOW_FOLDER } from './postman.js';

const ADMIN = { email: 'contract-admin@example.test', password: 'Contract-Admin-Pass-2026' };

async function main(): Promise<number> {
  const collection = JSON.parse(await readFile(COLLECTION, 'utf8'));
  return withCleanup(async (defer) => {
    const db = await tempDatabase();
    defer(db.drop);
    const api = await startApiServer({
      name: 'contract',
      databaseUrl: db.url,
      env: { ADMIN_EMAIL: ADMIN.email, ADMIN_PASSWORD: ADMIN.password },
    });
    defer(api.stop);
    const outDir = path.join(ARTIFACTS, 'newman');
    await mkdir(outDir, { recursive: true });

    const summary = await new Promise<newman.NewmanRunSummary>((resolve, reject) => {
      newman.run(
        {
          collection,
          folder: FLOW_FOLDER,
          envVar: [
            { key: 'baseUrl', value: api.baseUrl },
            { key: 'adminEmail', value: ADMIN.email },
            { key: 'adminPassword', value: ADMIN.password },
          ],
          reporters: ['cli', 'junit', 'json'],
          reporter: {
            junit: { export: path.join(outDir, 'junit.xml') },
            json: { export: path.join(outDir, 'report.json') },
          },
          timeoutRequest: 15_000,
        },
        (err, result) => (err ? reject(err) : resolve(result)),
      );
    });
    const stats = summary.run.stats;
    const failures = summary.run.failures.length;
    const passed = (stats.assertions.total ?? 0) - (stats.assertions.failed ?? 0);
    console.log(
      `contract: ${stats.requests.total} requests, ${stats.assertions.total} assertions against ${api.baseUrl}`,
    );
    console.log(`${passed} passed, ${stats.assertions.failed ?? 0} failed`);
    if (!stats.requests.total) {
      console.error('contract: no request ran');
      return 1;
    }
    return failures ? 1 : 0;
  });
}

main().then(
  (code) => process.exit(code),
  (err) => {
    console.error('contract run failed:', err);
    process.exit(1);
  },
);
