import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import pg from 'pg';
import { runMigrations } from '../src/db/migrate.js';
import { FLOOR_JOB_KIND } from './floor.js';
import { freePort, run } from './proc.js';

/** The PostgreSQL server holding the bench databases (local/external, or an embedded one we started). */
export interface BenchServer {
  adminUrl: string;
  label: string;
  stop(): Promise<void>;
}

/**
 * `--pg URL` (default the local server on 127.0.0.1:5432, trust auth) holds one database per size.
 * `--pg embedded` starts the project's embedded PostgreSQL under data/bench-pg instead (kept, so
 * seeded databases are reused there too).
 */
export async function openBenchServer(pgOption: string): Promise<BenchServer> {
  if (pgOption === 'embedded') {
    const { startEmbeddedPostgres } = await import('../src/db/embedded.js');
    const dir = path.resolve('data/bench-pg');
    await mkdir(dir, { recursive: true });
    const server = await startEmbeddedPostgres({ dir, port: await freePort(), database: 'postgres' });
    return { adminUrl: server.url, label: `embedded PostgreSQL in ${dir}`, stop: server.stop };
  }
  const client = new pg.Client({ connectionString: pgOption, connectionTimeoutMillis: 3000 });
  try {
    await client.connect();
    const { rows } = await client.query<{ v: string }>("SELECT current_setting('server_version') AS v");
    const u = new URL(pgOption);
    return {
      adminUrl: pgOption,
      label: `PostgreSQL ${rows[0]?.v} at ${u.hostname}:${u.port || 5432}`,
      stop: async () => {},
    };
  } catch (err) {
    throw new Error(
      `cannot reach PostgreSQL at ${pgOption} (${(err as Error).message}); pass --pg URL or --pg embedded`,
    );
  } finally {
    await client.end().catch(() => {});
  }
}

export function databaseUrl(adminUrl: string, name: string): string {
  const u = new URL(adminUrl);
  u.pathname = `/${name}`;
  return u.toString();
}

async function withClient<T>(url: string, fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    return await fn(c);
  } finally {
    await c.end();
  }
}

/** Tickets and comments the write scenarios create carry these markers, so the next run can remove them. */
export const CREATED_TITLE_PREFIX = 'bench-created';

/** What the create scenarios send: numbered titles under CREATED_TITLE_PREFIX, so removeCreatedTickets finds them. */
export function createdTicketBodies(): () => string {
  let n = 0;
  return () =>
    JSON.stringify({
      title: `${CREATED_TITLE_PREFIX} ${++n}: cannot open the shared calendar`,
      description: 'Since this morning the shared calendar shows an error when I open it. Steps: …',
      priority: 'normal',
    });
}
export const COMMENT_BODY_PREFIX = 'bench-comment';

/**
 * helpdesk_bench_<size> (or `name`, e.g. one database shared by several benches): migrated and seeded once
 * through `npm run seed`, then reused by every run
 * (the size is recorded in bench_state only after the seed succeeded, so an interrupted seed is redone).
 */
export async function ensureDataset(
  server: BenchServer,
  size: number,
  opts: { reseed: boolean; log: (msg: string) => void; name?: string; commentsPerTicket?: number },
): Promise<string> {
  const name = opts.name ?? `helpdesk_bench_${size}`;
  const url = databaseUrl(server.adminUrl, name);

  const exists = await withClient(server.adminUrl, async (c) => {
    const { rowCount } = await c.query('SELECT 1 FROM pg_database WHERE datname = $1', [name]);
    return rowCount === 1;
  });
  let seeded = false;
  if (exists && !opts.reseed) {
    seeded = await withClient(url, async (c) => {
      const { rows } = await c
        .query<{ tickets: number }>(
          `SELECT tickets FROM bench_state WHERE tickets = $1 AND (SELECT to_regclass('public.tickets')) IS NOT NULL`,
          [size],
        )
        .catch(() => ({ rows: [] as { tickets: number }[] }));
      return rows.length === 1;
    });
  }

  if (seeded) {
    opts.log(`database ${name}: already seeded with ${size.toLocaleString('en')} tickets, reused`);
    await runMigrations(url); // a migration added since (e.g. an index) applies to the reused data
    await removeBenchWrites(url);
    return url;
  }

  opts.log(`database ${name}: creating and seeding ${size.toLocaleString('en')} tickets`);
  await withClient(server.adminUrl, async (c) => {
    await c.query(`DROP DATABASE IF EXISTS ${c.escapeIdentifier(name)} WITH (FORCE)`);
    await c.query(`CREATE DATABASE ${c.escapeIdentifier(name)}`);
  });
  await runMigrations(url);
  const t0 = Date.now();
  const seedArgs = ['--tickets', String(size)];
  if (opts.commentsPerTicket !== undefined)
    seedArgs.push('--comments-per-ticket', String(opts.commentsPerTicket));
  await run('npm', ['run', '--silent', 'seed', '--', ...seedArgs], {
    ...process.env,
    NODE_ENV: 'development',
    DATABASE_URL: url,
  });
  opts.log(`seeded in ${((Date.now() - t0) / 1000).toFixed(1)} s; VACUUM ANALYZE`);
  await withClient(url, async (c) => {
    await c.query('VACUUM (ANALYZE)');
    await c.query(
      'CREATE TABLE IF NOT EXISTS bench_state (tickets integer NOT NULL, seeded_at timestamptz NOT NULL)',
    );
    await c.query('DELETE FROM bench_state');
    await c.query('INSERT INTO bench_state VALUES ($1, now())', [size]);
  });
  return url;
}

/**
 * Deletes the tickets a create scenario made (CREATED_TITLE_PREFIX) and vacuums, so the next run lists the same
 * dataset. tickets.merged_into_id references tickets without an index, so each deleted row would scan the table
 * for referencing rows; the bench's own tickets have none (no merges, comments or attachments), so this session
 * skips the foreign-key triggers for the delete. `also` runs on the same connection afterwards.
 */
export async function removeCreatedTickets(
  url: string,
  also?: (c: pg.Client) => Promise<unknown>,
): Promise<void> {
  await withClient(url, async (c) => {
    await c.query('BEGIN');
    await c.query('SET LOCAL session_replication_role = replica');
    const { rowCount } = await c.query('DELETE FROM tickets WHERE title LIKE $1', [
      `${CREATED_TITLE_PREFIX}%`,
    ]);
    await c.query('COMMIT');
    // The deleted rows sit at the newest end of the updated_at indexes: until vacuumed, every list walks them.
    if (rowCount) await c.query('VACUUM (ANALYZE) tickets');
    await also?.(c);
  });
}

/** removeCreatedTickets, then the floor's job rows (its create enqueues one per ticket; nothing runs them). */
export function removeCreatedTicketsAndFloorJobs(url: string): Promise<void> {
  return removeCreatedTickets(url, (c) =>
    c.query(
      `DELETE FROM graphile_worker._private_jobs j USING graphile_worker._private_tasks t
        WHERE j.task_id = t.id AND t.identifier = $1`,
      [FLOOR_JOB_KIND],
    ),
  );
}

/** Rows created by an earlier run's write scenarios (the dataset stays the size it was seeded to). */
async function removeBenchWrites(url: string): Promise<void> {
  await withClient(url, async (c) => {
    const t = await c.query('DELETE FROM tickets WHERE title LIKE $1', [`${CREATED_TITLE_PREFIX}%`]);
    const m = await c.query('DELETE FROM comments WHERE body LIKE $1', [`${COMMENT_BODY_PREFIX}%`]);
    await c.query('DELETE FROM sessions'); // and, by cascade, their refresh tokens
    if ((t.rowCount ?? 0) + (m.rowCount ?? 0) > 1000) await c.query('VACUUM (ANALYZE) tickets, comments');
  });
}

export interface Sample {
  /** Live ticket ids (GET /tickets/{id}). */
  ticketIds: number[];
  /** Live tickets that still accept comments (not closed/cancelled). */
  commentableIds: number[];
  totalTickets: number;
}

/** Random live ticket ids for the get-by-id and add-comment scenarios, read once before the load. */
export async function sampleTickets(url: string): Promise<Sample> {
  return withClient(url, async (c) => {
    const total = await c.query<{ n: number }>(
      'SELECT count(*)::int AS n FROM tickets WHERE deleted_at IS NULL',
    );
    const ids = await c.query<{ id: number }>(
      'SELECT id FROM tickets WHERE deleted_at IS NULL ORDER BY random() LIMIT 5000',
    );
    const open = await c.query<{ id: number }>(
      `SELECT id FROM tickets WHERE deleted_at IS NULL AND status NOT IN ('closed', 'cancelled')
        ORDER BY random() LIMIT 500`,
    );
    return {
      ticketIds: ids.rows.map((r) => r.id),
      commentableIds: open.rows.map((r) => r.id),
      totalTickets: total.rows[0]?.n ?? 0,
    };
  });
}

export async function describeUsers(
  url: string,
): Promise<{ agents: { email: string }[]; requesters: { email: string; tickets: number }[] }> {
  return withClient(url, async (c) => {
    const agents = await c.query<{ email: string }>(
      `SELECT email FROM users WHERE role = 'agent' AND active ORDER BY created_at, email LIMIT 5`,
    );
    const requesters = await c.query<{ email: string; tickets: number }>(
      `SELECT u.email, count(t.id)::int AS tickets
         FROM users u JOIN tickets t ON t.requester_id = u.id AND t.deleted_at IS NULL
        WHERE u.role = 'requester' AND u.active
        GROUP BY u.id ORDER BY count(t.id) DESC LIMIT 5`,
    );
    return { agents: agents.rows, requesters: requesters.rows };
  });
}

/**
 * A fresh database `name` on the bench server (a leftover of an interrupted run is dropped first), migrated
 * unless `migrate: false` (a server that migrates its own schema); drop() removes it.
 */
export async function freshDatabase(
  adminUrl: string,
  name: string,
  opts: { migrate?: boolean } = {},
): Promise<{ url: string; drop(): Promise<void> }> {
  await withClient(adminUrl, async (c) => {
    await c.query(`DROP DATABASE IF EXISTS ${c.escapeIdentifier(name)} WITH (FORCE)`);
    await c.query(`CREATE DATABASE ${c.escapeIdentifier(name)}`);
  });
  const url = databaseUrl(adminUrl, name);
  if (opts.migrate !== false) await runMigrations(url);
  return {
    url,
    drop: () =>
      withClient(adminUrl, async (c) => {
        await c.query(`DROP DATABASE IF EXISTS ${c.escapeIdentifier(name)} WITH (FORCE)`);
      }),
  };
}

/** Jobs of the application still to run now (the floor's own are never run). */
export async function pendingJobs(url: string): Promise<number> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    const { rows } = await c.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM graphile_worker.jobs
        WHERE task_identifier <> $1 AND attempts < max_attempts AND run_at <= now()`,
      [FLOOR_JOB_KIND],
    );
    return rows[0]?.n ?? 0;
  } finally {
    await c.end();
  }
}

/** Waits (at most 120 s) until the job queue has nothing left to run now. */
export async function drainJobs(url: string): Promise<void> {
  const deadline = Date.now() + 120_000;
  while ((await pendingJobs(url)) > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 250));
}
