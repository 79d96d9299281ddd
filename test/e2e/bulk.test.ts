import { randomUUID } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApp } from '../helpers/app.js';
import { createUser, type TestUser } from '../helpers/factory.js';
import { expectProblem } from '../helpers/http.js';
import { auditEvents, createTicket, patchTicket } from '../helpers/tickets.js';

let app: FastifyInstance;
let requester: TestUser;
let agent: TestUser;
let otherAgent: TestUser;
let admin: TestUser;
/** Added to the server's clock: lets a test step past the token's 10 minutes. */
let clockOffsetMs = 0;

beforeAll(async () => {
  app = await createTestApp(
    { JOBS_POLL_INTERVAL_MS: '200' },
    { clock: { now: () => new Date(Date.now() + clockOffsetMs) } },
  );
  await app.jobRunner.start({ schedules: false });
  [requester, agent, otherAgent, admin] = await Promise.all([
    createUser(app, { role: 'requester' }),
    createUser(app, { role: 'agent' }),
    createUser(app, { role: 'agent' }),
    createUser(app, { role: 'admin' }),
  ]);
});
afterAll(() => app.close());

const bulk = (user: TestUser, payload: Record<string, unknown>) =>
  app.inject({ method: 'POST', url: '/api/v1/tickets/bulk', headers: user.auth, payload });
const get = (user: TestUser, url: string) =>
  app.inject({ method: 'GET', url: `/api/v1${url}`, headers: user.auth });

// biome-ignore lint/suspicious/noExplicitAny: the job resource as the API answers it.
async function finished(user: TestUser, jobId: string): Promise<any> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const res = await get(user, `/jobs/${jobId}`);
    expect(res.statusCode).toBe(200);
    if (['succeeded', 'failed'].includes(res.json().state)) return res.json();
    if (Date.now() > deadline) throw new Error(`job ${jobId} did not finish: ${res.body}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('bulk changes: preview, then confirm', () => {
  it('the executed job reports exactly the dry run outcomes, per ticket, and changes only what it said', async () => {
    const fresh = await createTicket(app, requester);
    const already = await createTicket(app, requester);
    expect(
      (await patchTicket(app, admin, already.id, { priority: 'high', tags: ['bulk'], status: 'pending' }))
        .statusCode,
    ).toBe(200);
    const closed = await createTicket(app, requester);
    expect((await patchTicket(app, admin, closed.id, { status: 'cancelled' })).statusCode).toBe(200);
    const held = await createTicket(app, requester);
    expect((await patchTicket(app, admin, held.id, { assigneeId: otherAgent.id })).statusCode).toBe(200);
    const ids = [fresh.id, already.id, closed.id, held.id, 2_000_000_000];
    const changes = { priority: 'high', addTags: ['bulk'], status: 'pending' };

    const before = await Promise.all(
      ids.slice(0, 4).map(async (id) => (await get(admin, `/tickets/${id}`)).json()),
    );
    const preview = await bulk(agent, { ids, changes, dryRun: true });
    expect(preview.statusCode, preview.body).toBe(200);
    const { matched, results, confirmationToken } = preview.json();
    expect(matched).toBe(5);
    expect(results).toEqual([
      { id: fresh.id, outcome: 'change' },
      { id: already.id, outcome: 'skip' }, // nothing would change
      { id: closed.id, outcome: 'error', code: 'TICKET_CLOSED' },
      { id: held.id, outcome: 'error', code: 'FORBIDDEN' }, // an agent may not move a colleague's ticket
      { id: 2_000_000_000, outcome: 'error', code: 'TICKET_NOT_FOUND' },
    ]);
    // The dry run changed nothing.
    for (const t of before) expect((await get(admin, `/tickets/${t.id}`)).json().version).toBe(t.version);
    expect(await auditEvents(app, { entityType: 'ticket', entityId: fresh.id })).toHaveLength(1); // created only

    const run = await bulk(agent, { ids, changes, confirmationToken });
    expect(run.statusCode, run.body).toBe(202);
    const { jobId, bulkId } = run.json();
    expect(run.headers.location).toBe(`/api/v1/jobs/${jobId}`);
    const job = await finished(agent, jobId);
    expect(job).toMatchObject({ kind: 'tickets.bulk', state: 'succeeded', progress: { done: 5, total: 5 } });
    expect(job.result).toMatchObject({ bulkId, matched: 5, changed: 1, skipped: 1, failed: 3 });
    expect(job.result.results).toEqual(results);

    expect((await get(admin, `/tickets/${fresh.id}`)).json()).toMatchObject({
      priority: 'high',
      tags: ['bulk'],
      status: 'pending',
    });
    // The skipped ticket did not move.
    expect((await get(admin, `/tickets/${already.id}`)).json().version).toBe(before[1].version);
  });

  it('partial failures are reported per ticket and do not stop the others', async () => {
    const mine = await createTicket(app, requester);
    expect((await patchTicket(app, agent, mine.id, { assigneeId: agent.id })).statusCode).toBe(200);
    const fresh = await createTicket(app, requester);
    const ids = [mine.id, fresh.id];
    const changes = { status: 'solved' }; // a solved ticket needs an assignee: the unassigned one fails
    const preview = (await bulk(agent, { ids, changes, dryRun: true })).json();
    expect(preview.results).toEqual([
      { id: mine.id, outcome: 'change' },
      { id: fresh.id, outcome: 'error', code: 'INVALID_TRANSITION' },
    ]);
    const job = await finished(
      agent,
      (await bulk(agent, { ids, changes, confirmationToken: preview.confirmationToken })).json().jobId,
    );
    expect(job.result.results).toEqual(preview.results);
    expect((await get(agent, `/tickets/${mine.id}`)).json().status).toBe('solved');
    expect((await get(agent, `/tickets/${fresh.id}`)).json().status).toBe('new');
    const events = await auditEvents(app, { entityType: 'ticket', entityId: mine.id });
    expect(events.at(-1)).toMatchObject({
      action: 'ticket.status_changed',
      actor_id: agent.id,
      metadata: { bulkId: job.result.bulkId },
    });
  });

  it('a filter is resolved once, at the dry run: executing changes exactly that snapshot', async () => {
    const tag = `snap-${randomUUID().slice(0, 8)}`;
    const a = await createTicket(app, requester);
    const b = await createTicket(app, requester);
    for (const t of [a, b])
      expect((await patchTicket(app, admin, t.id, { tags: [tag] })).statusCode).toBe(200);
    const filter = { tag };
    const changes = { removeTags: [tag], addTags: ['done'] };
    const preview = (await bulk(admin, { filter, changes, dryRun: true })).json();
    expect(preview.matched).toBe(2);
    expect(preview.results.map((r: { id: number }) => r.id).sort()).toEqual([a.id, b.id].sort());
    const late = await createTicket(app, requester);
    expect((await patchTicket(app, admin, late.id, { tags: [tag] })).statusCode).toBe(200);

    const job = await finished(
      admin,
      (await bulk(admin, { filter, changes, confirmationToken: preview.confirmationToken })).json().jobId,
    );
    expect(job.result.results).toEqual(preview.results);
    expect((await get(admin, `/tickets/${a.id}`)).json().tags).toEqual(['done']);
    expect((await get(admin, `/tickets/${late.id}`)).json().tags).toEqual([tag]);
  });

  it('a token works once, for this request and user, for 10 minutes', async () => {
    const t = await createTicket(app, requester);
    const ids = [t.id];
    const changes = { priority: 'low' };
    const { confirmationToken } = (await bulk(admin, { ids, changes, dryRun: true })).json();

    const [run, exp, mac] = confirmationToken.split('.');
    const flipped = `${run}.${exp}.${mac.slice(0, -1)}${mac.endsWith('A') ? 'B' : 'A'}`;
    expectProblem(
      await bulk(admin, { ids, changes, confirmationToken: flipped }),
      422,
      'CONFIRMATION_TOKEN_INVALID',
    );
    const longer = `${run}.${Number(exp) + 600_000}.${mac}`;
    expectProblem(
      await bulk(admin, { ids, changes, confirmationToken: longer }),
      422,
      'CONFIRMATION_TOKEN_INVALID',
    );
    expectProblem(
      await bulk(admin, { ids, changes: { priority: 'urgent' }, confirmationToken }),
      422,
      'CONFIRMATION_TOKEN_INVALID',
    );
    const other = await createTicket(app, requester);
    expectProblem(
      await bulk(admin, { ids: [t.id, other.id], changes, confirmationToken }),
      422,
      'CONFIRMATION_TOKEN_INVALID',
    );
    const otherAdmin = await createUser(app, { role: 'admin' });
    expectProblem(
      await bulk(otherAdmin, { ids, changes, confirmationToken }),
      422,
      'CONFIRMATION_TOKEN_INVALID',
    );

    expect((await bulk(admin, { ids, changes, confirmationToken })).statusCode).toBe(202);
    expectProblem(await bulk(admin, { ids, changes, confirmationToken }), 409, 'CONFIRMATION_TOKEN_USED');

    const second = (await bulk(admin, { ids, changes: { priority: 'high' }, dryRun: true })).json();
    clockOffsetMs = 10 * 60 * 1000 + 1000;
    try {
      expectProblem(
        await bulk(admin, {
          ids,
          changes: { priority: 'high' },
          confirmationToken: second.confirmationToken,
        }),
        422,
        'CONFIRMATION_TOKEN_EXPIRED',
      );
    } finally {
      clockOffsetMs = 0;
    }
  });

  it('bad requests: no token and no dryRun, both ids and filter, more than 1,000 ids → 422', async () => {
    expectProblem(await bulk(admin, { ids: [1], changes: { priority: 'low' } }), 422, 'VALIDATION_FAILED');
    expectProblem(
      await bulk(admin, { ids: [1], filter: { tag: 'x' }, changes: { priority: 'low' }, dryRun: true }),
      422,
      'VALIDATION_FAILED',
    );
    const many = Array.from({ length: 1001 }, (_, i) => i + 1);
    expectProblem(
      await bulk(admin, { ids: many, changes: { priority: 'low' }, dryRun: true }),
      422,
      'VALIDATION_FAILED',
    );
    expectProblem(await bulk(admin, { ids: [1], changes: {}, dryRun: true }), 422, 'VALIDATION_FAILED');
  });
});
