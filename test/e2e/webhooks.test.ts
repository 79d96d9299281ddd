import { randomBytes } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { Webhook } from 'standardwebhooks';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApp } from '../helpers/app.js';
import { createUser, type TestUser } from '../helpers/factory.js';
import { expectProblem } from '../helpers/http.js';
import { ownDatabase } from '../helpers/own-database.js';
import { auditEvents, createTicket } from '../helpers/tickets.js';
import { type ReceivedWebhook, startReceiver } from '../helpers/webhook-receiver.js';

type Receiver = Awaited<ReturnType<typeof startReceiver>>;
type Delivery = {
  id: string;
  eventId: string;
  eventType: string;
  status: 'pending' | 'succeeded' | 'failed';
  attempts: number;
  lastResponseStatus: number | null;
  lastError: string | null;
  nextAttemptAt: string | null;
};
type Hook = { id: string; url: string; active: boolean; disabledReason: string | null; secret?: string };

/** What a receiver does with a request: the stock library's verification, throwing when it fails. */
function verify(secret: string, hook: ReceivedWebhook) {
  return new Webhook(secret).verify(hook.body, hook.headers as Record<string, string>) as {
    type: string;
    timestamp: string;
    data: Record<string, unknown>;
  };
}

describe('webhooks', () => {
  let database: { url: string; drop(): Promise<void> };
  let app: FastifyInstance;
  let admin: TestUser;
  let agent: TestUser;
  let requester: TestUser;
  const receivers: Receiver[] = [];

  beforeAll(async () => {
    database = await ownDatabase('helpdesk_webhooks');
    app = await createTestApp({
      DATABASE_URL: database.url,
      JOBS_POLL_INTERVAL_MS: '200',
      WEBHOOK_ALLOW_PRIVATE_NETWORKS: 'true',
      WEBHOOK_RETRY_SCHEDULE: '1s,1s,1s',
      WEBHOOK_TIMEOUT_MS: '500',
    });
    await app.jobRunner.start({ schedules: false });
    [admin, agent, requester] = await Promise.all([
      createUser(app, { role: 'admin' }),
      createUser(app, { role: 'agent' }),
      createUser(app),
    ]);
  });
  afterAll(async () => {
    await app?.close();
    await Promise.all(receivers.map((r) => r.close()));
    await database?.drop();
  });

  async function receiver(respond?: Parameters<typeof startReceiver>[0]) {
    const r = await startReceiver(respond);
    receivers.push(r);
    return r;
  }

  async function createHook(body: Record<string, unknown>, user = admin): Promise<Hook> {
    const res = await app.inject({
      method: 'POST',
      url: '/api/v1/webhooks',
      headers: user.auth,
      payload: body,
    });
    expect(res.statusCode, res.body).toBe(201);
    return res.json() as Hook;
  }
  const getHook = async (id: string) =>
    (await app.inject({ method: 'GET', url: `/api/v1/webhooks/${id}`, headers: admin.auth })).json() as Hook;
  const deleteHook = async (id: string) => {
    const res = await app.inject({ method: 'DELETE', url: `/api/v1/webhooks/${id}`, headers: admin.auth });
    expect(res.statusCode).toBe(204);
  };
  async function deliveries(id: string): Promise<Delivery[]> {
    const res = await app.inject({
      method: 'GET',
      url: `/api/v1/webhooks/${id}/deliveries`,
      headers: admin.auth,
    });
    expect(res.statusCode, res.body).toBe(200);
    return (res.json() as { data: Delivery[] }).data;
  }
  /** Polls the delivery log of one webhook until `cond` holds (bounded: the real worker delivers). */
  async function waitForDeliveries(id: string, cond: (d: Delivery[]) => boolean, timeoutMs = 20_000) {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const d = await deliveries(id);
      if (cond(d)) return d;
      if (Date.now() > deadline) throw new Error(`deliveries of ${id}: ${JSON.stringify(d)}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  const ticketEvents = (r: ReceivedWebhook[], ticketId: number, type?: string) =>
    r.filter((h) => {
      const b = JSON.parse(h.body) as { type: string; data: { ticketId: number } };
      return b.data.ticketId === ticketId && (type === undefined || b.type === type);
    });

  it('delivers a change event signed so the standardwebhooks library verifies it', async () => {
    const r = await receiver();
    const hook = await createHook({ url: r.url, events: ['ticket.created'] });
    expect(hook.secret).toMatch(/^whsec_[A-Za-z0-9+/]{32,}={0,2}$/);
    const ticket = await createTicket(app, requester);
    const [got] = await r.waitFor((x) => ticketEvents(x, ticket.id).length > 0);
    const payload = verify(hook.secret!, got!);
    expect(payload.type).toBe('ticket.created');
    expect(payload.data).toMatchObject({ type: 'ticket.created', ticketId: ticket.id });
    expect(Object.keys(payload.data).sort()).toEqual([
      'actor',
      'data',
      'id',
      'occurredAt',
      'ticketId',
      'type',
    ]);
    expect(got!.headers['webhook-id']).toMatch(/^msg_/);
    // A tampered body fails verification.
    expect(() => verify(hook.secret!, { ...got!, body: got!.body.replace('ticket', 'Ticket') })).toThrow();
    const [d] = await waitForDeliveries(hook.id, (d) => d[0]?.status === 'succeeded');
    expect(d).toMatchObject({ eventType: 'ticket.created', attempts: 1, lastResponseStatus: 200 });
    await deleteHook(hook.id);
  });

  it('retries after a 500 with the same webhook-id, then succeeds', async () => {
    const r = await receiver((_req, n) => (n === 1 ? { status: 500, body: 'boom' } : 200));
    const hook = await createHook({ url: r.url, events: ['ticket.created'] });
    await createTicket(app, requester);
    const got = await r.waitFor((x) => x.length >= 2);
    expect(got[1]!.headers['webhook-id']).toBe(got[0]!.headers['webhook-id']);
    expect(got[1]!.body).toBe(got[0]!.body);
    verify(hook.secret!, got[1]!);
    const [d] = await waitForDeliveries(hook.id, (d) => d[0]?.status === 'succeeded');
    expect(d).toMatchObject({ attempts: 2, lastResponseStatus: 200, lastError: null, nextAttemptAt: null });
    await deleteHook(hook.id);
  });

  it('a receiver that does not answer in time is a failed attempt, retried', async () => {
    const r = await receiver(() => 'hang');
    const hook = await createHook({ url: r.url, events: ['ticket.created'] });
    await createTicket(app, requester);
    const [d] = await waitForDeliveries(hook.id, (d) => (d[0]?.attempts ?? 0) >= 1);
    expect(d).toMatchObject({ lastResponseStatus: null, lastError: 'no answer within 500 ms' });
    expect(['pending', 'failed']).toContain(d!.status);
    await deleteHook(hook.id);
  });

  it('410 Gone disables the webhook at once; PATCH active:true re-enables it', async () => {
    let gone = true;
    const r = await receiver(() => (gone ? 410 : 200));
    const hook = await createHook({ url: r.url, events: ['ticket.created'] });
    await createTicket(app, requester);
    const [d] = await waitForDeliveries(hook.id, (d) => d[0]?.status === 'failed');
    expect(d).toMatchObject({ attempts: 1, lastResponseStatus: 410, nextAttemptAt: null });
    const disabled = await getHook(hook.id);
    expect(disabled.active).toBe(false);
    expect(disabled.disabledReason).toMatch(/410/);

    // Disabled: new events are not delivered to it.
    const quiet = await createTicket(app, requester);
    gone = false;
    const res = await app.inject({
      method: 'PATCH',
      url: `/api/v1/webhooks/${hook.id}`,
      headers: admin.auth,
      payload: { active: true },
    });
    expect(res.statusCode, res.body).toBe(200);
    expect(res.json()).toMatchObject({ active: true, disabledReason: null });
    const after = await createTicket(app, requester);
    await r.waitFor((x) => ticketEvents(x, after.id).length === 1);
    expect(ticketEvents(r.received, quiet.id)).toEqual([]);
    await deleteHook(hook.id);
  });

  it('does not follow redirects', async () => {
    const target = await receiver();
    const r = await receiver(() => ({ status: 302, headers: { location: target.url }, body: '' }));
    const hook = await createHook({ url: r.url, events: ['ticket.created'] });
    await createTicket(app, requester);
    const [d] = await waitForDeliveries(hook.id, (d) => (d[0]?.attempts ?? 0) >= 1);
    expect(d!.lastResponseStatus).toBe(302);
    expect(d!.status).not.toBe('succeeded');
    expect(target.received).toEqual([]);
    await deleteHook(hook.id);
  });

  it('sends only the event types a webhook asked for; ["*"] gets all', async () => {
    const onlyComments = await receiver();
    const all = await receiver();
    const h1 = await createHook({ url: onlyComments.url, events: ['comment.created'] });
    const h2 = await createHook({ url: all.url, events: ['*'] });
    const ticket = await createTicket(app, requester);
    const c = await app.inject({
      method: 'POST',
      url: `/api/v1/tickets/${ticket.id}/comments`,
      headers: requester.auth,
      payload: { body: 'Any news?' },
    });
    expect(c.statusCode, c.body).toBe(201);
    await all.waitFor((x) => ticketEvents(x, ticket.id, 'comment.created').length === 1);
    await onlyComments.waitFor((x) => ticketEvents(x, ticket.id).length === 1);
    expect(ticketEvents(all.received, ticket.id, 'ticket.created')).toHaveLength(1);
    expect(ticketEvents(onlyComments.received, ticket.id).map((h) => JSON.parse(h.body).type)).toEqual([
      'comment.created',
    ]);
    await deleteHook(h1.id);
    await deleteHook(h2.id);
  });

  it('recording a change answers whether an active webhook wants its type (no separate query)', async () => {
    const r = await receiver();
    const hook = await createHook({ url: r.url, events: ['draft.rejected'] });
    const wanted = async (type: 'draft.rejected' | 'draft.approved') => {
      const rollback = new Error('rollback');
      let answer: boolean | undefined;
      await app.db
        .transaction(async (tx) => {
          const event = await app.services.changes.record(
            tx,
            { actor: null, traceId: 't-probe', ip: null, userAgent: null },
            { type, ticketId: null, data: {}, staffOnly: true },
          );
          answer = event.webhooksWanted;
          throw rollback;
        })
        .catch((err) => {
          if (err !== rollback) throw err;
        });
      return answer;
    };
    expect(await wanted('draft.rejected')).toBe(true);
    expect(await wanted('draft.approved')).toBe(false);
    const off = await app.inject({
      method: 'PATCH',
      url: `/api/v1/webhooks/${hook.id}`,
      headers: admin.auth,
      payload: { active: false },
    });
    expect(off.statusCode, off.body).toBe(200);
    expect(await wanted('draft.rejected')).toBe(false);
    await deleteHook(hook.id);
  });

  it('an SLA breach pass reaches a webhook once per missed target, through one fan-out for the batch', async () => {
    const r = await receiver();
    const hook = await createHook({ url: r.url, events: ['ticket.sla_breached'] });
    const team = await app.inject({
      method: 'POST',
      url: '/api/v1/teams',
      headers: admin.auth,
      payload: { name: `sla hooks ${randomBytes(4).toString('hex')}` },
    });
    expect(team.statusCode, team.body).toBe(201);
    const teamId = team.json().id as string;
    const policy = await app.inject({
      method: 'POST',
      url: '/api/v1/sla-policies',
      headers: admin.auth,
      payload: {
        name: `hooks ${teamId}`,
        appliesTo: { teamId },
        targets: { urgent: { firstResponseMinutes: 5 } },
      },
    });
    expect(policy.statusCode, policy.body).toBe(201);
    const a = await createTicket(app, agent, { requesterId: requester.id, teamId, priority: 'urgent' });
    const b = await createTicket(app, agent, { requesterId: requester.id, teamId, priority: 'urgent' });

    // Passes as the scheduled job would run them, ten minutes on; the running worker does the rest.
    const later = new Date(Date.now() + 10 * 60_000);
    await Promise.all([
      app.services.sla.detectBreaches({ now: later }),
      app.services.sla.detectBreaches({ now: later }),
    ]);
    await app.services.sla.detectBreaches({ now: later });
    const done = await waitForDeliveries(
      hook.id,
      (d) => d.length >= 2 && d.every((x) => x.status === 'succeeded'),
    );
    expect(done).toHaveLength(2);
    for (const ticket of [a, b]) {
      const got = ticketEvents(r.received, ticket.id, 'ticket.sla_breached');
      expect(got).toHaveLength(1);
      const payload = verify(hook.secret!, got[0]!);
      expect(payload.data).toMatchObject({
        type: 'ticket.sla_breached',
        ticketId: ticket.id,
        data: { target: 'firstResponse', dueAt: ticket.sla.firstResponseDueAt, ticket: { id: ticket.id } },
      });
    }
    await deleteHook(hook.id);
  });

  it('delivers internal notes (the staff view) while requesters still cannot read them', async () => {
    const r = await receiver();
    const hook = await createHook({ url: r.url, events: ['comment.created'] });
    const ticket = await createTicket(app, requester);
    const note = await app.inject({
      method: 'POST',
      url: `/api/v1/tickets/${ticket.id}/comments`,
      headers: agent.auth,
      payload: { body: 'Internal: suspect the toner', visibility: 'internal' },
    });
    expect(note.statusCode, note.body).toBe(201);
    const [got] = await r.waitFor((x) => ticketEvents(x, ticket.id).length === 1);
    const payload = verify(hook.secret!, got!);
    expect(payload.data.data).toMatchObject({
      comment: { body: 'Internal: suspect the toner', visibility: 'internal' },
    });
    const asRequester = await app.inject({
      method: 'GET',
      url: `/api/v1/tickets/${ticket.id}/comments`,
      headers: requester.auth,
    });
    expect(asRequester.statusCode).toBe(200);
    expect(asRequester.body).not.toContain('suspect the toner');
    await deleteHook(hook.id);
  });

  it('after a rotation both secrets sign for the overlap, and each verifies', async () => {
    const r = await receiver();
    const hook = await createHook({ url: r.url, events: ['ticket.created'] });
    const rot = await app.inject({
      method: 'POST',
      url: `/api/v1/webhooks/${hook.id}/rotate-secret`,
      headers: admin.auth,
    });
    expect(rot.statusCode, rot.body).toBe(200);
    const { secret } = rot.json() as { secret: string };
    expect(secret).toMatch(/^whsec_/);
    expect(secret).not.toBe(hook.secret);
    const ping = await app.inject({
      method: 'POST',
      url: `/api/v1/webhooks/${hook.id}/ping`,
      headers: admin.auth,
    });
    expect(ping.statusCode).toBe(202);
    const [got] = await r.waitFor((x) => x.length === 1);
    expect(String(got!.headers['webhook-signature']).split(' ')).toHaveLength(2);
    expect(verify(secret, got!).type).toBe('webhook.ping');
    expect(verify(hook.secret!, got!).type).toBe('webhook.ping');
    expect(() => verify(`whsec_${randomBytes(24).toString('base64')}`, got!)).toThrow();

    // Audit rows for create and rotate never hold either secret.
    const rows = await auditEvents(app, { entityType: 'webhook', entityId: hook.id });
    expect(rows.map((a) => a.action)).toEqual([
      'webhook.created',
      'webhook.secret_rotated',
      'webhook.pinged',
    ]);
    const text = JSON.stringify(rows);
    for (const s of [hook.secret!, secret]) {
      expect(text).not.toContain(s);
      expect(text).not.toContain(s.slice('whsec_'.length));
    }
    await deleteHook(hook.id);
  });

  it('ping sends a webhook.ping through the delivery log', async () => {
    const r = await receiver();
    const hook = await createHook({ url: r.url, events: ['ticket.created'] });
    const res = await app.inject({
      method: 'POST',
      url: `/api/v1/webhooks/${hook.id}/ping`,
      headers: admin.auth,
    });
    expect(res.statusCode).toBe(202);
    const { deliveryId } = res.json() as { deliveryId: string };
    const [got] = await r.waitFor((x) => x.length === 1);
    expect(verify(hook.secret!, got!)).toMatchObject({ type: 'webhook.ping', data: { webhookId: hook.id } });
    const [d] = await waitForDeliveries(hook.id, (d) => d[0]?.status === 'succeeded');
    expect(d).toMatchObject({ id: deliveryId, eventType: 'webhook.ping', attempts: 1 });
    await deleteHook(hook.id);
  });

  it('redeliver sends a failed delivery again, with the same webhook-id', async () => {
    let up = false;
    const r = await receiver(() => (up ? 200 : 503));
    const hook = await createHook({ url: r.url, events: ['ticket.created'] });
    await createTicket(app, requester);
    // 1 attempt + 3 retries a second apart, then failed.
    const [failed] = await waitForDeliveries(hook.id, (d) => d[0]?.status === 'failed');
    expect(failed).toMatchObject({ attempts: 4, lastResponseStatus: 503 });
    expect(failed!.lastError).toContain('HTTP 503');
    up = true;
    const res = await app.inject({
      method: 'POST',
      url: `/api/v1/webhooks/${hook.id}/deliveries/${failed!.id}/redeliver`,
      headers: admin.auth,
    });
    expect(res.statusCode, res.body).toBe(202);
    const [d] = await waitForDeliveries(hook.id, (d) => d[0]?.status === 'succeeded');
    expect(d!.id).toBe(failed!.id);
    expect(d!.lastResponseStatus).toBe(200);
    const ids = new Set(r.received.map((h) => h.headers['webhook-id']));
    expect(ids.size).toBe(1);
    expect(r.received.length).toBe(5);
    verify(hook.secret!, r.received.at(-1)!);
    await deleteHook(hook.id);
  });

  it('only admins manage webhooks', async () => {
    const r = await receiver();
    for (const user of [agent, requester]) {
      const res = await app.inject({
        method: 'POST',
        url: '/api/v1/webhooks',
        headers: user.auth,
        payload: { url: r.url, events: ['*'] },
      });
      expect(res.statusCode, res.body).toBe(403);
      const list = await app.inject({ method: 'GET', url: '/api/v1/webhooks', headers: user.auth });
      expect(list.statusCode).toBe(403);
    }
  });

  describe('when private networks are not allowed', () => {
    let strict: FastifyInstance;
    beforeAll(async () => {
      // No job runner: this app only answers the creation requests.
      strict = await createTestApp({
        DATABASE_URL: database.url,
        JWT_SECRET: app.config.jwtSecret,
        WEBHOOK_ALLOW_PRIVATE_NETWORKS: 'false',
      });
    });
    afterAll(async () => {
      await strict?.close();
    });

    it.each([
      ['a literal loopback address', 'http://127.0.0.1:9/hook'],
      ['a literal private address', 'http://10.1.2.3/hook'],
      ['a private IPv6 address', 'http://[fd00::1]/hook'],
      ['the cloud metadata address', 'http://169.254.169.254/latest/meta-data'],
      ['a name that resolves to loopback', 'http://localhost:9/hook'],
    ])('refuses %s at creation with 422', async (_name, url) => {
      const res = await strict.inject({
        method: 'POST',
        url: '/api/v1/webhooks',
        headers: admin.auth,
        payload: { url, events: ['*'] },
      });
      expectProblem(res, 422, 'VALIDATION_FAILED');
    });
  });
});
