import { randomUUID } from 'node:crypto';
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
let otherAgent: TestUser;
let admin: TestUser;

beforeAll(async () => {
  app = await createTestApp();
  [requester, agent, otherAgent, admin] = await Promise.all([
    createUser(app, { role: 'requester' }),
    createUser(app, { role: 'agent', name: 'Ada Agent' }),
    createUser(app, { role: 'agent' }),
    createUser(app, { role: 'admin', name: 'Alma Admin' }),
  ]);
});
afterAll(() => app.close());

function post(user: TestUser, url: string, payload?: unknown, headers: Record<string, string> = {}) {
  return app.inject({
    method: 'POST',
    url: `/api/v1${url}`,
    headers: { ...user.auth, ...headers },
    ...(payload === undefined ? {} : { payload: payload as Record<string, unknown> }),
  });
}
function get(user: TestUser, url: string) {
  return app.inject({ method: 'GET', url: `/api/v1${url}`, headers: user.auth });
}

async function draft(user: TestUser, ticketId: number, payload: Record<string, unknown>) {
  const res = await post(user, `/tickets/${ticketId}/drafts`, payload);
  expect(res.statusCode, res.body).toBe(201);
  return res.json();
}

describe('creating and listing drafts', () => {
  it('an agent drafts a reply with changes; the draft records the ticket version', async () => {
    const ticket = await createTicket(app, requester);
    const d = await draft(agent, ticket.id, {
      body: 'Try the new VPN profile.',
      changes: { priority: 'high', tags: ['VPN', 'vpn'] },
      note: 'suggested',
    });
    expect(d).toMatchObject({
      ticketId: ticket.id,
      author: { id: agent.id, name: 'Ada Agent', role: 'agent' },
      body: 'Try the new VPN profile.',
      visibility: 'public',
      changes: { priority: 'high', tags: ['vpn'] },
      note: 'suggested',
      state: 'pending',
      ticketVersion: ticket.version,
      decidedAt: null,
      decidedBy: null,
    });
    const [created] = await auditEvents(app, { action: 'draft.created', entityId: d.id });
    expect(created).toMatchObject({ actor_id: agent.id, metadata: { ticketId: String(ticket.id) } });

    const list = await get(agent, `/tickets/${ticket.id}/drafts`);
    expect(list.statusCode).toBe(200);
    expect(list.json().data.map((x: { id: string }) => x.id)).toEqual([d.id]);
  });

  it('an assistant with only a drafts:write token proposes; it cannot approve or change the ticket itself', async () => {
    const minted = await post(agent, '/auth/tokens', { name: 'triage assistant', scopes: ['drafts:write'] });
    expect(minted.statusCode).toBe(201);
    const assistant = { authorization: `Bearer ${minted.json().token}` };
    const ticket = await createTicket(app, requester);
    const proposed = await app.inject({
      method: 'POST',
      url: `/api/v1/tickets/${ticket.id}/drafts`,
      headers: assistant,
      payload: { body: 'Restart the router.', changes: { priority: 'urgent' } },
    });
    expect(proposed.statusCode, proposed.body).toBe(201);
    const d = proposed.json();
    expect(d.author).toMatchObject({ id: agent.id });

    const approveByToken = await app.inject({
      method: 'POST',
      url: `/api/v1/drafts/${d.id}/approve`,
      headers: assistant,
      payload: {},
    });
    expectProblem(approveByToken, 403, 'INSUFFICIENT_SCOPE');
    const patchByToken = await app.inject({
      method: 'PATCH',
      url: `/api/v1/tickets/${ticket.id}`,
      headers: assistant,
      payload: { priority: 'urgent' },
    });
    expectProblem(patchByToken, 403, 'INSUFFICIENT_SCOPE');
    expect((await get(agent, `/tickets/${ticket.id}`)).json().priority).toBe(ticket.priority);

    const approved = await post(otherAgent, `/drafts/${d.id}/approve`, {});
    expect(approved.statusCode, approved.body).toBe(200);
    expect(approved.json().ticket.priority).toBe('urgent');
  });

  it('a draft without a reply or changes → 422; on a closed ticket → 409', async () => {
    const ticket = await createTicket(app, requester);
    expectProblem(
      await post(agent, `/tickets/${ticket.id}/drafts`, { note: 'nothing' }),
      422,
      'VALIDATION_FAILED',
    );
    expect((await patchTicket(app, admin, ticket.id, { status: 'cancelled' })).statusCode).toBe(200);
    expectProblem(await post(agent, `/tickets/${ticket.id}/drafts`, { body: 'hi' }), 409, 'TICKET_CLOSED');
  });

  it('the queue lists pending drafts oldest first, keyset-paginated, each once', async () => {
    const ticket = await createTicket(app, requester);
    const mine: string[] = [];
    for (let i = 0; i < 3; i++) mine.push((await draft(agent, ticket.id, { body: `q${i}` })).id);
    const seen: string[] = [];
    let url = '/drafts?state=pending&limit=2';
    for (let i = 0; i < 500 && url; i++) {
      const res = await get(admin, url);
      expect(res.statusCode).toBe(200);
      const page = res.json();
      for (const x of page.data) {
        expect(x.state).toBe('pending');
        seen.push(x.id);
      }
      url = page.nextCursor
        ? `/drafts?state=pending&limit=2&cursor=${encodeURIComponent(page.nextCursor)}`
        : '';
    }
    expect(new Set(seen).size).toBe(seen.length);
    expect(seen.filter((id) => mine.includes(id))).toEqual(mine);
  });

  it('the queue leaves out drafts of a deleted ticket', async () => {
    const ticket = await createTicket(app, requester);
    const d = await draft(agent, ticket.id, { body: 'gone soon' });
    const live = await draft(agent, (await createTicket(app, requester)).id, { body: 'stays' });
    const del = await app.inject({
      method: 'DELETE',
      url: `/api/v1/tickets/${ticket.id}`,
      headers: admin.auth,
    });
    expect(del.statusCode).toBe(204);
    const ids: string[] = [];
    let url = '/drafts?limit=100';
    for (let i = 0; i < 500 && url; i++) {
      const page = (await get(admin, url)).json();
      ids.push(...page.data.map((x: { id: string }) => x.id));
      url = page.nextCursor ? `/drafts?limit=100&cursor=${encodeURIComponent(page.nextCursor)}` : '';
    }
    expect(ids).not.toContain(d.id);
    expect(ids).toContain(live.id);
  });
});

describe('requesters never see drafts', () => {
  it('403 on every draft route; no draft in ticket, comments or change feed', async () => {
    const ticket = await createTicket(app, requester);
    const secret = `secret-draft-${randomUUID()}`;
    const d = await draft(agent, ticket.id, { body: secret, changes: { priority: 'urgent' } });
    expectProblem(await post(requester, `/tickets/${ticket.id}/drafts`, { body: 'x' }), 403, 'FORBIDDEN');
    expectProblem(await get(requester, `/tickets/${ticket.id}/drafts`), 403, 'FORBIDDEN');
    expectProblem(await get(requester, '/drafts'), 403, 'FORBIDDEN');
    expectProblem(await post(requester, `/drafts/${d.id}/approve`, {}), 403, 'FORBIDDEN');
    expectProblem(await post(requester, `/drafts/${d.id}/reject`, {}), 403, 'FORBIDDEN');

    expect((await get(requester, `/tickets/${ticket.id}`)).body).not.toContain(secret);
    expect((await get(requester, `/tickets/${ticket.id}/comments`)).body).not.toContain(secret);
    await post(admin, `/drafts/${d.id}/reject`, { reason: 'no' });
    await settled(app.db);
    const feed = await get(requester, `/changes?ticketId=${ticket.id}&limit=500`);
    expect(feed.statusCode).toBe(200);
    expect(feed.body).not.toContain(secret);
    expect(feed.json().data.map((e: { type: string }) => e.type)).toEqual(['ticket.created']);
    const staffFeed = await get(admin, `/changes?ticketId=${ticket.id}&limit=500`);
    expect(staffFeed.json().data.map((e: { type: string }) => e.type)).toEqual([
      'ticket.created',
      'draft.created',
      'draft.rejected',
    ]);
  });
});

describe('approving', () => {
  it('applies reply and changes in one transaction as the approver; audit names both', async () => {
    const ticket = await createTicket(app, requester);
    const d = await draft(agent, ticket.id, {
      body: 'We are on it.',
      changes: { assigneeId: agent.id, priority: 'high' },
    });
    const res = await post(admin, `/drafts/${d.id}/approve`, {});
    expect(res.statusCode, res.body).toBe(200);
    const { ticket: after, comment } = res.json();
    expect(after).toMatchObject({
      id: ticket.id,
      status: 'open',
      priority: 'high',
      assignee: { id: agent.id },
    });
    expect(res.headers.etag).toBe(`"${after.version}"`);
    expect(comment).toMatchObject({ body: 'We are on it.', visibility: 'public', author: { id: admin.id } });

    const [commentEvent] = await auditEvents(app, { action: 'comment.created', entityId: comment.id });
    expect(commentEvent).toMatchObject({
      actor_id: admin.id,
      metadata: { draftAuthorId: agent.id, draftId: d.id },
    });
    const changeEvents = await auditEvents(app, { entityType: 'ticket', entityId: ticket.id });
    const fromDraft = changeEvents.filter((e) => e.metadata.draftId === d.id);
    expect(fromDraft.map((e) => e.action)).toContain('ticket.status_changed');
    for (const e of fromDraft)
      expect(e).toMatchObject({ actor_id: admin.id, metadata: { draftAuthorId: agent.id } });
    const [approved] = await auditEvents(app, { action: 'draft.approved', entityId: d.id });
    expect(approved).toMatchObject({ actor_id: admin.id, metadata: { draftAuthorId: agent.id } });

    const listed = (await get(agent, `/tickets/${ticket.id}/drafts`)).json().data[0];
    expect(listed).toMatchObject({ state: 'approved', decidedBy: { id: admin.id, name: 'Alma Admin' } });
    expectProblem(await post(admin, `/drafts/${d.id}/approve`, {}), 409, 'DRAFT_DECIDED');
    expectProblem(await post(admin, `/drafts/${d.id}/reject`, {}), 409, 'DRAFT_DECIDED');
  });

  it('the approver may edit the reply', async () => {
    const ticket = await createTicket(app, requester);
    const d = await draft(agent, ticket.id, { body: 'draft text', visibility: 'internal' });
    const res = await post(agent, `/drafts/${d.id}/approve`, { body: 'edited text' });
    expect(res.statusCode).toBe(200);
    expect(res.json().comment).toMatchObject({ body: 'edited text', visibility: 'internal' });
  });

  it('an agent cannot approve a change they could not make: 403 and nothing applied', async () => {
    const ticket = await createTicket(app, requester);
    // Agents may assign a ticket only to themselves: otherAgent cannot hand this one to agent.
    const d = await draft(admin, ticket.id, { body: 'assigning', changes: { assigneeId: agent.id } });
    expectProblem(await post(otherAgent, `/drafts/${d.id}/approve`, {}), 403, 'FORBIDDEN');
    const comments = (await get(admin, `/tickets/${ticket.id}/comments`)).json().data;
    expect(comments).toEqual([]);
    const now = (await get(admin, `/tickets/${ticket.id}`)).json();
    expect(now).toMatchObject({ version: ticket.version, assignee: null });
    expect((await get(admin, `/tickets/${ticket.id}/drafts`)).json().data[0].state).toBe('pending');
    // The lifecycle applies too: a transition outside it → 409, nothing applied.
    const bad = await draft(agent, ticket.id, { changes: { status: 'closed' } });
    expectProblem(await post(admin, `/drafts/${bad.id}/approve`, {}), 409, 'INVALID_TRANSITION');
    expect((await post(admin, `/drafts/${d.id}/approve`, {})).statusCode).toBe(200);
  });

  it('a ticket changed since the draft → 409 DRAFT_STALE unless If-Match names the current version', async () => {
    const ticket = await createTicket(app, requester);
    const d = await draft(agent, ticket.id, { changes: { priority: 'urgent' } });
    const patched = await patchTicket(app, admin, ticket.id, { priority: 'low' });
    const current = patched.json().version;
    expectProblem(await post(admin, `/drafts/${d.id}/approve`, {}), 409, 'DRAFT_STALE');
    expectProblem(
      await post(admin, `/drafts/${d.id}/approve`, {}, { 'if-match': `"${ticket.version}"` }),
      412,
      'VERSION_MISMATCH',
    );
    const ok = await post(admin, `/drafts/${d.id}/approve`, {}, { 'if-match': `"${current}"` });
    expect(ok.statusCode, ok.body).toBe(200);
    expect(ok.json()).toMatchObject({ ticket: { priority: 'urgent', version: current + 1 }, comment: null });
  });
});

describe('rejecting', () => {
  it('keeps the draft with the reason, audited; the ticket is untouched', async () => {
    const ticket = await createTicket(app, requester);
    const d = await draft(agent, ticket.id, { body: 'meh', changes: { priority: 'low' } });
    const res = await post(admin, `/drafts/${d.id}/reject`, { reason: 'Wrong tone' });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toMatchObject({
      state: 'rejected',
      reason: 'Wrong tone',
      decidedBy: { id: admin.id },
    });
    const [event] = await auditEvents(app, { action: 'draft.rejected', entityId: d.id });
    expect(event).toMatchObject({
      actor_id: admin.id,
      metadata: { draftAuthorId: agent.id, reason: 'Wrong tone' },
    });
    expect((await get(admin, `/tickets/${ticket.id}`)).json().version).toBe(ticket.version);
    expectProblem(await post(admin, `/drafts/${randomUUID()}/reject`, {}), 404, 'DRAFT_NOT_FOUND');
  });
});
