import { sql } from 'drizzle-orm';
import type { Database } from '../../db/client.js';
import { ServiceUnavailableError } from '../../lib/errors.js';

export function createHealthRepository({ db }: { db: Database }) {
  return {
    /** Throws 503 when the database does not answer (down, restarting, or past the connection timeout). */
    async checkDatabase(): Promise<void> {
      try {
        await db.execute(sql`select 1`);
      } catch {
        throw new ServiceUnavailableError('The database is not answering.', 2);
      }
    },
  };
}

export type HealthRepository = ReturnType<typeof createHealthRepository>;
