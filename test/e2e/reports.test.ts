import { randomUUID } from 'node:crypto';
import { parse } from 'csv-parse/sync';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApp } from '../helpers/app.js';
import { createUser, type TestUser } from '../helpers/factory.js';
import { expectProblem } from '../helpers/http.js';

describe('reports: overview and CSV export', () => {
  let app: FastifyInstance;
  let admin: TestUser;
  let agent1: TestUser;
  let agent2: TestUser;
  let requester: TestUser;
  let teamId: string;
  let otherTeamId: string;

  const sql = (text: string, params: unknown[] = []) => app.db.$client.query(text, params);
  const newTeam = async () =>
    (await sql('INSERT INTO teams (name) VALUES ($1) RETURNING id', [`Reports ${randomUUID().slice(0, 8)}`]))
      .rows[0].id as string;

  /** Arranges a ticket row with exact timestamps (the report's input). */
  async function ticket(t: {
    team: string;
    createdAt: string;
    status?: string;
    priority?: string;
    assignee?: string | null;
    firstResponseMin?: number;
    solvedAt?: string;
    closedAt?: string;
    deleted?: boolean;
  }) {
    const created = new Date(t.createdAt);
    const firstResponse =
      t.firstResponseMin === undefined ? null : new Date(created.getTime() + t.firstResponseMin * 60_000);
    await sql(
      `INSERT INTO tickets (title, description, status, priority, requester_id, assignee_id, team_id,
                            created_at, updated_at, first_response_at, solved_at, closed_at, deleted_at)
       VALUES ('Report fixture', 'Arranged for the overview', $1, $2, $3, $4, $5, $6, $6, $7, $8, $9, $10)`,
      [
        t.status ?? 'new',
        t.priority ?? 'normal',
        requester.id,
        t.assignee ?? null,
        t.team,
        created,
        firstResponse,
        t.solvedAt ? new Date(t.solvedAt) : null,
        t.closedAt ? new Date(t.closedAt) : null,
        t.deleted ? new Date() : null,
      ],
    );
  }

  beforeAll(async () => {
    app = await createTestApp({ RATE_LIMIT_MAX: '100000', REPORT_TIMEZONE: 'America/New_York' });
    admin = await createUser(app, { role: 'admin' });
    agent1 = await createUser(app, { role: 'agent', name: 'Agent One' });
    agent2 = await createUser(app, { role: 'agent', name: 'Agent Two' });
    requester = await createUser(app, { role: 'requester' });
    teamId = await newTeam();
    otherTeamId = await newTeam();

    const a1 = agent1.id;
    const a2 = agent2.id;
    await ticket({
      team: teamId,
      createdAt: '2026-01-01T10:00:00Z',
      status: 'solved',
      priority: 'high',
      assignee: a1,
      firstResponseMin: 30,
      solvedAt: '2026-01-01T12:00:00Z',
    });
    await ticket({
      team: teamId,
      createdAt: '2026-01-02T03:00:00Z',
      status: 'closed',
      assignee: a1,
      firstResponseMin: 60,
      solvedAt: '2026-01-03T03:00:00Z',
      closedAt: '2026-01-04T03:00:00Z',
    });
    await ticket({
      team: teamId,
      createdAt: '2026-01-03T10:00:00Z',
      status: 'open',
      priority: 'urgent',
      assignee: a2,
      firstResponseMin: 90,
    });
    await ticket({ team: teamId, createdAt: '2026-01-04T10:00:00Z', status: 'new', priority: 'low' });
    await ticket({
      team: teamId,
      createdAt: '2025-12-20T10:00:00Z',
      status: 'solved',
      assignee: a2,
      firstResponseMin: 5,
      solvedAt: '2026-01-05T10:00:00Z',
    });
    await ticket({
      team: teamId,
      createdAt: '2026-01-06T10:00:00Z',
      status: 'pending',
      priority: 'high',
      assignee: a1,
      firstResponseMin: 10,
    });
    // Not counted: deleted, and another team's.
    await ticket({
      team: teamId,
      createdAt: '2026-01-02T10:00:00Z',
      status: 'open',
      assignee: a1,
      firstResponseMin: 1,
      deleted: true,
    });
    await ticket({
      team: otherTeamId,
      createdAt: '2026-01-02T10:00:00Z',
      status: 'solved',
      assignee: a1,
      firstResponseMin: 1,
      solvedAt: '2026-01-02T11:00:00Z',
    });
  });
  afterAll(() => app.close());

  const overview = (user: TestUser, query: string) =>
    app.inject({ method: 'GET', url: `/api/v1/reports/overview?${query}`, headers: user.auth });

  it('computes volume, percentiles, backlog, days and assignees of a known data set', async () => {
    const res = await overview(agent1, `teamId=${teamId}&from=2026-01-01T00:00:00Z&to=2026-01-08T00:00:00Z`);
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({
      from: '2026-01-01T00:00:00.000Z',
      to: '2026-01-08T00:00:00.000Z',
      timezone: 'America/New_York',
      created: 5,
      solved: 3,
      reopened: 0,
      backlog: {
        byStatus: { new: 1, open: 1, pending: 1, on_hold: 0 },
        byPriority: { low: 1, normal: 0, high: 1, urgent: 1 },
      },
      // 10, 30, 60, 90 minutes: median 45, p90 = 60 + 0.7 × 30.
      firstResponseMinutes: { median: 45, p90: 81 },
      // 120, 1440, 23040 minutes: median 1440, p90 = 1440 + 0.8 × 21600.
      resolutionMinutes: { median: 1440, p90: 18720 },
      sla: { firstResponseMet: null, resolutionMet: null },
      // Days in New York: 2026-01-02T03:00Z is the evening of Jan 1 there.
      byDay: [
        { date: '2025-12-31', created: 0, solved: 0 },
        { date: '2026-01-01', created: 2, solved: 1 },
        { date: '2026-01-02', created: 0, solved: 1 },
        { date: '2026-01-03', created: 1, solved: 0 },
        { date: '2026-01-04', created: 1, solved: 0 },
        { date: '2026-01-05', created: 0, solved: 1 },
        { date: '2026-01-06', created: 1, solved: 0 },
        { date: '2026-01-07', created: 0, solved: 0 },
      ],
      byAssignee: [
        { assignee: { id: agent1.id, name: 'Agent One' }, open: 1, solved: 2 },
        { assignee: { id: agent2.id, name: 'Agent Two' }, open: 1, solved: 1 },
      ],
    });
  });

  it('SLA attainment: the share of targets met among those decided in the period', async () => {
    const team = await newTeam();
    const policy = (
      await sql(
        // Applies to this test's own team only: no other ticket is governed by it.
        `INSERT INTO sla_policies (name, position, applies_to_team_id, targets)
         VALUES ($1, 1000000, $2, '{}'::jsonb) RETURNING id`,
        [`Report SLA ${randomUUID().slice(0, 8)}`, team],
      )
    ).rows[0].id as string;
    // The ticket's clock lives on tickets, its breach marks in ticket_sla (as the SLA service keeps them).
    const arrange = (cols: Record<string, string | null>) =>
      sql(
        `WITH t AS (
           INSERT INTO tickets (title, description, requester_id, team_id, status, created_at, updated_at, sla_policy_id,
                                sla_first_response_due_at, first_response_at, sla_resolution_due_at, solved_at, assignee_id)
           VALUES ('SLA fixture', 'x', $1, $2, $3, '2026-02-01T09:00:00Z', '2026-02-01T09:00:00Z', $4,
                   $5, $6, $8, $9, $11)
           RETURNING id)
         INSERT INTO ticket_sla (ticket_id, first_response_breached_at, resolution_breached_at)
         SELECT id, $7, $10 FROM t WHERE $7::timestamptz IS NOT NULL OR $10::timestamptz IS NOT NULL`,
        [
          requester.id,
          team,
          cols.status,
          policy,
          cols.frDue,
          cols.fr,
          cols.frBreach,
          cols.rsDue,
          cols.solved,
          cols.rsBreach,
          agent1.id,
        ],
      );
    // Met both: replied and solved in time.
    await arrange({
      status: 'solved',
      frDue: '2026-02-01T10:00:00Z',
      fr: '2026-02-01T09:30:00Z',
      frBreach: null,
      rsDue: '2026-02-02T09:00:00Z',
      solved: '2026-02-01T12:00:00Z',
      rsBreach: null,
    });
    // Missed both: first reply after its breach; resolution breached, still open.
    await arrange({
      status: 'open',
      frDue: '2026-02-01T10:00:00Z',
      fr: '2026-02-01T11:00:00Z',
      frBreach: '2026-02-01T10:00:00Z',
      rsDue: '2026-02-02T09:00:00Z',
      solved: null,
      rsBreach: '2026-02-02T09:00:00Z',
    });
    // Not decided yet: no reply, nothing breached.
    await arrange({
      status: 'new',
      frDue: '2026-02-09T10:00:00Z',
      fr: null,
      frBreach: null,
      rsDue: '2026-02-10T09:00:00Z',
      solved: null,
      rsBreach: null,
    });
    const res = await overview(agent1, `teamId=${team}&from=2026-02-01T00:00:00Z&to=2026-02-08T00:00:00Z`);
    expect(res.statusCode).toBe(200);
    expect(res.json().sla).toEqual({ firstResponseMet: 0.5, resolutionMet: 0.5 });
  });

  it('narrows every figure to one assignee', async () => {
    const res = await overview(
      admin,
      `teamId=${teamId}&assigneeId=${agent2.id}&from=2026-01-01T00:00:00Z&to=2026-01-08T00:00:00Z`,
    );
    expect(res.statusCode).toBe(200);
    const body = res.json();
    expect(body).toMatchObject({
      created: 1,
      solved: 1,
      backlog: { byStatus: { new: 0, open: 1, pending: 0, on_hold: 0 } },
      firstResponseMinutes: { median: 90, p90: 90 },
      resolutionMinutes: { median: 23040, p90: 23040 },
      byAssignee: [{ assignee: { id: agent2.id }, open: 1, solved: 1 }],
    });
  });

  it('an empty period has zero counts and null percentiles', async () => {
    const res = await overview(agent1, `teamId=${teamId}&from=2024-01-01T00:00:00Z&to=2024-01-02T00:00:00Z`);
    expect(res.statusCode).toBe(200);
    expect(res.json()).toMatchObject({
      created: 0,
      solved: 0,
      reopened: 0,
      firstResponseMinutes: { median: null, p90: null },
      resolutionMinutes: { median: null, p90: null },
      byDay: [
        { date: '2023-12-31', created: 0, solved: 0 },
        { date: '2024-01-01', created: 0, solved: 0 },
      ],
    });
  });

  it('counts reopenings (by the requester, and by a requester reply) in the default last 30 days', async () => {
    const team = await newTeam();
    const created = await app.inject({
      method: 'POST',
      url: '/api/v1/tickets',
      headers: agent1.auth,
      payload: { title: 'Reopened twice', description: 'x', requesterId: requester.id, teamId: team },
    });
    expect(created.statusCode).toBe(201);
    const id = created.json().id;
    const patch = (user: TestUser, payload: Record<string, unknown>) =>
      app.inject({ method: 'PATCH', url: `/api/v1/tickets/${id}`, headers: user.auth, payload });
    expect((await patch(agent1, { assigneeId: agent1.id, status: 'solved' })).statusCode).toBe(200);
    expect((await patch(requester, { status: 'open' })).statusCode).toBe(200);
    expect((await patch(agent1, { status: 'solved' })).statusCode).toBe(200);
    const reply = await app.inject({
      method: 'POST',
      url: `/api/v1/tickets/${id}/comments`,
      headers: requester.auth,
      payload: { body: 'Still broken' },
    });
    expect(reply.statusCode).toBe(201);

    const res = await overview(agent1, `teamId=${team}`);
    expect(res.statusCode).toBe(200);
    const body = res.json();
    expect(body).toMatchObject({ created: 1, solved: 0, reopened: 2 });
    expect(new Date(body.to).getTime() - new Date(body.from).getTime()).toBe(30 * 86_400_000);
    // Every day the period touches in the report timezone, from the day of `from` to the day before `to` ends.
    const day = (d: Date) => new Intl.DateTimeFormat('en-CA', { timeZone: 'America/New_York' }).format(d);
    expect(body.byDay[0].date).toBe(day(new Date(body.from)));
    expect(body.byDay.at(-1).date).toBe(day(new Date(new Date(body.to).getTime() - 1)));
    expect(body.byDay.length).toBeGreaterThanOrEqual(30);
  });

  it('requesters get 403 (audited access.denied); bad periods get 422', async () => {
    expectProblem(await overview(requester, ''), 403, 'FORBIDDEN');
    const { rows } = await sql(
      "SELECT metadata FROM audit_events WHERE action = 'access.denied' AND actor_id = $1",
      [requester.id],
    );
    expect(rows.map((r) => r.metadata.operation)).toContain('report.read');
    expectProblem(
      await overview(agent1, 'from=2026-01-02T00:00:00Z&to=2026-01-01T00:00:00Z'),
      422,
      'VALIDATION_FAILED',
    );
    expectProblem(
      await overview(agent1, 'from=2024-01-01T00:00:00Z&to=2026-01-01T00:00:00Z'),
      422,
      'VALIDATION_FAILED',
    );
    expectProblem(await overview(agent1, 'teamId=nope'), 422, 'VALIDATION_FAILED');
    expectProblem(await overview(agent1, 'unknown=1'), 422, 'VALIDATION_FAILED');
  });

  describe('GET /tickets/export', () => {
    const exportCsv = (user: TestUser, query: string) =>
      app.inject({ method: 'GET', url: `/api/v1/tickets/export?${query}`, headers: user.auth });

    it('streams every matching ticket as RFC 4180 CSV, past the largest list page', async () => {
      const tag = `export-${randomUUID().slice(0, 8)}`;
      await sql(
        `INSERT INTO tickets (title, description, requester_id, tags, created_at, updated_at)
         SELECT 'Bulk ' || g, 'Row ' || g, $1, ARRAY[$2], now() - g * interval '1 second', now() - g * interval '1 second'
         FROM generate_series(1, 130) AS g`,
        [requester.id, tag],
      );
      const res = await exportCsv(admin, `tag=${tag}&sort=createdAt`);
      expect(res.statusCode).toBe(200);
      expect(res.headers['content-type']).toBe('text/csv; charset=utf-8');
      expect(res.headers['content-disposition']).toMatch(
        /^attachment; filename="tickets-\d{4}-\d{2}-\d{2}\.csv"$/,
      );
      expect(res.body.split('\r\n')[0]).toBe(
        'id,title,status,priority,type,tags,requesterId,requesterName,requesterEmail,assigneeId,assigneeName,teamId,createdAt,updatedAt,firstResponseAt,solvedAt,closedAt,description',
      );
      const rows = parse(res.body, { columns: true }) as Record<string, string>[];
      expect(rows).toHaveLength(130);
      expect(new Set(rows.map((r) => r.id)).size).toBe(130);
      // sort=createdAt: oldest first, so the 130th second back comes first.
      expect(rows[0]!.title).toBe('Bulk 130');
      expect(rows[129]!.title).toBe('Bulk 1');
      expect(rows[0]).toMatchObject({
        status: 'new',
        priority: 'normal',
        tags: tag,
        requesterId: requester.id,
      });
    });

    it('quotes commas, quotes and line breaks, and defuses spreadsheet formulas', async () => {
      const tag = `csv-${randomUUID().slice(0, 8)}`;
      const titles = ['=HYPERLINK("http://evil.test","click")', '+1', '-2+3', '@SUM(A1)', 'plain, "quoted"'];
      for (const [i, title] of titles.entries()) {
        const res = await app.inject({
          method: 'POST',
          url: '/api/v1/tickets',
          headers: agent1.auth,
          payload: {
            title,
            description: i === 0 ? 'line one\nline two, with "quotes"' : 'ok',
            tags: [tag],
            requesterId: requester.id,
          },
        });
        expect(res.statusCode).toBe(201);
      }
      const res = await exportCsv(admin, `tag=${tag}&sort=createdAt`);
      expect(res.statusCode).toBe(200);
      const rows = parse(res.body, { columns: true }) as Record<string, string>[];
      expect(rows.map((r) => r.title)).toEqual([
        `'=HYPERLINK("http://evil.test","click")`,
        `'+1`,
        `'-2+3`,
        `'@SUM(A1)`,
        'plain, "quoted"',
      ]);
      expect(rows[0]!.description).toBe('line one\nline two, with "quotes"');
      // The raw text: the quote inside a quoted field is doubled (RFC 4180).
      expect(res.body).toContain('"plain, ""quoted"""');
    });

    it('applies the list filters and validates them like GET /tickets', async () => {
      const res = await exportCsv(admin, `teamId=${otherTeamId}&status=solved`);
      expect(res.statusCode).toBe(200);
      const rows = parse(res.body, { columns: true }) as Record<string, string>[];
      expect(rows).toHaveLength(1);
      expect(rows[0]).toMatchObject({ teamId: otherTeamId, status: 'solved', assigneeName: 'Agent One' });
      expectProblem(await exportCsv(admin, 'status=bogus'), 422, 'VALIDATION_FAILED');
      expectProblem(await exportCsv(admin, 'limit=5'), 422, 'VALIDATION_FAILED');
    });

    it('is for admins only: agents and requesters get 403', async () => {
      expectProblem(await exportCsv(agent1, ''), 403, 'FORBIDDEN');
      expectProblem(await exportCsv(requester, ''), 403, 'FORBIDDEN');
    });
  });
});
