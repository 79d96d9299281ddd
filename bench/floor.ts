/**
 * The benchmark's floor: the cheapest server that can answer "list tickets" at all. A bare Fastify
 * route runs the same SQL shape as the real list query (tickets + requester/assignee joins, keyset
 * order, limit + 1) through a pg Pool of the same size, and returns the rows as JSON. No auth, no
 * validation, no permission check, no mapping, no response schema: whatever the real API costs above
 * this is the price of its rules. Used only by bench/run.ts; never part of the application.
 *
 *   node dist/bench/floor.js --port 4000 --db postgres://… --pool 10
 */
import Fastify from 'fastify';
import pg from 'pg';

/**
 * Mirrors the agent's default list (GET /tickets, sort -updatedAt, limit 25) in
 * src/modules/tickets/tickets.repository.ts: live tickets, newest update first, one query with the
 * requester and assignee joined, limit + 1 to know whether there is a next page.
 */
export const FLOOR_LIST_SQL = `
SELECT t.id, t.title, t.description, t.status, t.priority, t.type, t.tags, t.requester_id, t.assignee_id,
       t.team_id, t.version, t.created_at, t.updated_at, t.first_response_at, t.solved_at, t.closed_at,
       t.deleted_at, r.name AS requester_name, r.email AS requester_email, a.name AS assignee_name,
       to_char(t.updated_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') AS sort_value
  FROM tickets t
  JOIN users r ON r.id = t.requester_id
  LEFT JOIN users a ON a.id = t.assignee_id
 WHERE t.deleted_at IS NULL
 ORDER BY t.updated_at DESC, t.id DESC
 LIMIT $1`;

function arg(name: string, fallback?: string): string {
  const i = process.argv.indexOf(`--${name}`);
  const v = i >= 0 ? process.argv[i + 1] : fallback;
  if (v === undefined) throw new Error(`floor: --${name} is required`);
  return v;
}

async function main() {
  const port = Number(arg('port'));
  const pool = new pg.Pool({ connectionString: arg('db'), max: Number(arg('pool', '10')) });
  pool.on('error', () => {});
  const app = Fastify({ logger: false });

  app.get('/tickets', async () => {
    const { rows } = await pool.query(FLOOR_LIST_SQL, [26]);
    return { data: rows.slice(0, 25), nextCursor: rows.length > 25 ? 'next' : null };
  });
  app.get('/readyz', async () => {
    await pool.query('SELECT 1');
    return { status: 'ok' };
  });

  const stop = async () => {
    setTimeout(() => process.exit(0), 5000).unref(); // exits by itself once idle; this is the backstop
    await app.close();
    await pool.end();
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  await app.listen({ port, host: '127.0.0.1' });
}

main().catch((err) => {
  console.error('floor failed:', err);
  process.exit(1);
});
