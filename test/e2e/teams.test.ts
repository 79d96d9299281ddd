import { randomUUID } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApp } from '../helpers/app.js';
import { createUser, type TestUser } from '../helpers/factory.js';
import { expectProblem } from '../helpers/http.js';

describe('teams: admins write, agents read, requesters nothing', () => {
  let app: FastifyInstance;
  let admin: TestUser;
  let agent: TestUser;
  let agent2: TestUser;
  let requester: TestUser;
  const teamName = () => `Team ${randomUUID().slice(0, 8)}`;

  beforeAll(async () => {
    app = await createTestApp({ RATE_LIMIT_MAX: '100000' });
    admin = await createUser(app, { role: 'admin' });
    agent = await createUser(app, { role: 'agent' });
    agent2 = await createUser(app, { role: 'agent' });
    requester = await createUser(app, { role: 'requester' });
  });
  afterAll(() => app.close());

  const create = (user: TestUser, payload: Record<string, unknown>) =>
    app.inject({ method: 'POST', url: '/api/v1/teams', headers: user.auth, payload });
  const patch = (user: TestUser, id: string, payload: Record<string, unknown>) =>
    app.inject({ method: 'PATCH', url: `/api/v1/teams/${id}`, headers: user.auth, payload });

  async function audits(id: string) {
    const { rows } = await app.db.$client.query(
      "SELECT action, actor_id, changes FROM audit_events WHERE entity_type = 'team' AND entity_id = $1 ORDER BY seq",
      [id],
    );
    return rows;
  }

  it('admin creates a team with agent members: 201 + Location, audited team.created', async () => {
    const name = teamName();
    const res = await create(admin, { name, memberIds: [agent.id, admin.id, agent.id] });
    expect(res.statusCode).toBe(201);
    const team = res.json();
    expect(team).toEqual({ id: expect.any(String), name, memberIds: [agent.id, admin.id].sort() });
    expect(res.headers.location).toBe(`/api/v1/teams/${team.id}`);
    expect(await audits(team.id)).toEqual([
      {
        action: 'team.created',
        actor_id: admin.id,
        changes: { name: [null, name], memberIds: [null, [agent.id, admin.id].sort()] },
      },
    ]);
  });

  it('team names are unique case-insensitively → 409 TEAM_NAME_TAKEN', async () => {
    const name = teamName();
    expect((await create(admin, { name })).statusCode).toBe(201);
    expectProblem(await create(admin, { name: name.toUpperCase() }), 409, 'TEAM_NAME_TAKEN');
  });

  it('members must be active agents or admins → 422', async () => {
    const inactiveAgent = await createUser(app, { role: 'agent', active: false });
    for (const id of [requester.id, inactiveAgent.id, randomUUID()]) {
      expectProblem(await create(admin, { name: teamName(), memberIds: [id] }), 422, 'VALIDATION_FAILED');
    }
  });

  it('admin renames and replaces members: one team.updated event with both changes', async () => {
    const team = (await create(admin, { name: teamName(), memberIds: [agent.id] })).json();
    const name = teamName();
    const res = await patch(admin, team.id, { name, memberIds: [agent2.id] });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ id: team.id, name, memberIds: [agent2.id] });
    const events = await audits(team.id);
    expect(events[1]).toEqual({
      action: 'team.updated',
      actor_id: admin.id,
      changes: { name: [team.name, name], memberIds: [[agent.id], [agent2.id]] },
    });
    const other = (await create(admin, { name: teamName() })).json();
    expectProblem(await patch(admin, other.id, { name: name.toLowerCase() }), 409, 'TEAM_NAME_TAKEN');
    expectProblem(await patch(admin, randomUUID(), { name: teamName() }), 404, 'TEAM_NOT_FOUND');
    expectProblem(await patch(admin, team.id, { members: [] }), 422, 'VALIDATION_FAILED');
  });

  it('agent reads the list and a team; cannot create or change one (403, audited)', async () => {
    const team = (await create(admin, { name: teamName(), memberIds: [agent.id] })).json();
    const get = await app.inject({ method: 'GET', url: `/api/v1/teams/${team.id}`, headers: agent.auth });
    expect(get.json()).toEqual(team);
    // Walk the whole list (other tests add teams too) and find ours.
    const found: string[] = [];
    let cursor: string | null = null;
    do {
      const res: Awaited<ReturnType<FastifyInstance['inject']>> = await app.inject({
        method: 'GET',
        url: `/api/v1/teams?limit=100${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`,
        headers: agent.auth,
      });
      expect(res.statusCode).toBe(200);
      found.push(...res.json().data.map((t: { id: string }) => t.id));
      cursor = res.json().nextCursor;
    } while (cursor);
    expect(found).toContain(team.id);

    const traceId = `deny-team-${randomUUID()}`;
    const denied = await app.inject({
      method: 'POST',
      url: '/api/v1/teams',
      headers: { ...agent.auth, 'x-request-id': traceId },
      payload: { name: teamName() },
    });
    expectProblem(denied, 403, 'FORBIDDEN');
    const { rows } = await app.db.$client.query(
      "SELECT metadata FROM audit_events WHERE action = 'access.denied' AND trace_id = $1",
      [traceId],
    );
    expect(rows[0].metadata).toMatchObject({ operation: 'team.manage' });
    expectProblem(await patch(agent, team.id, { name: teamName() }), 403, 'FORBIDDEN');
  });

  it('requester cannot read, create or change teams (403)', async () => {
    const team = (await create(admin, { name: teamName() })).json();
    expectProblem(
      await app.inject({ method: 'GET', url: '/api/v1/teams', headers: requester.auth }),
      403,
      'FORBIDDEN',
    );
    expectProblem(
      await app.inject({ method: 'GET', url: `/api/v1/teams/${team.id}`, headers: requester.auth }),
      403,
      'FORBIDDEN',
    );
    expectProblem(await create(requester, { name: teamName() }), 403, 'FORBIDDEN');
    expectProblem(await patch(requester, team.id, { name: teamName() }), 403, 'FORBIDDEN');
  });

  it('pagination: limit and nextCursor walk the list without repeats', async () => {
    for (let i = 0; i < 3; i++) await create(admin, { name: teamName() });
    const ids: string[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const res: Awaited<ReturnType<FastifyInstance['inject']>> = await app.inject({
        method: 'GET',
        url: `/api/v1/teams?limit=2${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`,
        headers: admin.auth,
      });
      const body: { data: { id: string }[]; nextCursor: string | null } = res.json();
      expect(body.data.length).toBeLessThanOrEqual(2);
      ids.push(...body.data.map((t: { id: string }) => t.id));
      cursor = body.nextCursor;
      pages++;
    } while (cursor && pages < 500);
    expect(new Set(ids).size).toBe(ids.length);
    expect(ids.length).toBeGreaterThanOrEqual(3);
  });
});
