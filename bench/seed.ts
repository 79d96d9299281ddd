/**
 * `npm run seed -- --tickets 100000`: fills a database with realistic demo data — users (requesters,
 * agents, admins), teams, tickets across the whole lifecycle, public replies and internal notes — for
 * trying the API and for benchmarks. Runs against DATABASE_URL, or the embedded database under DATA_DIR
 * like the server does, and applies migrations first.
 *
 * Set-based SQL only (INSERT … SELECT over generate_series, one statement per batch): a million tickets
 * take minutes, not hours. Every seeded user has the same password (--password, default
 * bench-password-123) and emails like requester1@seed.example, agent1@seed.example, admin1@seed.example.
 * Re-running adds more tickets and reuses the seeded users and teams.
 *
 * Vocabulary: "printer" is common in titles/descriptions; "zeppelin" is rare (about 1 ticket in 3,300),
 * so searches for both are meaningful. Internal notes use words ("escalation-only", "postmortem") that
 * appear nowhere public, to check that they never reach the search index.
 */
import { parseArgs } from 'node:util';
import argon2 from 'argon2';
import pg from 'pg';
import { loadConfig } from '../src/config.js';
import { resolveDatabase } from '../src/db/client.js';
import { runMigrations } from '../src/db/migrate.js';
import { ARGON2_PARAMS } from '../src/modules/auth/password.js';

const { values: args } = parseArgs({
  options: {
    tickets: { type: 'string', default: '10000' },
    requesters: { type: 'string' },
    agents: { type: 'string' },
    teams: { type: 'string', default: '6' },
    'comments-per-ticket': { type: 'string', default: '2' },
    'batch-size': { type: 'string', default: '10000' },
    jobs: { type: 'string', default: '2' },
    password: { type: 'string', default: 'bench-password-123' },
    help: { type: 'boolean', default: false },
  },
});

if (args.help) {
  console.log(`Usage: npm run seed -- [--tickets N] [--requesters N] [--agents N] [--teams N]
                       [--comments-per-ticket AVG] [--batch-size N] [--jobs N] [--password P]
Defaults: 10000 tickets, requesters = tickets/20 (≥ 20), agents = tickets/2000 (5..200), 6 teams,
2 comments per ticket on average (a quarter of them internal notes).`);
  process.exit(0);
}

const int = (name: string, v: string | undefined, min: number): number => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < min) {
    console.error(`--${name} must be an integer ≥ ${min}`);
    process.exit(2);
  }
  return n;
};

const ticketCount = int('tickets', args.tickets, 0);
const requesterCount = int(
  'requesters',
  args.requesters ?? String(Math.max(20, Math.floor(ticketCount / 20))),
  1,
);
const agentCount = int(
  'agents',
  args.agents ?? String(Math.min(200, Math.max(5, Math.floor(ticketCount / 2000)))),
  1,
);
const teamCount = int('teams', args.teams, 1);
const commentsPerTicket = int('comments-per-ticket', args['comments-per-ticket'], 0);
const batchSize = int('batch-size', args['batch-size'], 100);
const jobs = int('jobs', args.jobs, 1);
/** Large seeds load without secondary indexes and build them once at the end (much faster than row by row). */
const rebuildIndexes = ticketCount >= 50_000;

const TEAM_NAMES = ['Service Desk', 'Network', 'Hardware', 'Billing', 'Accounts', 'Security', 'Facilities'];
const FIRST = [
  'Ada',
  'Ben',
  'Chloé',
  'Dmitri',
  'Elena',
  'Farid',
  'Grace',
  'Hiro',
  'Ines',
  'Jonas',
  'Kemi',
  'Luis',
];
const LAST = [
  'Okafor',
  'Nguyen',
  'Schmidt',
  'Rossi',
  'Kowalski',
  'Tanaka',
  'García',
  'Dubois',
  'Patel',
  'Berg',
];

// Title = subject + problem; "printer" is a frequent subject.
const SUBJECTS = [
  'Printer',
  'Printer',
  'Printer on 3rd floor',
  'VPN',
  'Laptop',
  'Email',
  'Outlook calendar',
  'Wi-Fi',
  'Password reset',
  'Invoice',
  'Monitor',
  'Docking station',
  'Shared drive',
  'Badge reader',
  'Phone',
  'CRM',
  'Payroll portal',
  'Keyboard',
];
const PROBLEMS = [
  'not working',
  'keeps disconnecting',
  'is very slow',
  'shows an error',
  'stopped syncing',
  'needs replacing',
  'cannot log in',
  'access request',
  'intermittent failures since Monday',
  'asks for a licence',
  'makes a strange noise',
  'out of toner',
];
const SENTENCES = [
  'Since this morning it fails every time I try.',
  'I restarted twice and nothing changed.',
  'Colleagues on the same floor see the same problem.',
  'The error says "unexpected response from server".',
  'This blocks the monthly report, please hurry.',
  'It worked fine last week before the update.',
  'I attached a screenshot of the message.',
  'The printer prints blank pages after the first one.',
  'Could someone have a look when possible?',
  'We need this before the customer visit on Friday.',
];
const REPLIES = [
  'Thanks for reporting, we are looking into it.',
  'Could you try again now and tell us if it works?',
  'We replaced the cartridge and ran a test page.',
  'Still broken on my side, sorry.',
  'It works now, thank you!',
  'Please restart the device and reconnect to the network.',
  'We have ordered a replacement, it should arrive tomorrow.',
];
const NOTES = [
  'Escalation-only: vendor ticket opened, waiting for their postmortem.',
  'Internal: user had the same issue last month, check hardware warranty.',
  'Postmortem candidate; do not promise a date to the requester.',
];
const TAGS = ['hardware', 'network', 'printer', 'access', 'billing', 'urgent-customer', 'vip', 'onboarding'];

const sqlArray = (items: string[]) => `ARRAY[${items.map((s) => `'${s.replace(/'/g, "''")}'`).join(',')}]`;
const pick = (items: string[]) => `(${sqlArray(items)})[1 + floor(random() * ${items.length})::int]`;

function progress(label: string, done: number, total: number, started: number) {
  const pct = total === 0 ? 100 : Math.floor((done / total) * 100);
  const secs = (Date.now() - started) / 1000;
  const rate = secs > 0 ? Math.round(done / secs) : 0;
  const line = `${label}: ${done.toLocaleString('en')}/${total.toLocaleString('en')} (${pct}%) ${secs.toFixed(1)} s, ${rate.toLocaleString('en')}/s`;
  if (process.stdout.isTTY) process.stdout.write(`\r${line}   `);
  else console.log(line);
}

async function main() {
  const config = loadConfig();
  const database = await resolveDatabase(config, (m) => console.log(`[embedded-postgres] ${m}`));
  await runMigrations(database.url);
  const client = new pg.Client({ connectionString: database.url, application_name: 'helpdesk-seed' });
  await client.connect();
  const started = Date.now();
  try {
    await client.query('SET synchronous_commit = off');
    await client.query("SET statement_timeout = '30min'");
    console.log(
      `seeding ${ticketCount.toLocaleString('en')} tickets, ${requesterCount} requesters, ${agentCount} agents, ${teamCount} teams (${database.embedded ? 'embedded PostgreSQL' : 'DATABASE_URL'})`,
    );

    // ---- users: one argon2id hash shared by all, names from small lists ----
    // The server's own parameters: a hash with others is rehashed at the first login, and verifying
    // argon2's defaults (64 MiB, 4 lanes) would briefly lift a fresh server's memory by 64 MiB per login.
    const hash = await argon2.hash(args.password, ARGON2_PARAMS);
    const names = (role: string, n: number) => `
      INSERT INTO users (email, name, role, password_hash, active, created_at, updated_at)
      SELECT '${role}'::text || g || '@seed.example',
             (${sqlArray(FIRST)})[1 + (g % ${FIRST.length})] || ' ' || (${sqlArray(LAST)})[1 + ((g / ${FIRST.length}) % ${LAST.length})],
             '${role}', $1, true, now() - interval '400 days', now() - interval '400 days'
        FROM generate_series(1, ${n}) g
      ON CONFLICT DO NOTHING`;
    await client.query(names('requester', requesterCount), [hash]);
    await client.query(names('agent', agentCount), [hash]);
    await client.query(names('admin', 2), [hash]);
    const ids = async (role: string, n: number) =>
      (
        await client.query<{ id: string }>(
          `SELECT id FROM users WHERE role = $1::user_role AND email = ANY(SELECT $1::text || g || '@seed.example' FROM generate_series(1, $2::int) g) ORDER BY email`,
          [role, n],
        )
      ).rows.map((r) => r.id);
    const requesterIds = await ids('requester', requesterCount);
    const agentIds = await ids('agent', agentCount);
    const adminIds = await ids('admin', 2);
    const staffIds = [...agentIds, ...adminIds];
    console.log(
      `users: ${requesterIds.length} requesters, ${agentIds.length} agents, ${adminIds.length} admins`,
    );

    // ---- teams: agents spread across them ----
    const teamNames = Array.from({ length: teamCount }, (_, i) =>
      i < TEAM_NAMES.length ? TEAM_NAMES[i]! : `Team ${i + 1}`,
    );
    await client.query(`INSERT INTO teams (name) SELECT unnest($1::text[]) ON CONFLICT DO NOTHING`, [
      teamNames,
    ]);
    const teamIds = (
      await client.query<{ id: string }>(
        `SELECT id FROM teams WHERE lower(name) = ANY(SELECT lower(unnest($1::text[]))) ORDER BY name`,
        [teamNames],
      )
    ).rows.map((r) => r.id);
    await client.query(
      `INSERT INTO team_members (team_id, user_id)
       SELECT ($1::uuid[])[1 + (i % cardinality($1::uuid[]))], a
         FROM unnest($2::uuid[]) WITH ORDINALITY AS x(a, i)
       ON CONFLICT DO NOTHING`,
      [teamIds, agentIds],
    );
    console.log(`teams: ${teamIds.length}`);

    // ---- tickets and comments, batch by batch ----
    // One statement per batch: `src` draws every random attribute once per ticket (ids come from the
    // identity sequence so comments can refer to them), the ticket row gets the tsvector of its PUBLIC
    // comments, and the comments are inserted from the same drawn bodies.
    const batchSql = `
      WITH src AS MATERIALIZED (
        SELECT nextval(pg_get_serial_sequence('tickets', 'id'))::int AS id, g, s.*,
               s.created_at + (random() * least(now() - s.created_at, interval '30 days')) AS updated_at
          FROM generate_series(1, $1::int) g
          CROSS JOIN LATERAL (
            SELECT now() - (random() * interval '365 days') AS created_at,
                   (ARRAY['new','open','open','pending','on_hold','solved','solved','closed','closed','closed','cancelled'])[1 + floor(random() * 11)::int]::ticket_status AS status,
                   (ARRAY['low','normal','normal','normal','high','urgent'])[1 + floor(random() * 6)::int]::ticket_priority AS priority,
                   (ARRAY['question','question','incident','problem','task'])[1 + floor(random() * 5)::int]::ticket_type AS type,
                   CASE WHEN random() < 0.0003 THEN ' zeppelin' ELSE '' END AS rare,
                   floor(random() * ($5::int * 2 + 1))::int AS n_comments,
                   g AS gg
          ) s
      ),
      drawn AS MATERIALIZED (
        SELECT src.*,
               ${pick(SUBJECTS)} || ' ' || ${pick(PROBLEMS)} || src.rare AS title,
               (SELECT string_agg(${pick(SENTENCES)}, ' ') FROM generate_series(1, 2 + (src.g % 3)) WHERE src.g > 0) || src.rare AS description,
               CASE WHEN src.status = 'new' THEN NULL
                    ELSE ($2::uuid[])[1 + floor(random() * cardinality($2::uuid[]))::int] END AS assignee_id,
               ($3::uuid[])[1 + floor(random() * cardinality($3::uuid[]))::int] AS requester_id,
               CASE WHEN random() < 0.8 THEN ($4::uuid[])[1 + floor(random() * cardinality($4::uuid[]))::int] END AS team_id,
               ARRAY(SELECT DISTINCT ${pick(TAGS)} FROM generate_series(1, floor(random() * 3)::int) WHERE src.g > 0) AS tags,
               ARRAY(SELECT CASE WHEN random() < 0.25 THEN 'internal' ELSE 'public' END FROM generate_series(1, src.n_comments) WHERE src.g > 0) AS vis,
               ARRAY(SELECT ${pick(REPLIES)} FROM generate_series(1, src.n_comments) WHERE src.g > 0) AS replies,
               ARRAY(SELECT ${pick(NOTES)} FROM generate_series(1, src.n_comments) WHERE src.g > 0) AS notes
          FROM src
      ),
      ins AS (
        INSERT INTO tickets (id, title, description, status, priority, type, tags, requester_id, assignee_id,
                             team_id, version, created_at, updated_at, first_response_at, solved_at, closed_at,
                             comment_search)
        OVERRIDING SYSTEM VALUE
        SELECT d.id, d.title, d.description, d.status, d.priority, d.type, d.tags, d.requester_id, d.assignee_id,
               d.team_id, 1 + d.n_comments, d.created_at, d.updated_at,
               CASE WHEN d.status <> 'new' AND d.n_comments > 0 THEN d.created_at + (d.updated_at - d.created_at) / 4 END,
               CASE WHEN d.status IN ('solved', 'closed') THEN d.updated_at - (d.updated_at - d.created_at) / 10 END,
               CASE WHEN d.status = 'closed' THEN d.updated_at END,
               to_tsvector('english', coalesce((
                 SELECT string_agg(d.replies[i], ' ') FROM generate_subscripts(d.vis, 1) i WHERE d.vis[i] = 'public'
               ), ''))
          FROM drawn d
      )
      INSERT INTO comments (ticket_id, author_id, body, visibility, created_at)
      SELECT d.id,
             CASE WHEN d.vis[i] = 'internal' OR (i % 2 = 1 AND d.assignee_id IS NOT NULL)
                  THEN coalesce(d.assignee_id, ($2::uuid[])[1]) ELSE d.requester_id END,
             CASE WHEN d.vis[i] = 'internal' THEN d.notes[i] ELSE d.replies[i] END,
             d.vis[i]::comment_visibility,
             d.created_at + (d.updated_at - d.created_at) * i / (d.n_comments + 1)
        FROM drawn d
        CROSS JOIN LATERAL generate_subscripts(d.vis, 1) i`;

    // Secondary indexes of tickets and comments (constraints' own indexes stay).
    const { rows: indexes } = await client.query<{ name: string; def: string }>(
      `SELECT i.indexname AS name, i.indexdef AS def
         FROM pg_indexes i
        WHERE i.schemaname = 'public' AND i.tablename IN ('tickets', 'comments')
          AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conname = i.indexname)`,
    );
    if (rebuildIndexes) {
      console.log(`dropping ${indexes.length} secondary indexes for the bulk load (rebuilt at the end)`);
      for (const ix of indexes)
        await client.query(`DROP INDEX IF EXISTS ${client.escapeIdentifier(ix.name)}`);
    }

    const t0 = Date.now();
    let next = 0;
    let done = 0;
    progress('tickets', 0, ticketCount, t0);
    const worker = async () => {
      const c = new pg.Client({ connectionString: database.url, application_name: 'helpdesk-seed' });
      await c.connect();
      try {
        await c.query('SET synchronous_commit = off');
        await c.query('SET jit = off');
        await c.query("SET statement_timeout = '30min'");
        // Foreign keys hold by construction; skipping their per-row triggers needs superuser, so it is optional.
        await c.query('SET session_replication_role = replica').catch(() => {});
        while (next < ticketCount) {
          const n = Math.min(batchSize, ticketCount - next);
          next += n;
          await c.query(batchSql, [n, staffIds, requesterIds, teamIds, commentsPerTicket]);
          done += n;
          progress('tickets', done, ticketCount, t0);
        }
      } finally {
        await c.end();
      }
    };
    try {
      await Promise.all(Array.from({ length: Math.max(1, Math.min(jobs, 8)) }, worker));
    } finally {
      if (process.stdout.isTTY) process.stdout.write('\n');
      if (rebuildIndexes) {
        const t1 = Date.now();
        console.log(`building ${indexes.length} indexes …`);
        const queue = [...indexes];
        const builder = async () => {
          const c = new pg.Client({ connectionString: database.url, application_name: 'helpdesk-seed' });
          await c.connect();
          try {
            await c.query("SET maintenance_work_mem = '256MB'");
            await c.query('SET statement_timeout = 0');
            for (let ix = queue.shift(); ix; ix = queue.shift()) {
              await c.query(ix.def.replace(/^CREATE INDEX /, 'CREATE INDEX IF NOT EXISTS '));
              console.log(`  ${ix.name} (${((Date.now() - t1) / 1000).toFixed(1)} s)`);
            }
          } finally {
            await c.end();
          }
        };
        await Promise.all(Array.from({ length: Math.max(1, Math.min(jobs, 4)) }, builder));
      }
    }

    console.log('ANALYZE …');
    await client.query('ANALYZE users, teams, team_members, tickets, comments');
    const { rows } = await client.query<{ tickets: number; comments: number }>(
      'SELECT (SELECT count(*) FROM tickets)::int AS tickets, (SELECT count(*) FROM comments)::int AS comments',
    );
    console.log(
      `done in ${((Date.now() - started) / 1000).toFixed(1)} s: database now holds ${rows[0]!.tickets.toLocaleString('en')} tickets, ${rows[0]!.comments.toLocaleString('en')} comments.`,
    );
    console.log(
      `log in as requester1@seed.example, agent1@seed.example or admin1@seed.example with password "${args.password}"`,
    );
  } finally {
    await client.end();
    await database.stop();
  }
}

main().catch((err) => {
  console.error('seed failed:', err instanceof Error ? err.message : err);
  process.exit(1);
});
