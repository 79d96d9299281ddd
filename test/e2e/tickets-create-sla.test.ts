import { randomUUID } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from '../../src/app.js';
import { testConfig } from '../helpers/app.js';
import { createUser, type TestUser } from '../helpers/factory.js';

// A new ticket's SLA is planned from the policies an instance holds in memory. Two instances on one
// database (the same secret, so a token works on both): policies changed through one are seen by the
// very next ticket created through the other.

let a: FastifyInstance;
let b: FastifyInstance;
let admin: TestUser;
let agent: TestUser;
let requester: TestUser;
let teamId: string;

beforeAll(async () => {
  const config = testConfig({ RATE_LIMIT_MAX: '100000' });
  a = await buildApp(config, { logger: false });
  b = await buildApp(config, { logger: false });
  admin = await createUser(a, { role: 'admin' });
  agent = await createUser(a, { role: 'agent' });
  requester = await createUser(a, { role: 'requester' });
  const team = await b.inject({
    method: 'POST',
    url: '/api/v1/teams',
    headers: admin.auth,
    payload: { name: `create-sla ${randomUUID().slice(0, 8)}` },
  });
  expect(team.statusCode).toBe(201);
  teamId = team.json().id;
});
afterAll(async () => {
  await a?.close();
  await b?.close();
});

interface Created {
  id: number;
  createdAt: string;
  sla: { policyId: string; firstResponseDueAt: string | null; resolutionDueAt: string | null } | null;
}

async function createOn(app: FastifyInstance, priority = 'normal'): Promise<Created> {
  const res = await app.inject({
    method: 'POST',
    url: '/api/v1/tickets',
    headers: agent.auth,
    payload: { title: 'SLA plan', description: 'd', requesterId: requester.id, teamId, priority },
  });
  expect(res.statusCode, res.body).toBe(201);
  return res.json();
}

const plus = (iso: string, minutes: number) => new Date(Date.parse(iso) + minutes * 60_000).toISOString();

async function breachCheckAt(id: number): Promise<Date | null> {
  const { rows } = await a.db.$client.query<{ at: Date | null }>(
    'SELECT breach_check_at AS at FROM ticket_sla WHERE ticket_id = $1',
    [id],
  );
  return rows[0]?.at ?? null;
}

describe('a new ticket’s SLA across instances', () => {
  it('follows policies created, changed and deleted on another instance', async () => {
    // Instance a reads (and keeps) the policies: none applies to this team yet.
    const before = await createOn(a);
    expect(before.sla).toBeNull();
    expect(await breachCheckAt(before.id)).toBeNull();

    const created = await b.inject({
      method: 'POST',
      url: '/api/v1/sla-policies',
      headers: admin.auth,
      payload: {
        name: `team ${teamId.slice(0, 8)}`,
        appliesTo: { teamId },
        targets: { normal: { firstResponseMinutes: 60, resolutionMinutes: 480 } },
      },
    });
    expect(created.statusCode, created.body).toBe(201);
    const policyId = created.json().id as string;

    const governed = await createOn(a);
    expect(governed.sla).toMatchObject({
      policyId,
      firstResponseDueAt: plus(governed.createdAt, 60),
      resolutionDueAt: plus(governed.createdAt, 480),
    });
    // The breach job's queue has the ticket, due at its first target.
    expect((await breachCheckAt(governed.id))?.toISOString()).toBe(plus(governed.createdAt, 60));
    // The same ticket read back shows what the create answered.
    const read = await a.inject({
      method: 'GET',
      url: `/api/v1/tickets/${governed.id}`,
      headers: agent.auth,
    });
    expect(read.json().sla).toEqual(governed.sla);

    const changed = await b.inject({
      method: 'PATCH',
      url: `/api/v1/sla-policies/${policyId}`,
      headers: admin.auth,
      payload: { targets: { normal: { firstResponseMinutes: 30 } } },
    });
    expect(changed.statusCode, changed.body).toBe(200);
    const faster = await createOn(a);
    expect(faster.sla).toMatchObject({
      policyId,
      firstResponseDueAt: plus(faster.createdAt, 30),
      resolutionDueAt: null,
    });
    // A priority the policy has no target for: governed, nothing due.
    const untargeted = await createOn(a, 'low');
    expect(untargeted.sla).toMatchObject({ policyId, firstResponseDueAt: null, resolutionDueAt: null });
    expect(await breachCheckAt(untargeted.id)).toBeNull();

    const removed = await b.inject({
      method: 'DELETE',
      url: `/api/v1/sla-policies/${policyId}`,
      headers: admin.auth,
    });
    expect(removed.statusCode).toBe(204);
    expect((await createOn(a)).sla).toBeNull();
  });
});
