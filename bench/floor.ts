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
  // The ticket and its SLA clock in one statement, inserted only while the SLA policies are those the plan
  // was made from, reading the ticket's view back (tickets.repository insertNew).
  insert: `WITH t AS (
    INSERT INTO tickets (title, description, priority, type, tags, requester_id, team_id, created_at, updated_at,
                         sla_policy_id, sla_first_response_due_at, sla_resolution_due_at, sla_resolution_started_at,
                         sla_resolution_consumed_ms, sla_next_due_at)
    SELECT $1::text, $2::text, $3::ticket_priority, $4::ticket_type, $5::text[], $6::uuid, $7::uuid, $8::timestamptz,
           $9::timestamptz, $10::uuid, $11::timestamptz, $12::timestamptz, $13::timestamptz, $14::bigint,
           coalesce($15::timestamptz, 'infinity')
     WHERE (SELECT md5(coalesce(string_agg(p.id::text || ':' || p.xmin::text, ',' ORDER BY p.id), '')) FROM sla_policies p) = $16::text
    RETURNING id, title, description, status, priority, type, tags, requester_id, assignee_id, team_id, version,
              created_at, updated_at, first_response_at, solved_at, closed_at, deleted_at, sla_policy_id,
              sla_first_response_due_at, sla_resolution_due_at, merged_into_id
  ), s AS (
    INSERT INTO ticket_sla (ticket_id, breach_check_at) SELECT t.id, $17::timestamptz FROM t WHERE $18::timestamptz IS NOT NULL
  )
  SELECT t.*, NULL::timestamptz AS sla_first_response_breached_at, NULL::timestamptz AS sla_resolution_breached_at,
         u.name AS requester_name, u.email AS requester_email, NULL::text AS assignee_name
    FROM t JOIN users u ON u.id = t.requester_id`,
  policies: `SELECT md5(coalesce(string_agg(p.id::text || ':' || p.xmin::text, ',' ORDER BY p.id), '')) AS fingerprint FROM sla_policies p`,
  // The change event with its audit row in one statement (changes.repository INSERT_EVENT_WITH_AUDIT).
  change: `WITH audit_row AS (
             INSERT INTO audit_events (actor_id, actor_role, action, entity_type, entity_id, trace_id, ip, user_agent,
                                       changes, metadata)
             VALUES ($10, $11, $12, $13, $14, $15, $16, $17, $18, $19))
           INSERT INTO change_events (type, ticket_id, requester_id, staff_only, actor_id, actor_name, actor_role, trace_id, data)
           VALUES ($1, $2, (SELECT requester_id FROM tickets WHERE id = $3), $4, $5, $6, $7, $8, $9::json)
           RETURNING id, xid, occurred_at, requester_id,
                     EXISTS (SELECT 1 FROM webhooks WHERE active AND events && ARRAY['*', $1]::text[]) AS webhooks_wanted`,
  job: `SELECT id FROM graphile_worker.add_job(identifier => $1::text, payload => $2::json, run_at => $3::timestamptz,
          max_attempts => $4::int, job_key => $5::text, queue_name => $6::text, flags => null::text[])`,
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
  // The API reads the policies once and keeps them until they change; so does the floor.
  const policiesFingerprint = pool
    .query<{ fingerprint: string }>(CREATE.policies)
    .then((r) => r.rows[0]!.fingerprint);

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
        null,
        null,
        null,
        null,
        0,
        null,
        await policiesFingerprint,
        null,
        null,
      ]);
      const view = rows[0];
      const id = view.id as number;
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
      await client.query(CREATE.job, [
        FLOOR_JOB_KIND,
        JSON.stringify({ eventId: String(change.rows[0].id) }),
        null,
        5,
        null,
        null,
      ]);
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
