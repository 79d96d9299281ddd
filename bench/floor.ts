/**
 * The benchmark's floor: the cheapest server that can answer the hot ticket requests at all. Bare Fastify
 * routes run the same SQL statements as the real API (captured with bench/capture-sql.ts) through a pg
 * Pool of the same size, and return the rows as JSON. No auth, no validation, no permission check, no
 * mapping, no response schema: whatever the real API costs above this is the price of its rules.
 * Used only by the benches (bench/run.ts, bench/cpu.ts); never part of the application.
 *
 *   node dist/bench/floor.js --port 4000 --db postgres://… --pool 10
 *
 *   GET  /tickets                    the agent's default list (live tickets, -updatedAt, 25 + 1)
 *   GET  /tickets?status=open        the same with a status filter
 *   GET  /tickets?requesterId=<uuid> one requester's tickets (what a requester lists)
 *   GET  /tickets/:id                one ticket with requester and assignee
 *   POST /tickets                    create: ticket, SLA clock, audit row, change event and mail job in one
 *                                    transaction ({title, description, requesterId, actorName} body)
 *   GET  /hello                      {"status":"ok"}: the bare-Fastify floor of /healthz (no database)
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import Fastify from 'fastify';
import pg from 'pg';

const VIEW_COLUMNS = `t.id, t.title, t.description, t.status, t.priority, t.type, t.tags, t.requester_id,
       t.assignee_id, t.team_id, t.version, t.created_at, t.updated_at, t.first_response_at, t.solved_at,
       t.closed_at, t.deleted_at, t.sla_policy_id, t.sla_first_response_due_at, t.sla_resolution_due_at,
       (SELECT s.first_response_breached_at FROM ticket_sla s WHERE s.ticket_id = t.id) AS sla_first_response_breached_at,
       (SELECT s.resolution_breached_at FROM ticket_sla s WHERE s.ticket_id = t.id) AS sla_resolution_breached_at,
       t.merged_into_id,
       r.name AS requester_name, r.email AS requester_email, a.name AS assignee_name`;

const listSql = (where: string) => `
SELECT ${VIEW_COLUMNS},
       to_char(t.updated_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') AS sort_value
  FROM tickets t
  JOIN users r ON r.id = t.requester_id
  LEFT JOIN users a ON a.id = t.assignee_id
 WHERE ${where}
 ORDER BY t.updated_at DESC, t.id DESC
 LIMIT 26`;

/**
 * Mirrors the agent's default list (GET /tickets, sort -updatedAt, limit 25) in
 * src/modules/tickets/tickets.repository.ts: live tickets, newest update first, one query with the
 * requester and assignee joined, limit + 1 to know whether there is a next page.
 */
export const FLOOR_LIST_SQL = listSql('t.deleted_at IS NULL');
export const FLOOR_LIST_STATUS_SQL = listSql('t.deleted_at IS NULL AND t.status = $1');
export const FLOOR_LIST_REQUESTER_SQL = listSql('t.deleted_at IS NULL AND t.requester_id = $1');
export const FLOOR_GET_SQL = `
SELECT ${VIEW_COLUMNS}
  FROM tickets t
  JOIN users r ON r.id = t.requester_id
  LEFT JOIN users a ON a.id = t.assignee_id
 WHERE t.id = $1
 LIMIT 1`;

/** The statements of POST /tickets, in the API's order (bench/capture-sql.ts shows them). */
const CREATE = {
  insert: `INSERT INTO tickets (title, description, priority, type, tags, requester_id, team_id, created_at, updated_at)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id`,
  slaState: `SELECT id, status, priority, type, team_id, created_at, first_response_at, sla_policy_id,
                    sla_first_response_due_at, sla_resolution_due_at, sla_resolution_started_at,
                    sla_resolution_consumed_ms, CASE WHEN isfinite(sla_next_due_at) THEN sla_next_due_at END
               FROM tickets WHERE id = $1 LIMIT 1`,
  slaPolicies: `SELECT id, name, position, applies_to_team_id, applies_to_type, targets, business_hours, created_at, updated_at
                  FROM sla_policies ORDER BY position, created_at, id`,
  slaUpdate: `UPDATE tickets SET sla_policy_id = $1, sla_first_response_due_at = $2, sla_resolution_due_at = $3,
                     sla_resolution_started_at = $4, sla_resolution_consumed_ms = $5,
                     sla_next_due_at = 'infinity'::timestamptz
               WHERE id = $6`,
  audit: `INSERT INTO audit_events (actor_id, actor_role, action, entity_type, entity_id, trace_id, ip, user_agent, changes, metadata)
          VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING *`,
  change: `INSERT INTO change_events (type, ticket_id, requester_id, staff_only, actor_id, actor_name, actor_role, trace_id, data)
           VALUES ($1, $2, (SELECT requester_id FROM tickets WHERE id = $3), $4, $5, $6, $7, $8, $9) RETURNING *`,
  job: `SELECT id FROM graphile_worker.add_job(identifier => $1::text, payload => $2::json, run_at => $3::timestamptz,
          max_attempts => $4::int, job_key => $5::text, queue_name => $6::text, flags => null::text[])`,
  webhooks: `SELECT id FROM webhooks WHERE active = $1 AND events && ARRAY['*', $2]::text[] LIMIT $3`,
};

/** Jobs the floor enqueues carry this kind; nothing runs them and the bench deletes them afterwards. */
export const FLOOR_JOB_KIND = 'bench.floor';

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

  app.get('/tickets', async (request) => {
    const q = request.query as { status?: string; requesterId?: string };
    const { rows } = q.status
      ? await pool.query(FLOOR_LIST_STATUS_SQL, [q.status])
      : q.requesterId
        ? await pool.query(FLOOR_LIST_REQUESTER_SQL, [q.requesterId])
        : await pool.query(FLOOR_LIST_SQL);
    return { data: rows.slice(0, 25), nextCursor: rows.length > 25 ? 'next' : null };
  });
  app.get('/tickets/:id', async (request, reply) => {
    const { rows } = await pool.query(FLOOR_GET_SQL, [Number((request.params as { id: string }).id)]);
    if (!rows[0]) return reply.code(404).send({ status: 404 });
    return rows[0];
  });
  app.post('/tickets', async (request, reply) => {
    const body = request.body as {
      title: string;
      description: string;
      requesterId: string;
      actorName?: string;
    };
    const client = await pool.connect();
    try {
      await client.query('BEGIN');
      const now = new Date();
      const { rows } = await client.query(CREATE.insert, [
        body.title,
        body.description,
        'normal',
        'question',
        [],
        body.requesterId,
        null,
        now,
        now,
      ]);
      const id = rows[0].id as number;
      await client.query(CREATE.slaState, [id]);
      await client.query(CREATE.slaPolicies);
      await client.query(CREATE.slaUpdate, [null, null, null, null, 0, id]);
      const view = (await client.query(FLOOR_GET_SQL, [id])).rows[0];
      await client.query(CREATE.audit, [
        body.requesterId,
        'requester',
        'ticket.created',
        'ticket',
        String(id),
        request.id,
        request.ip,
        null,
        JSON.stringify({ title: [null, body.title] }),
        JSON.stringify({ ticketId: String(id) }),
      ]);
      const change = await client.query(CREATE.change, [
        'ticket.created',
        id,
        id,
        false,
        body.requesterId,
        body.actorName ?? null,
        'requester',
        request.id,
        JSON.stringify({ ticket: view }),
      ]);
      await client.query(CREATE.job, [
        FLOOR_JOB_KIND,
        JSON.stringify({ eventId: String(change.rows[0].id) }),
        null,
        5,
        null,
        null,
      ]);
      await client.query(CREATE.webhooks, [true, 'ticket.created', 1]);
      await client.query('COMMIT');
      return reply.code(201).send(view);
    } catch (err) {
      await client.query('ROLLBACK').catch(() => {});
      throw err;
    } finally {
      client.release();
    }
  });
  app.get('/hello', async () => ({ status: 'ok' }));
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

// Only when run as a program: the benches import its constants.
if (process.argv[1] && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) {
  main().catch((err) => {
    console.error('floor failed:', err);
    process.exit(1);
  });
}
