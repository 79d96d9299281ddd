import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApp } from '../helpers/app.js';
import { settled } from '../helpers/changes.js';
import { createUser, type TestUser } from '../helpers/factory.js';
import { expectProblem } from '../helpers/http.js';
import { auditEvents, createTicket, patchTicket } from '../helpers/tickets.js';

let app: FastifyInstance;
let requester: TestUser;
let agent: TestUser;
let admin: TestUser;

beforeAll(async () => {
  app = await createTestApp();
  [requester, agent, admin] = await Promise.all([
    createUser(app, { role: 'requester' }),
    createUser(app, { role: 'agent' }),
    createUser(app, { role: 'admin' }),
  ]);
});
afterAll(() => app.close());

const merge = (user: TestUser, id: number, targetId: number) =>
  app.inject({
    method: 'POST',
    url: `/api/v1/tickets/${id}/merge`,
    headers: user.auth,
    payload: { targetId },
  });
const get = (user: TestUser, url: string) =>
  app.inject({ method: 'GET', url: `/api/v1${url}`, headers: user.auth });

async function comment(user: TestUser, id: number, body: string, visibility = 'public') {
  const res = await app.inject({
    method: 'POST',
    url: `/api/v1/tickets/${id}/comments`,
    headers: user.auth,
    payload: { body, visibility },
  });
  expect(res.statusCode).toBe(201);
  return res.json().id as string;
}

describe('merging a ticket into another', () => {
  it('closes the source with mergedIntoId and moves its comments and attachments to the target', async () => {
    const source = await createTicket(app, requester, { title: 'dup' });
    const target = await createTicket(app, requester, { title: 'keeper' });
    expect(source.mergedIntoId).toBeNull();
    const reply = await comment(requester, source.id, 'zanzibarquokka details');
    const note = await comment(agent, source.id, 'internal hint', 'internal');
    const boundary = 'mergeboundary';
    const up = await app.inject({
      method: 'POST',
      url: `/api/v1/tickets/${source.id}/attachments`,
      headers: { ...requester.auth, 'content-type': `multipart/form-data; boundary=${boundary}` },
      payload: `--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="a.txt"\r\nContent-Type: text/plain\r\n\r\nhello\r\n--${boundary}--\r\n`,
    });
    expect(up.statusCode, up.body).toBe(201);
    const fileId = up.json().data[0].id;

    const res = await merge(agent, source.id, target.id);
    expect(res.statusCode, res.body).toBe(200);
    expect(res.json()).toMatchObject({ id: target.id, version: target.version + 1, mergedIntoId: null });

    const closed = (await get(admin, `/tickets/${source.id}`)).json();
    expect(closed).toMatchObject({ status: 'closed', mergedIntoId: target.id, closedAt: expect.any(String) });

    const staffComments = (await get(agent, `/tickets/${target.id}/comments`)).json().data;
    expect(staffComments.map((c: { id: string }) => c.id)).toEqual([reply, note]);
    const requesterComments = (await get(requester, `/tickets/${target.id}/comments`)).json().data;
    expect(requesterComments.map((c: { id: string }) => c.id)).toEqual([reply]); // internal stays internal
    expect((await get(agent, `/tickets/${source.id}/comments`)).json().data).toEqual([]);
    expect((await get(requester, `/attachments/${fileId}`)).statusCode).toBe(200);
    const search = (await get(requester, '/tickets?q=zanzibarquokka')).json().data;
    expect(search.map((t: { id: number }) => t.id)).toEqual([target.id]);

    const [onSource] = await auditEvents(app, { action: 'ticket.merged', entityId: source.id });
    expect(onSource).toMatchObject({
      actor_id: agent.id,
      changes: { status: ['new', 'closed'], mergedIntoId: [null, target.id] },
      metadata: { targetId: target.id, movedComments: 2, movedAttachments: 1 },
    });
    const [onTarget] = await auditEvents(app, { action: 'ticket.merged', entityId: target.id });
    expect(onTarget).toMatchObject({ actor_id: agent.id, metadata: { sourceId: source.id } });

    await settled(app.db);
    for (const id of [source.id, target.id]) {
      const feed = (await get(requester, `/changes?ticketId=${id}&limit=500`)).json().data;
      expect(feed.map((e: { type: string }) => e.type)).toContain('ticket.merged');
    }
  });

  it('into itself → 422; into or from a closed or deleted ticket → 409; requesters → 403', async () => {
    const a = await createTicket(app, requester);
    const b = await createTicket(app, requester);
    expectProblem(await merge(agent, a.id, a.id), 422, 'MERGE_INTO_SELF');
    expectProblem(await merge(requester, a.id, b.id), 403, 'FORBIDDEN');
    expectProblem(await merge(agent, a.id, 2_000_000_000), 404, 'TICKET_NOT_FOUND');

    const cancelled = await createTicket(app, requester);
    expect((await patchTicket(app, admin, cancelled.id, { status: 'cancelled' })).statusCode).toBe(200);
    expectProblem(await merge(agent, a.id, cancelled.id), 409, 'TICKET_CLOSED');
    expectProblem(await merge(agent, cancelled.id, a.id), 409, 'TICKET_CLOSED');

    const deleted = await createTicket(app, requester);
    expect(
      (await app.inject({ method: 'DELETE', url: `/api/v1/tickets/${deleted.id}`, headers: admin.auth }))
        .statusCode,
    ).toBe(204);
    expectProblem(await merge(admin, a.id, deleted.id), 409, 'TICKET_DELETED');

    expect((await merge(agent, a.id, b.id)).statusCode).toBe(200);
    // A merged ticket is closed: neither merged again nor a merge target.
    expectProblem(await merge(agent, a.id, b.id), 409, 'TICKET_CLOSED');
    const c = await createTicket(app, requester);
    expectProblem(await merge(agent, c.id, a.id), 409, 'TICKET_CLOSED');
    // Nothing changed on the refused attempts.
    expect((await get(admin, `/tickets/${c.id}`)).json()).toMatchObject({
      version: c.version,
      mergedIntoId: null,
    });
  });
});
