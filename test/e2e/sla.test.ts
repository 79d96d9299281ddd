import { randomUUID } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { SLA_BREACH_JOB } from '../../src/modules/sla/sla.jobs.js';
import { createTestApp } from '../helpers/app.js';
import { listenToAnnouncements } from '../helpers/changes.js';
import { createUser, type TestUser } from '../helpers/factory.js';
import { expectProblem } from '../helpers/http.js';
import { until } from '../helpers/wait.js';

/** The injected clock: tests move it; the app's services and the breach job read it. */
let now = new Date('2026-11-30T08:00:00.000Z'); // Monday 09:00 in Berlin
const clock = { now: () => new Date(now) };
const advance = (minutes: number) => {
  now = new Date(now.getTime() + minutes * 60_000);
};
const plus = (base: Date, minutes: number) => new Date(base.getTime() + minutes * 60_000).toISOString();

const BERLIN_HOURS = {
  timezone: 'Europe/Berlin',
  days: {
    mon: [['09:00', '17:00']],
    tue: [['09:00', '17:00']],
    wed: [['09:00', '17:00']],
    thu: [['09:00', '17:00']],
    fri: [['09:00', '17:00']],
  },
  holidays: ['2026-12-25'],
};

let app: FastifyInstance;
let admin: TestUser;
let agent: TestUser;
let requester: TestUser;

beforeAll(async () => {
  app = await createTestApp({ RATE_LIMIT_MAX: '100000' }, { clock });
  admin = await createUser(app, { role: 'admin' });
  agent = await createUser(app, { role: 'agent' });
  requester = await createUser(app, { role: 'requester' });
});
afterAll(() => app.close());
beforeEach(() => {
  now = new Date('2026-11-30T08:00:00.000Z');
});

/** Every test works in a team of its own, with policies that apply to that team only. */
async function newTeam(): Promise<string> {
  const res = await app.inject({
    method: 'POST',
    url: '/api/v1/teams',
    headers: admin.auth,
    payload: { name: `sla ${randomUUID().slice(0, 8)}` },
  });
  expect(res.statusCode).toBe(201);
  return res.json().id;
}

async function createPolicy(payload: Record<string, unknown>) {
  const res = await app.inject({ method: 'POST', url: '/api/v1/sla-policies', headers: admin.auth, payload });
  expect(res.statusCode, res.body).toBe(201);
  return res.json();
}

async function createTicket(teamId: string, extra: Record<string, unknown> = {}) {
  const res = await app.inject({
    method: 'POST',
    url: '/api/v1/tickets',
    headers: agent.auth,
    payload: { title: 'SLA ticket', description: 'd', requesterId: requester.id, teamId, ...extra },
  });
  expect(res.statusCode, res.body).toBe(201);
  return res.json();
}

async function patch(id: number, payload: Record<string, unknown>, user = agent) {
  const res = await app.inject({
    method: 'PATCH',
    url: `/api/v1/tickets/${id}`,
    headers: user.auth,
    payload,
  });
  expect(res.statusCode, res.body).toBe(200);
  return res.json();
}

async function get(id: number, user = agent) {
  const res = await app.inject({ method: 'GET', url: `/api/v1/tickets/${id}`, headers: user.auth });
  expect(res.statusCode).toBe(200);
  return res.json();
}

async function comment(id: number, user: TestUser, visibility: 'public' | 'internal' = 'public') {
  const res = await app.inject({
    method: 'POST',
    url: `/api/v1/tickets/${id}/comments`,
    headers: user.auth,
    payload: { body: 'reply', visibility },
  });
  expect(res.statusCode, res.body).toBe(201);
}

/** Runs the registered breach job's handler now, as the job runner would on its schedule. */
async function runBreachJob() {
  const job = app.jobs.definitions().find((j) => j.kind === SLA_BREACH_JOB)!;
  return (await job.handler(
    {},
    {
      jobId: randomUUID(),
      attempt: 1,
      maxAttempts: 1,
      log: app.log,
      progress: async () => {},
      signal: new AbortController().signal,
    },
  )) as { tickets: number; breaches: number };
}

/** The ticket.sla_breached change events of a ticket, oldest first. */
async function breachEvents(ticketId: number) {
  const { rows } = await app.db.$client.query(
    `SELECT data->>'target' AS target, data->'ticket'->>'id' AS "ticketId", staff_only AS "staffOnly"
       FROM change_events WHERE type = 'ticket.sla_breached' AND ticket_id = $1 ORDER BY id`,
    [ticketId],
  );
  return rows;
}

async function breachAudits(ticketId: number) {
  const { rows } = await app.db.$client.query(
    `SELECT metadata->>'target' AS target, actor_id FROM audit_events
      WHERE action = 'ticket.sla_breached' AND entity_id = $1 ORDER BY seq`,
    [String(ticketId)],
  );
  return rows;
}

const ALL_PRIORITIES_247 = {
  urgent: { firstResponseMinutes: 15, resolutionMinutes: 120 },
  high: { firstResponseMinutes: 60, resolutionMinutes: 480 },
  normal: { firstResponseMinutes: 240, resolutionMinutes: 1440 },
  low: { firstResponseMinutes: 1440 },
};

it('the breach job is registered to run at least every 60 s', () => {
  const schedule = app.jobs.schedules().find((s) => s.kind === SLA_BREACH_JOB);
  expect(schedule?.everySeconds).toBeGreaterThan(0);
  expect(schedule?.everySeconds).toBeLessThanOrEqual(60);
});

describe('SLA policies: admins write, staff read, requesters nothing', () => {
  it('admin creates, reads, changes and deletes a policy; each write is audited', async () => {
    const teamId = await newTeam();
    const created = await createPolicy({
      name: 'Berlin office',
      appliesTo: { teamId, type: 'incident' },
      targets: { urgent: { firstResponseMinutes: 30 } },
      businessHours: { ...BERLIN_HOURS, holidays: ['2026-12-26', '2026-12-25', '2026-12-25'] },
    });
    expect(created).toMatchObject({
      name: 'Berlin office',
      appliesTo: { teamId, type: 'incident' },
      targets: { urgent: { firstResponseMinutes: 30 } },
      businessHours: { timezone: 'Europe/Berlin', holidays: ['2026-12-25', '2026-12-26'] },
      position: expect.any(Number),
    });

    const agentRead = await app.inject({
      method: 'GET',
      url: `/api/v1/sla-policies/${created.id}`,
      headers: agent.auth,
    });
    expect(agentRead.statusCode).toBe(200);
    expect(agentRead.json()).toEqual(created);
    const list = await app.inject({
      method: 'GET',
      url: '/api/v1/sla-policies?limit=100',
      headers: agent.auth,
    });
    expect(list.statusCode).toBe(200);
    expect(list.json().data.map((p: { id: string }) => p.id)).toContain(created.id);

    const changed = await app.inject({
      method: 'PATCH',
      url: `/api/v1/sla-policies/${created.id}`,
      headers: admin.auth,
      payload: { name: 'Berlin office (24/7)', businessHours: null },
    });
    expect(changed.statusCode, changed.body).toBe(200);
    expect(changed.json()).toMatchObject({ name: 'Berlin office (24/7)', businessHours: null });

    const del = await app.inject({
      method: 'DELETE',
      url: `/api/v1/sla-policies/${created.id}`,
      headers: admin.auth,
    });
    expect(del.statusCode).toBe(204);
    expectProblem(
      await app.inject({ method: 'GET', url: `/api/v1/sla-policies/${created.id}`, headers: admin.auth }),
      404,
      'SLA_POLICY_NOT_FOUND',
    );

    const { rows } = await app.db.$client.query(
      `SELECT action, actor_id, changes FROM audit_events WHERE entity_type = 'sla_policy' AND entity_id = $1 ORDER BY seq`,
      [created.id],
    );
    expect(rows.map((r) => [r.action, r.actor_id])).toEqual([
      ['sla_policy.created', admin.id],
      ['sla_policy.updated', admin.id],
      ['sla_policy.deleted', admin.id],
    ]);
    expect(Object.keys(rows[1].changes).sort()).toEqual(['businessHours', 'name']);
  });

  it('requesters get 403 on every policy route; agents may read but not write', async () => {
    expectProblem(
      await app.inject({ method: 'GET', url: '/api/v1/sla-policies', headers: requester.auth }),
      403,
      'FORBIDDEN',
    );
    const payload = { name: 'x', targets: { urgent: { firstResponseMinutes: 5 } } };
    expectProblem(
      await app.inject({ method: 'POST', url: '/api/v1/sla-policies', headers: requester.auth, payload }),
      403,
      'FORBIDDEN',
    );
    expectProblem(
      await app.inject({ method: 'POST', url: '/api/v1/sla-policies', headers: agent.auth, payload }),
      403,
      'FORBIDDEN',
    );
    expectProblem(
      await app.inject({
        method: 'DELETE',
        url: `/api/v1/sla-policies/${randomUUID()}`,
        headers: agent.auth,
      }),
      403,
      'FORBIDDEN',
    );
    expectProblem(await app.inject({ method: 'GET', url: '/api/v1/sla-policies' }), 401, 'UNAUTHENTICATED');
  });

  it.each([
    ['time not HH:MM', { days: { mon: [['9:00', '17:00']] } }, 'body.businessHours.days.mon.0.0'],
    ['end before start', { days: { mon: [['17:00', '09:00']] } }, 'body.businessHours.days.mon.0.1'],
    [
      'overlapping intervals',
      {
        days: {
          mon: [
            ['09:00', '13:00'],
            ['12:00', '17:00'],
          ],
        },
      },
      'body.businessHours.days.mon.1.0',
    ],
    [
      'intervals out of order',
      {
        days: {
          mon: [
            ['13:00', '17:00'],
            ['09:00', '12:00'],
          ],
        },
      },
      'body.businessHours.days.mon.1.0',
    ],
    ['unknown timezone', { timezone: 'Mars/Olympus_Mons' }, 'body.businessHours.timezone'],
    ['offset instead of a zone', { timezone: '+02:00' }, 'body.businessHours.timezone'],
    ['holiday not a date', { holidays: ['2026-02-30'] }, 'body.businessHours.holidays.0'],
    ['no opening hours at all', { days: {} }, 'body.businessHours.days'],
    ['unknown weekday', { days: { monday: [['09:00', '17:00']] } }, 'body.businessHours.days'],
  ])('422 for %s', async (_name, hours, path) => {
    const res = await app.inject({
      method: 'POST',
      url: '/api/v1/sla-policies',
      headers: admin.auth,
      payload: {
        name: 'bad',
        targets: { urgent: { firstResponseMinutes: 5 } },
        businessHours: { ...BERLIN_HOURS, ...hours },
      },
    });
    const body = expectProblem(res, 422, 'VALIDATION_FAILED');
    expect((body.errors as Array<{ path: string }>).map((e) => e.path)).toContain(path);
  });

  it.each([
    ['no target at all', { targets: {} }],
    ['a priority without minutes', { targets: { urgent: {} } }],
    ['zero minutes', { targets: { urgent: { firstResponseMinutes: 0 } } }],
    ['unknown priority', { targets: { critical: { firstResponseMinutes: 5 } } }],
    ['unknown field', { targets: { urgent: { firstResponseMinutes: 5 } }, color: 'red' }],
    ['unknown ticket type', { targets: { urgent: { firstResponseMinutes: 5 } }, appliesTo: { type: 'bug' } }],
  ])('422 for %s', async (_name, body) => {
    const res = await app.inject({
      method: 'POST',
      url: '/api/v1/sla-policies',
      headers: admin.auth,
      payload: { name: 'bad', ...body },
    });
    expectProblem(res, 422, 'VALIDATION_FAILED');
  });

  it('a policy for a team that does not exist → 422', async () => {
    const res = await app.inject({
      method: 'POST',
      url: '/api/v1/sla-policies',
      headers: admin.auth,
      payload: {
        name: 'ghost',
        appliesTo: { teamId: randomUUID() },
        targets: { urgent: { firstResponseMinutes: 5 } },
      },
    });
    expectProblem(res, 422, 'VALIDATION_FAILED');
  });
});

describe('Ticket.sla', () => {
  it('is null when no policy applies', async () => {
    const teamId = await newTeam();
    const ticket = await createTicket(teamId);
    expect(ticket.sla).toBeNull();
  });

  it.each([
    ['urgent', 15, 120],
    ['high', 60, 480],
    ['normal', 240, 1440],
    ['low', 1440, null],
  ] as const)('24/7 policy: %s ticket due after %i / %s minutes', async (priority, fr, res) => {
    const teamId = await newTeam();
    const policy = await createPolicy({ name: '24/7', appliesTo: { teamId }, targets: ALL_PRIORITIES_247 });
    const ticket = await createTicket(teamId, { priority });
    expect(ticket.sla).toEqual({
      policyId: policy.id,
      firstResponseDueAt: plus(now, fr),
      resolutionDueAt: res === null ? null : plus(now, res),
      firstResponseBreachedAt: null,
      resolutionBreachedAt: null,
    });
    expect(await get(ticket.id)).toMatchObject({ sla: ticket.sla });
  });

  it('business hours: a ticket opened Friday afternoon in Berlin is due Monday', async () => {
    now = new Date('2026-12-04T15:00:00.000Z'); // Friday 16:00 CET
    const teamId = await newTeam();
    await createPolicy({
      name: 'office',
      appliesTo: { teamId },
      targets: { high: { firstResponseMinutes: 120, resolutionMinutes: 600 } },
      businessHours: BERLIN_HOURS,
    });
    const ticket = await createTicket(teamId, { priority: 'high' });
    // 60 min on Friday, then Monday from 09:00 CET (08:00Z); resolution: 60 + 480 (Mon) + 60 (Tue)
    expect(ticket.sla.firstResponseDueAt).toBe('2026-12-07T09:00:00.000Z');
    expect(ticket.sla.resolutionDueAt).toBe('2026-12-08T09:00:00.000Z');
  });

  it('the first policy by position whose appliesTo matches governs; type and team both count', async () => {
    const teamId = await newTeam();
    const incidents = await createPolicy({
      name: 'incidents',
      position: 0,
      appliesTo: { teamId, type: 'incident' },
      targets: { normal: { firstResponseMinutes: 10 } },
    });
    const team = await createPolicy({
      name: 'team',
      position: 1,
      appliesTo: { teamId },
      targets: { normal: { firstResponseMinutes: 100 } },
    });
    const incident = await createTicket(teamId, { type: 'incident' });
    const question = await createTicket(teamId, { type: 'question' });
    expect(incident.sla.policyId).toBe(incidents.id);
    expect(question.sla.policyId).toBe(team.id);
  });

  it('first response is met by the first public staff reply, not by an internal note or the requester', async () => {
    const teamId = await newTeam();
    await createPolicy({
      name: 'fr',
      appliesTo: { teamId },
      targets: { normal: { firstResponseMinutes: 30 } },
    });
    const ticket = await createTicket(teamId);
    await comment(ticket.id, agent, 'internal');
    await comment(ticket.id, requester);
    advance(31);
    await runBreachJob();
    expect((await get(ticket.id)).sla.firstResponseBreachedAt).toBe(ticket.sla.firstResponseDueAt);

    const other = await createTicket(teamId);
    advance(10);
    await comment(other.id, agent);
    const replied = await get(other.id);
    expect(replied.firstResponseAt).toBe(now.toISOString());
    expect(replied.sla.firstResponseDueAt).toBe(other.sla.firstResponseDueAt);
    advance(60);
    await runBreachJob();
    expect((await get(other.id)).sla.firstResponseBreachedAt).toBeNull();
    expect(await breachAudits(other.id)).toEqual([]);
    expect(await breachEvents(other.id)).toEqual([]);
  });

  it('the resolution clock pauses while pending and resumes on reopen (agent and requester reply)', async () => {
    const teamId = await newTeam();
    await createPolicy({
      name: 'res',
      appliesTo: { teamId },
      targets: { normal: { resolutionMinutes: 240 } },
    });
    const ticket = await createTicket(teamId);
    expect(ticket.sla.resolutionDueAt).toBe(plus(now, 240));

    advance(60);
    const pending = await patch(ticket.id, { status: 'pending' });
    expect(pending.sla.resolutionDueAt).toBeNull();
    advance(600); // ten hours waiting on the requester do not count
    await runBreachJob();
    expect((await get(ticket.id)).sla.resolutionBreachedAt).toBeNull();

    await comment(ticket.id, requester); // pending → open
    const resumed = await get(ticket.id);
    expect(resumed.status).toBe('open');
    expect(resumed.sla.resolutionDueAt).toBe(plus(now, 180));

    advance(30);
    await patch(ticket.id, { status: 'pending' });
    advance(100);
    const reopened = await patch(ticket.id, { status: 'open' });
    expect(reopened.sla.resolutionDueAt).toBe(plus(now, 150));
  });

  it('resolution is met by solved: the due time stays, nothing is breached later; reopening resumes it', async () => {
    const teamId = await newTeam();
    await createPolicy({
      name: 'res',
      appliesTo: { teamId },
      targets: { normal: { resolutionMinutes: 60 } },
    });
    const ticket = await createTicket(teamId);
    advance(20);
    const solved = await patch(ticket.id, { assigneeId: agent.id, status: 'solved' });
    expect(solved.sla.resolutionDueAt).toBe(ticket.sla.resolutionDueAt);
    advance(120);
    await runBreachJob();
    expect((await get(ticket.id)).sla.resolutionBreachedAt).toBeNull();

    const reopened = await patch(ticket.id, { status: 'open' });
    expect(reopened.sla.resolutionDueAt).toBe(plus(now, 40));
  });

  it('a missed target is marked by the breach job once: one audit event per target, however often it runs', async () => {
    const teamId = await newTeam();
    await createPolicy({
      name: 'strict',
      appliesTo: { teamId },
      targets: { urgent: { firstResponseMinutes: 5, resolutionMinutes: 10 } },
    });
    const ticket = await createTicket(teamId, { priority: 'urgent' });
    advance(4);
    await runBreachJob();
    expect((await get(ticket.id)).sla.firstResponseBreachedAt).toBeNull();

    advance(2);
    await Promise.all([runBreachJob(), runBreachJob(), runBreachJob()]);
    const afterFirst = await get(ticket.id);
    expect(afterFirst.sla.firstResponseBreachedAt).toBe(ticket.sla.firstResponseDueAt);
    expect(afterFirst.sla.resolutionBreachedAt).toBeNull();
    // A breach mark is not an edit: the ETag stays, so an agent's PATCH in flight is not refused.
    expect(afterFirst.version).toBe(ticket.version);
    expect(await breachAudits(ticket.id)).toEqual([{ target: 'firstResponse', actor_id: null }]);
    expect(await breachEvents(ticket.id)).toEqual([
      { target: 'firstResponse', ticketId: String(ticket.id), staffOnly: true },
    ]);

    advance(5);
    await Promise.all([runBreachJob(), runBreachJob()]);
    await runBreachJob();
    const afterBoth = await get(ticket.id);
    expect(afterBoth.sla.resolutionBreachedAt).toBe(ticket.sla.resolutionDueAt);
    expect(await breachAudits(ticket.id)).toEqual([
      { target: 'firstResponse', actor_id: null },
      { target: 'resolution', actor_id: null },
    ]);
    expect(await breachEvents(ticket.id)).toEqual([
      { target: 'firstResponse', ticketId: String(ticket.id), staffOnly: true },
      { target: 'resolution', ticketId: String(ticket.id), staffOnly: true },
    ]);
    // Each event carries the ticket as staff see it (GET, without allowedTransitions) with its marks so far.
    const { rows } = await app.db.$client.query(
      `SELECT data FROM change_events WHERE type = 'ticket.sla_breached' AND ticket_id = $1 ORDER BY id`,
      [ticket.id],
    );
    const staffView = ({ allowedTransitions: _, ...rest }: Record<string, unknown>) => rest;
    expect(rows.map((r) => r.data)).toEqual([
      {
        ticket: staffView(afterFirst),
        target: 'firstResponse',
        dueAt: ticket.sla.firstResponseDueAt,
      },
      { ticket: staffView(afterBoth), target: 'resolution', dueAt: ticket.sla.resolutionDueAt },
    ]);
  });

  it('the breach pass wakes the live streams: its batch is announced with the transaction that wrote it', async () => {
    const { client: listener, heard } = await listenToAnnouncements(app.config.databaseUrl);
    try {
      const teamId = await newTeam();
      await createPolicy({
        name: 'fr',
        appliesTo: { teamId },
        targets: { normal: { firstResponseMinutes: 30 } },
      });
      const ticket = await createTicket(teamId);
      advance(31);
      await runBreachJob();
      const { rows } = await app.db.$client.query<{ xid: string }>(
        `SELECT xid::text AS xid FROM change_events WHERE type = 'ticket.sla_breached' AND ticket_id = $1`,
        [ticket.id],
      );
      expect(rows).toHaveLength(1);
      await until(() => heard.some((n) => n.payload === rows[0]!.xid));
    } finally {
      await listener.end();
    }
  });

  it('a pass of several batches announces the newest of its transactions', async () => {
    const { client: listener, heard } = await listenToAnnouncements(app.config.databaseUrl);
    try {
      const teamId = await newTeam();
      await createPolicy({
        name: 'batches',
        appliesTo: { teamId },
        targets: { normal: { firstResponseMinutes: 30 } },
      });
      const tickets = [];
      for (let i = 0; i < 3; i++) tickets.push(await createTicket(teamId));
      advance(31);
      expect((await app.services.sla.detectBreaches({ batch: 1 })).breaches).toBeGreaterThanOrEqual(3);
      const { rows } = await app.db.$client.query<{ xids: string[] }>(
        `SELECT array_agg(DISTINCT xid::text) AS xids FROM change_events
          WHERE type = 'ticket.sla_breached' AND ticket_id = ANY($1::int[])`,
        [tickets.map((t) => t.id)],
      );
      // One transaction per batch; the streams, woken by the newest, read everything before it too.
      expect(rows[0]!.xids).toHaveLength(3);
      const newest = rows[0]!.xids.reduce((a, b) => (BigInt(a) > BigInt(b) ? a : b));
      await until(() => heard.some((n) => n.payload !== '' && BigInt(n.payload) >= BigInt(newest)));
    } finally {
      await listener.end();
    }
  });

  it('two breach passes running at once over many due tickets mark and announce every target exactly once', async () => {
    const teamId = await newTeam();
    await createPolicy({
      name: 'many',
      appliesTo: { teamId },
      targets: { urgent: { firstResponseMinutes: 5, resolutionMinutes: 6 } },
    });
    const tickets = [];
    for (let i = 0; i < 12; i++) tickets.push(await createTicket(teamId, { priority: 'urgent' }));
    advance(10);
    // Small batches so the two passes interleave, claiming batch after batch from the same due set.
    const sla = app.services.sla;
    const [a, b] = await Promise.all([sla.detectBreaches({ batch: 2 }), sla.detectBreaches({ batch: 3 })]);
    const ids = new Set(tickets.map((t) => t.id));
    const { rows: events } = await app.db.$client.query<{ ticket_id: number; target: string; n: number }>(
      `SELECT ticket_id, data->>'target' AS target, count(*)::int AS n FROM change_events
        WHERE type = 'ticket.sla_breached' AND ticket_id = ANY($1::int[]) GROUP BY 1, 2`,
      [[...ids]],
    );
    expect(events).toHaveLength(24);
    expect(events.every((e) => e.n === 1)).toBe(true);
    const { rows: audits } = await app.db.$client.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM audit_events
        WHERE action = 'ticket.sla_breached' AND entity_id = ANY($1::text[])`,
      [[...ids].map(String)],
    );
    expect(audits[0]!.n).toBe(24);
    expect(a.breaches + b.breaches).toBeGreaterThanOrEqual(24);
    for (const t of tickets) {
      const after = await get(t.id);
      expect(after.sla.firstResponseBreachedAt).toBe(t.sla.firstResponseDueAt);
      expect(after.sla.resolutionBreachedAt).toBe(t.sla.resolutionDueAt);
    }
    // Each pass left one notification job per batch it marked, naming only events it recorded.
    const { rows: jobs } = await app.db.$client.query<{ events: number[] }>(
      `SELECT j.payload->'events' AS events FROM graphile_worker._private_jobs j
         JOIN graphile_worker._private_tasks k ON k.id = j.task_id
        WHERE k.identifier = 'sla.notify_breaches'`,
    );
    const announced = jobs.flatMap((j) => j.events);
    expect(new Set(announced).size).toBe(announced.length);
  });

  it('a ticket changed while a pass marks it keeps the mark (no second event when its clock is recomputed)', async () => {
    const teamId = await newTeam();
    await createPolicy({
      name: 'race',
      appliesTo: { teamId },
      targets: { urgent: { firstResponseMinutes: 5, resolutionMinutes: 60 } },
    });
    const ticket = await createTicket(teamId, { priority: 'urgent' });
    advance(6);
    // A pass and a change of the ticket's clock (pending → re-evaluated) at the same moment.
    await Promise.all([runBreachJob(), patch(ticket.id, { status: 'pending' })]);
    await runBreachJob();
    await patch(ticket.id, { status: 'open' });
    await runBreachJob();
    expect((await get(ticket.id)).sla.firstResponseBreachedAt).toBe(ticket.sla.firstResponseDueAt);
    expect(await breachEvents(ticket.id)).toEqual([
      { target: 'firstResponse', ticketId: String(ticket.id), staffOnly: true },
    ]);
  });

  it('priority, team and type changes re-evaluate the policy and its due times', async () => {
    const teamA = await newTeam();
    const teamB = await newTeam();
    const a = await createPolicy({ name: 'A', appliesTo: { teamId: teamA }, targets: ALL_PRIORITIES_247 });
    const aTasks = await createPolicy({
      name: 'A tasks',
      position: 0,
      appliesTo: { teamId: teamA, type: 'task' },
      targets: { urgent: { firstResponseMinutes: 1 } },
    });
    const b = await createPolicy({
      name: 'B',
      appliesTo: { teamId: teamB },
      targets: { urgent: { firstResponseMinutes: 5, resolutionMinutes: 50 } },
    });
    const created = new Date(now);
    const ticket = await createTicket(teamA, { priority: 'low' });
    expect(ticket.sla).toMatchObject({
      policyId: a.id,
      firstResponseDueAt: plus(created, 1440),
      resolutionDueAt: null,
    });

    advance(10);
    const urgent = await patch(ticket.id, { priority: 'urgent' });
    expect(urgent.sla).toMatchObject({
      policyId: a.id,
      firstResponseDueAt: plus(created, 15),
      resolutionDueAt: plus(created, 120),
    });

    const moved = await patch(ticket.id, { teamId: teamB });
    expect(moved.sla).toMatchObject({
      policyId: b.id,
      firstResponseDueAt: plus(created, 5),
      resolutionDueAt: plus(created, 50),
    });

    await patch(ticket.id, { teamId: teamA });
    const task = await patch(ticket.id, { type: 'task' });
    expect(task.sla).toMatchObject({
      policyId: aTasks.id,
      firstResponseDueAt: plus(created, 1),
      resolutionDueAt: null,
    });

    const none = await patch(ticket.id, { teamId: null });
    expect(none.sla).toBeNull();
  });
});

describe('GET /tickets with slaBreached and sort=slaDueAt', () => {
  it('filters breached tickets and lists the earliest unmet due time first, page by page', async () => {
    const teamId = await newTeam();
    await createPolicy({ name: 'list', appliesTo: { teamId }, targets: ALL_PRIORITIES_247 });
    const low = await createTicket(teamId, { priority: 'low' }); // due +1440
    const urgent = await createTicket(teamId, { priority: 'urgent' }); // due +15
    const high = await createTicket(teamId, { priority: 'high' }); // due +60
    const normal = await createTicket(teamId, { priority: 'normal' }); // due +240
    const met = await createTicket(teamId, { priority: 'urgent' });
    await comment(met.id, agent); // first response met: resolution +120 is its next due time
    const noPolicy = await createTicket(await newTeam());
    await patch(noPolicy.id, { teamId }); // same team, re-evaluated: now governed too (normal, +240)
    advance(20);
    await runBreachJob(); // urgent's first response (15) is missed

    const list = async (query: string) => {
      const res = await app.inject({
        method: 'GET',
        url: `/api/v1/tickets?teamId=${teamId}&${query}`,
        headers: agent.auth,
      });
      expect(res.statusCode, res.body).toBe(200);
      return res.json() as { data: Array<{ id: number }>; nextCursor: string | null };
    };
    expect((await list('slaBreached=true')).data.map((t) => t.id)).toEqual([urgent.id]);
    expect((await list('slaBreached=false&sort=createdAt')).data.map((t) => t.id)).toEqual([
      low.id,
      high.id,
      normal.id,
      met.id,
      noPolicy.id,
    ]);

    const expected = [urgent.id, high.id, met.id, normal.id, noPolicy.id, low.id];
    expect((await list('sort=slaDueAt')).data.map((t) => t.id)).toEqual(expected);
    expect((await list('sort=-slaDueAt')).data.map((t) => t.id)).toEqual([...expected].reverse());

    // Keyset pages of 2 walk the same order, each ticket once; tickets without a due time come last.
    const solved = await patch(low.id, { assigneeId: agent.id, status: 'solved' });
    expect(solved.sla.firstResponseDueAt).not.toBeNull();
    const walked: number[] = [];
    let cursor: string | null = null;
    do {
      const page = await list(
        `sort=slaDueAt&limit=2${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`,
      );
      walked.push(...page.data.map((t) => t.id));
      cursor = page.nextCursor;
    } while (cursor);
    expect(walked).toEqual(expected);

    // Not breached, due next first (and the other way): the same order without the breached ticket, page
    // by page across the tickets with and without an unmet due time.
    const unbreached = expected.filter((id) => id !== urgent.id);
    for (const [sort, want] of [
      ['slaDueAt', unbreached],
      ['-slaDueAt', [...unbreached].reverse()],
    ] as const) {
      const pages: number[] = [];
      let next: string | null = null;
      do {
        const page = await list(
          `slaBreached=false&sort=${sort}&limit=2${next ? `&cursor=${encodeURIComponent(next)}` : ''}`,
        );
        pages.push(...page.data.map((t) => t.id));
        next = page.nextCursor;
      } while (next);
      expect(pages, sort).toEqual(want);
      expect((await list(`slaBreached=false&sort=${sort}`)).data.map((t) => t.id)).toEqual(want);
    }
  });

  it('a cursor of another sort is refused', async () => {
    const teamId = await newTeam();
    await createTicket(teamId);
    await createTicket(teamId);
    const first = await app.inject({
      method: 'GET',
      url: `/api/v1/tickets?teamId=${teamId}&sort=createdAt&limit=1`,
      headers: agent.auth,
    });
    const cursor = first.json().nextCursor;
    expectProblem(
      await app.inject({
        method: 'GET',
        url: `/api/v1/tickets?teamId=${teamId}&sort=slaDueAt&limit=1&cursor=${encodeURIComponent(cursor)}`,
        headers: agent.auth,
      }),
      422,
      'VALIDATION_FAILED',
    );
  });

  it('slaBreached accepts only true or false', async () => {
    expectProblem(
      await app.inject({ method: 'GET', url: '/api/v1/tickets?slaBreached=yes', headers: agent.auth }),
      422,
      'VALIDATION_FAILED',
    );
  });
});
