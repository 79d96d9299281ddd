import { defineConfig } from 'drizzle-kit';

// `npm run db:generate` diffs src/db/schema against the last snapshot in migrations/ and writes SQL.
// It needs no database connection; migrations are applied by src/db/migrate.ts.
export default defineConfig({
  dialect: 'postgresql',
  schema: './src/db/schema/index.ts',
  out: './migrations',
  casing: 'snake_case',
});
