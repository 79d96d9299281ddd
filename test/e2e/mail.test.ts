import type { FastifyInstance } from 'fastify';
import MailComposer from 'nodemailer/lib/mail-composer/index.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createReplyAddressCodec, ticketIdFromMessageId } from '../../src/modules/mail/mail-headers.js';
import { createUser, DEFAULT_PASSWORD, type TestUser } from '../helpers/factory.js';
import { expectProblem } from '../helpers/http.js';
import { type MailTestApp, startMailTestApp } from '../helpers/mail-app.js';
import type { ReceivedMail } from '../helpers/smtp.js';

// The mail test app has a database of its own (test/helpers/mail-app.ts): the job runners other files start
// on the shared database would otherwise take these mail jobs and deliver them elsewhere.

let h: MailTestApp;
let app: FastifyInstance;
let requester: TestUser;
let agent: TestUser;
let agent2: TestUser;
let admin: TestUser;
const APP_URL = 'https://app.helpdesk.test';
const INBOUND_TOKEN = 'mail-test-inbound-token-0123456789';

beforeAll(async () => {
  h = await startMailTestApp({
    MAIL_FROM: 'Helpdesk Support <support@helpdesk.test>',
    PUBLIC_APP_URL: APP_URL,
    PASSWORD_RESET_RATE_LIMIT_PER_ACCOUNT: '3',
    INBOUND_EMAIL_TOKEN: INBOUND_TOKEN,
  });
  app = h.app;
  [requester, agent, agent2, admin] = await Promise.all([
    createUser(app, { role: 'requester', name: 'Zoë Requester' }),
    createUser(app, { role: 'agent', name: 'Alex Agent' }),
    createUser(app, { role: 'agent', name: 'Bo Agent' }),
    createUser(app, { role: 'admin', name: 'Ada Admin' }),
  ]);
});
afterAll(async () => {
  await h?.close();
});

const post = (user: TestUser, url: string, payload: object) =>
  app.inject({ method: 'POST', url, headers: user.auth, payload });
const patch = (user: TestUser, url: string, payload: object, headers: Record<string, string> = {}) =>
  app.inject({ method: 'PATCH', url, headers: { ...user.auth, ...headers }, payload });

async function newTicket(by: TestUser, body: Record<string, unknown> = {}): Promise<number> {
  const res = await post(by, '/api/v1/tickets', {
    title: 'Printer on fire',
    description: 'It smells of toner.',
    ...body,
  });
  expect(res.statusCode).toBe(201);
  return (res.json() as { id: number }).id;
}

/** Mails about a ticket (by its thread) to one address, after every queued mail job has finished. */
async function mailsTo(user: TestUser, ticketId: number): Promise<ReceivedMail[]> {
  await h.settle();
  return h.smtp.to(user.email).filter((m) => m.parsed.references === `<ticket-${ticketId}@helpdesk.test>`);
}

describe('who gets what', () => {
  it('ticket created: the requester gets the receipt, the team’s agents are told, the creator-agent is not', async () => {
    const team = await post(admin, '/api/v1/teams', {
      name: `Printers ${Date.now()}`,
      memberIds: [agent.id, agent2.id],
    });
    expect(team.statusCode).toBe(201);
    const id = await newTicket(agent, { requesterId: requester.id, teamId: team.json().id });
    const receipt = await mailsTo(requester, id);
    expect(receipt).toHaveLength(1);
    expect(receipt[0]!.parsed.subject).toBe(`[#${id}] Printer on fire`);
    expect(receipt[0]!.parsed.text).toContain(`We received your request #${id}`);
    expect(await mailsTo(agent2, id)).toHaveLength(1);
    expect(await mailsTo(agent, id)).toHaveLength(0); // the actor
  });

  it('a requester opening their own ticket gets the receipt (the one exception to "never the actor")', async () => {
    const id = await newTicket(requester);
    expect(await mailsTo(requester, id)).toHaveLength(1);
  });

  it('public staff reply → the requester, with the text and a link; internal note → nobody', async () => {
    const id = await newTicket(requester);
    const inThread = () =>
      h.smtp.received.filter((m) => m.parsed.references === `<ticket-${id}@helpdesk.test>`).length;
    await h.settle();
    const before = inThread();
    expect(before).toBe(1); // the receipt
    const note = await post(agent, `/api/v1/tickets/${id}/comments`, {
      body: 'INTERNAL: customer is on the naughty list',
      visibility: 'internal',
    });
    expect(note.statusCode).toBe(201);
    await h.settle();
    expect(inThread()).toBe(before);
    expect(h.smtp.received.some((m) => m.raw.includes('naughty list'))).toBe(false);

    await post(agent, `/api/v1/tickets/${id}/comments`, { body: 'Try <b>turning</b> it off & on.' });
    const mails = await mailsTo(requester, id);
    const reply = mails.find((m) => m.parsed.text?.includes('replied'));
    expect(reply).toBeDefined();
    expect(reply!.parsed.text).toContain('> Try <b>turning</b> it off & on.');
    expect(reply!.parsed.html).toContain('Try &lt;b&gt;turning&lt;/b&gt; it off &amp; on.');
    expect(reply!.parsed.text).toContain(`${APP_URL}/tickets/${id}`);
    expect(h.smtp.received.some((m) => m.raw.includes('naughty list'))).toBe(false);
  });

  it('requester reply → the assignee only', async () => {
    const id = await newTicket(requester);
    expect((await patch(admin, `/api/v1/tickets/${id}`, { assigneeId: agent.id })).statusCode).toBe(200);
    await post(requester, `/api/v1/tickets/${id}/comments`, { body: 'Still smoking.' });
    const toAgent = await mailsTo(agent, id);
    expect(toAgent.map((m) => m.parsed.text?.includes('Still smoking.'))).toContain(true);
    expect((await mailsTo(requester, id)).some((m) => m.parsed.text?.includes('Still smoking.'))).toBe(false);
  });

  it('assigned by an admin → the new assignee; an agent taking a ticket → nobody', async () => {
    const byAdmin = await newTicket(requester);
    await patch(admin, `/api/v1/tickets/${byAdmin}`, { assigneeId: agent2.id });
    const assigned = await mailsTo(agent2, byAdmin);
    expect(assigned).toHaveLength(1);
    expect(assigned[0]!.parsed.text).toContain('Ada Admin assigned ticket');

    const taken = await newTicket(requester);
    await patch(agent, `/api/v1/tickets/${taken}`, { assigneeId: agent.id });
    expect(await mailsTo(agent, taken)).toHaveLength(0);
  });

  it('ticket solved → the requester ("reply to reopen"), not the agent who solved it', async () => {
    const id = await newTicket(requester);
    await patch(agent, `/api/v1/tickets/${id}`, { assigneeId: agent.id });
    const solved = await patch(agent, `/api/v1/tickets/${id}`, { status: 'solved' });
    expect(solved.statusCode).toBe(200);
    const mails = await mailsTo(requester, id);
    const m = mails.find((x) => x.parsed.text?.includes('marked as solved'));
    expect(m?.parsed.text).toContain('Reply to this email and the ticket opens again');
    expect((await mailsTo(agent, id)).some((x) => x.parsed.text?.includes('solved'))).toBe(false);
  });

  it('merge → both requesters are told, each in their own ticket’s thread; one requester of both gets one mail', async () => {
    const other = await createUser(app, { role: 'requester', name: 'Olu Other' });
    const source = await newTicket(requester);
    const target = await newTicket(agent, { requesterId: other.id });
    const merged = await post(agent, `/api/v1/tickets/${source}/merge`, { targetId: target });
    expect(merged.statusCode).toBe(200);
    const toSourceRequester = (await mailsTo(requester, source)).filter((m) =>
      m.parsed.text?.includes('merged'),
    );
    expect(toSourceRequester).toHaveLength(1);
    expect(toSourceRequester[0]!.parsed.text).toContain(
      `Your request #${source} "Printer on fire" was merged into #${target}`,
    );
    const toTargetRequester = (await mailsTo(other, target)).filter((m) => m.parsed.text?.includes('merged'));
    expect(toTargetRequester).toHaveLength(1);
    expect(toTargetRequester[0]!.parsed.text).toContain(
      `Request #${source} was merged into your request #${target}`,
    );
    expect(
      (await mailsTo(agent, source))
        .concat(await mailsTo(agent, target))
        .some((m) => m.parsed.text?.includes('merged')),
    ).toBe(false);

    const a = await newTicket(requester);
    const b = await newTicket(requester);
    expect((await post(agent, `/api/v1/tickets/${a}/merge`, { targetId: b })).statusCode).toBe(200);
    const aboutA = (await mailsTo(requester, a)).filter((m) => m.parsed.text?.includes('merged'));
    const aboutB = (await mailsTo(requester, b)).filter((m) => m.parsed.text?.includes('merged'));
    expect(aboutA).toHaveLength(1);
    expect(aboutB).toHaveLength(0);
  });

  it('SLA breach → the assignee, once per missed target, however many passes run', async () => {
    const team = await post(admin, '/api/v1/teams', {
      name: `SLA ${Date.now()}`,
      memberIds: [agent.id, agent2.id],
    });
    expect(team.statusCode).toBe(201);
    const teamId = team.json().id as string;
    const policy = await post(admin, '/api/v1/sla-policies', {
      name: `mail ${teamId}`,
      appliesTo: { teamId },
      targets: { urgent: { firstResponseMinutes: 5 } },
    });
    expect(policy.statusCode, policy.body).toBe(201);
    const id = await newTicket(admin, { requesterId: requester.id, teamId, priority: 'urgent' });
    expect((await patch(admin, `/api/v1/tickets/${id}`, { assigneeId: agent.id })).statusCode).toBe(200);
    await h.settle();
    const before = h.smtp.to(agent.email).length;
    // The passes run as the scheduled job would, ten minutes on: the breach's events reach mail through the
    // notification job each pass enqueues.
    const later = new Date(Date.now() + 10 * 60_000);
    await Promise.all([
      app.services.sla.detectBreaches({ now: later }),
      app.services.sla.detectBreaches({ now: later }),
    ]);
    await app.services.sla.detectBreaches({ now: later });
    const mails = await mailsTo(agent, id);
    const breach = mails.filter((m) => m.parsed.text?.includes('missed its first-response target'));
    expect(breach).toHaveLength(1);
    expect(h.smtp.to(agent.email).length - before).toBe(1);
    expect((await mailsTo(agent2, id)).filter((m) => m.parsed.text?.includes('missed its'))).toHaveLength(0);
  });

  it('SLA breaches of several tickets in one pass: one mail per ticket and recipient (assignee, else the team)', async () => {
    const team = await post(admin, '/api/v1/teams', {
      name: `SLA batch ${Date.now()}`,
      memberIds: [agent.id, agent2.id],
    });
    expect(team.statusCode).toBe(201);
    const teamId = team.json().id as string;
    const policy = await post(admin, '/api/v1/sla-policies', {
      name: `mail batch ${teamId}`,
      appliesTo: { teamId },
      targets: { urgent: { firstResponseMinutes: 5 } },
    });
    expect(policy.statusCode, policy.body).toBe(201);
    const assigned = await newTicket(admin, { requesterId: requester.id, teamId, priority: 'urgent' });
    expect((await patch(admin, `/api/v1/tickets/${assigned}`, { assigneeId: agent.id })).statusCode).toBe(
      200,
    );
    const unassigned = await newTicket(admin, { requesterId: requester.id, teamId, priority: 'urgent' });
    await h.settle();
    // The first pass marks both tickets: their two events go to mail as one batch (mail.notify_batch).
    const later = new Date(Date.now() + 10 * 60_000);
    expect((await app.services.sla.detectBreaches({ now: later })).breaches).toBeGreaterThanOrEqual(2);
    expect((await app.services.sla.detectBreaches({ now: later })).breaches).toBe(0);
    const missed = (m: ReceivedMail) => m.parsed.text?.includes('missed its first-response target');
    expect((await mailsTo(agent, assigned)).filter(missed)).toHaveLength(1);
    expect((await mailsTo(agent2, assigned)).filter(missed)).toHaveLength(0);
    expect((await mailsTo(agent, unassigned)).filter(missed)).toHaveLength(1);
    expect((await mailsTo(agent2, unassigned)).filter(missed)).toHaveLength(1);
    expect((await mailsTo(requester, assigned)).filter(missed)).toHaveLength(0);
  });

  it('never to a deactivated user', async () => {
    const gone = await createUser(app, { role: 'requester' });
    const id = await newTicket(agent, { requesterId: gone.id });
    await h.settle();
    const deactivate = await patch(admin, `/api/v1/users/${gone.id}`, { active: false });
    expect(deactivate.statusCode).toBe(200);
    const before = h.smtp.to(gone.email).length;
    await post(agent, `/api/v1/tickets/${id}/comments`, { body: 'Hello?' });
    await h.settle();
    expect(h.smtp.to(gone.email).length).toBe(before);
  });
});

describe('preferences', () => {
  it('all on by default; PATCH switches one kind off (audited) and that mail stops', async () => {
    const rita = await createUser(app, { role: 'requester' });
    const get = await app.inject({ method: 'GET', url: '/api/v1/auth/me/notifications', headers: rita.auth });
    expect(get.statusCode).toBe(200);
    expect(get.json()).toEqual({
      ticketCreated: true,
      publicReply: true,
      ticketSolved: true,
      requesterReply: true,
      assigned: true,
      slaBreach: true,
    });
    const off = await patch(rita, '/api/v1/auth/me/notifications', { publicReply: false });
    expect(off.statusCode).toBe(200);
    expect(off.json()).toMatchObject({ publicReply: false, ticketCreated: true });
    const audit = await app.db.$client.query(
      `SELECT changes FROM audit_events WHERE action = 'user.notifications_updated' AND entity_id = $1`,
      [rita.id],
    );
    expect(audit.rows).toEqual([{ changes: { publicReply: [true, false] } }]);

    const id = await newTicket(rita);
    await post(agent, `/api/v1/tickets/${id}/comments`, { body: 'A reply you will not get by mail' });
    const mails = await mailsTo(rita, id);
    expect(mails).toHaveLength(1); // the receipt only
    expect(mails[0]!.parsed.text).toContain('We received');
  });

  it('unknown fields and empty bodies are refused', async () => {
    expectProblem(
      await patch(requester, '/api/v1/auth/me/notifications', { weekly: true }),
      422,
      'VALIDATION_FAILED',
    );
    expectProblem(await patch(requester, '/api/v1/auth/me/notifications', {}), 422, 'VALIDATION_FAILED');
    expectProblem(
      await patch(requester, '/api/v1/auth/me/notifications', { assigned: 'yes' }),
      422,
      'VALIDATION_FAILED',
    );
  });
});

describe('threading and headers', () => {
  it('one thread per ticket, signed Reply-To, Auto-Submitted, encoded Unicode names', async () => {
    const id = await newTicket(requester, { title: 'Ünïcödé 🔥 title' });
    await post(agent, `/api/v1/tickets/${id}/comments`, { body: 'First reply' });
    await post(agent, `/api/v1/tickets/${id}/comments`, { body: 'Second reply' });
    const mails = await mailsTo(requester, id);
    expect(mails).toHaveLength(3);
    const ids = new Set(mails.map((m) => m.parsed.messageId));
    expect(ids.size).toBe(3);
    for (const m of mails) {
      expect(m.parsed.subject).toBe(`[#${id}] Ünïcödé 🔥 title`);
      expect(m.parsed.inReplyTo).toBe(`<ticket-${id}@helpdesk.test>`);
      expect(m.parsed.references).toBe(`<ticket-${id}@helpdesk.test>`);
      expect(ticketIdFromMessageId(m.parsed.messageId!, 'helpdesk.test')).toBe(id);
      expect(m.parsed.headers.get('auto-submitted')).toBe('auto-generated');
      expect(m.parsed.from?.value[0]).toEqual({ name: 'Helpdesk Support', address: 'support@helpdesk.test' });
      expect(m.parsed.to && !Array.isArray(m.parsed.to) ? m.parsed.to.value[0]?.name : null).toBe(
        'Zoë Requester',
      );
      const replyTo = m.parsed.replyTo!.value[0]!.address!;
      const codec = createReplyAddressCodec(app.config.jwtSecret, 'support@helpdesk.test');
      expect(codec.verify(replyTo)).toBe(id);
      expect(codec.verify(replyTo.replace(`+t${id}.`, `+t${id + 1}.`))).toBeNull();
      const head = m.raw.slice(0, m.raw.indexOf('\r\n\r\n'));
      expect(head).not.toMatch(/[^\x20-\x7e\r\n\t]/);
    }
    // Each message was recorded as delivered (inbound mail can check an In-Reply-To against it).
    const { rows } = await app.db.$client.query(
      'SELECT count(*)::int AS n FROM mail_deliveries WHERE ticket_id = $1',
      [id],
    );
    expect(rows[0].n).toBeGreaterThanOrEqual(3);
  });

  it('a title with CR/LF cannot inject a header', async () => {
    const id = await newTicket(requester);
    await app.db.$client.query('UPDATE tickets SET title = $1 WHERE id = $2', [
      'Hi\r\nBcc: victim@example.test\r\nX-Injected: 1',
      id,
    ]);
    await post(agent, `/api/v1/tickets/${id}/comments`, { body: 'reply' });
    const mails = await mailsTo(requester, id);
    const reply = mails.find((m) => m.parsed.text?.includes('replied'))!;
    expect(reply.parsed.subject).toBe(`[#${id}] Hi Bcc: victim@example.test X-Injected: 1`);
    expect(reply.parsed.headers.has('x-injected')).toBe(false);
    expect(reply.envelope.to).toEqual([requester.email]);
    expect(h.smtp.to('victim@example.test')).toHaveLength(0);
  });
});

describe('delivery', () => {
  it('SMTP server down, then back: the job is retried and the mail arrives exactly once', async () => {
    const id = await newTicket(requester);
    await h.settle();
    await h.smtp.down();
    try {
      await post(agent, `/api/v1/tickets/${id}/comments`, { body: 'Sent while the server was down' });
      await h.waitForFailedAttempt('mail.send');
    } finally {
      await h.smtp.up();
    }
    const got = await h.smtp.waitFor((m) => m.raw.includes('Sent while the server was down'), 30_000);
    expect(got.envelope.to).toEqual([requester.email]);
    await h.settle();
    expect(h.smtp.received.filter((m) => m.raw.includes('Sent while the server was down'))).toHaveLength(1);
  });

  it('a permanent refusal (550) ends the job failed with the server’s answer; nothing is retried', async () => {
    const bounced = await createUser(app, { role: 'requester' });
    h.smtp.refuse.add(bounced.email.toLowerCase());
    const id = await newTicket(bounced);
    await h.settle();
    const failed = await h.failedJobs('mail.send');
    const mine = failed.find((j) => j.error?.includes('550'));
    expect(mine).toBeDefined();
    expect(mine!.error).toMatch(/Mailbox unavailable/);
    expect(h.smtp.to(bounced.email)).toHaveLength(0);
    const { rows } = await app.db.$client.query(
      'SELECT count(*)::int AS n FROM mail_deliveries WHERE ticket_id = $1 AND recipient_user_id = $2',
      [id, bounced.id],
    );
    expect(rows[0].n).toBe(0);
  });
});

describe('password reset', () => {
  const reset = (email: string, ip = '198.51.100.7') =>
    app.inject({
      method: 'POST',
      url: '/api/v1/auth/password-reset',
      payload: { email },
      remoteAddress: ip,
    });
  const confirm = (token: string, newPassword: string) =>
    app.inject({
      method: 'POST',
      url: '/api/v1/auth/password-reset/confirm',
      payload: { token, newPassword },
    });
  const login = (email: string, password: string) =>
    app.inject({ method: 'POST', url: '/api/v1/auth/login', payload: { email, password } });

  async function resetMail(user: TestUser): Promise<{ token: string; mail: ReceivedMail }> {
    await h.settle();
    const mail = h.smtp
      .to(user.email)
      .filter((m) => m.parsed.subject === 'Reset your password')
      .at(-1);
    expect(mail).toBeDefined();
    const link = /https:\/\/app\.helpdesk\.test\/reset-password\?token=([A-Za-z0-9_-]+)/.exec(
      mail!.parsed.text ?? '',
    );
    expect(link).not.toBeNull();
    return { token: link![1]!, mail: mail! };
  }

  it('end to end: 202, the mailed token sets the password once, every session ends, audited', async () => {
    const user = await createUser(app, { role: 'requester' });
    const session = await login(user.email, DEFAULT_PASSWORD);
    expect(session.statusCode).toBe(200);
    const { refreshToken } = session.json() as { refreshToken: string };

    const res = await reset(user.email.toUpperCase());
    expect(res.statusCode).toBe(202);
    const { token, mail } = await resetMail(user);
    expect(mail.parsed.html).toContain(`${APP_URL}/reset-password?token=${token}`);
    // Only the hash is stored.
    const stored = await app.db.$client.query(
      'SELECT token_hash FROM password_reset_tokens WHERE user_id = $1',
      [user.id],
    );
    expect(stored.rows.map((r) => r.token_hash)).not.toContain(token);

    expectProblem(await confirm(token, 'password'), 422, 'WEAK_PASSWORD');
    const ok = await confirm(token, 'a brand new passphrase 2026');
    expect(ok.statusCode).toBe(204);
    expect((await login(user.email, 'a brand new passphrase 2026')).statusCode).toBe(200);
    expect((await login(user.email, DEFAULT_PASSWORD)).statusCode).toBe(401);
    const refreshed = await app.inject({
      method: 'POST',
      url: '/api/v1/auth/refresh',
      payload: { refreshToken },
    });
    expect(refreshed.statusCode).toBe(401);

    // Single use.
    expectProblem(await confirm(token, 'yet another passphrase 2026'), 422, 'RESET_TOKEN_INVALID');
    const events = await app.db.$client.query(
      `SELECT action FROM audit_events WHERE entity_id = $1 AND action LIKE '%password_reset%'`,
      [user.id],
    );
    expect(events.rows.map((r) => r.action)).toContain('user.password_reset');
    const logs = JSON.stringify(h.logLines);
    expect(logs).not.toContain(token);
  });

  it('an expired token is refused', async () => {
    const user = await createUser(app, { role: 'requester' });
    await reset(user.email);
    const { token } = await resetMail(user);
    await app.db.$client.query(
      `UPDATE password_reset_tokens SET expires_at = now() - interval '1 second' WHERE user_id = $1`,
      [user.id],
    );
    expectProblem(await confirm(token, 'a brand new passphrase 2026'), 422, 'RESET_TOKEN_INVALID');
    expectProblem(await confirm('made-up-token', 'a brand new passphrase 2026'), 422, 'RESET_TOKEN_INVALID');
  });

  it('using one link kills the other outstanding links of the account', async () => {
    const user = await createUser(app, { role: 'requester' });
    await reset(user.email);
    const first = await resetMail(user);
    await reset(user.email);
    const second = await resetMail(user);
    expect(second.token).not.toBe(first.token);
    expect((await confirm(second.token, 'a brand new passphrase 2026')).statusCode).toBe(204);
    expectProblem(await confirm(first.token, 'another brand new passphrase'), 422, 'RESET_TOKEN_INVALID');
  });

  it('no enumeration: the same answer, the same work, and no mail for unknown or deactivated accounts', async () => {
    const inactive = await createUser(app, { role: 'requester', active: false });
    const known = await createUser(app, { role: 'requester' });
    const answers = await Promise.all([
      reset(known.email),
      reset(`nobody-${Date.now()}@example.test`),
      reset(inactive.email),
    ]);
    for (const a of answers) {
      expect(a.statusCode).toBe(202);
      expect(a.body).toBe(answers[0]!.body);
      expect(Object.keys(a.headers).sort()).toEqual(Object.keys(answers[0]!.headers).sort());
    }
    await h.settle();
    expect(h.smtp.to(known.email).filter((m) => m.parsed.subject === 'Reset your password')).toHaveLength(1);
    expect(h.smtp.to(inactive.email)).toHaveLength(0);
  });

  it('per-email throttle: beyond the limit still 202, but no more mail', async () => {
    const user = await createUser(app, { role: 'requester' });
    for (let i = 0; i < 5; i++) expect((await reset(user.email, `203.0.113.${i + 1}`)).statusCode).toBe(202);
    await h.settle();
    expect(h.smtp.to(user.email).filter((m) => m.parsed.subject === 'Reset your password')).toHaveLength(3);
  });

  it('per-IP throttle answers 429 with Retry-After', async () => {
    let last = await reset('ip-throttle@example.test', '192.0.2.99');
    for (let i = 0; i < 25 && last.statusCode === 202; i++)
      last = await reset(`ip${i}@example.test`, '192.0.2.99');
    expectProblem(last, 429, 'RATE_LIMITED');
    expect(last.headers['retry-after']).toBeDefined();
  });

  it('admin-triggered reset sends the same mail (202 {jobId}); agents may not', async () => {
    const user = await createUser(app, { role: 'agent' });
    const res = await post(admin, `/api/v1/users/${user.id}/password-reset`, {});
    expect(res.statusCode).toBe(202);
    expect(res.json()).toEqual({ jobId: expect.any(String) });
    const { token } = await resetMail(user);
    expect((await confirm(token, 'a brand new passphrase 2026')).statusCode).toBe(204);
    expectProblem(await post(agent, `/api/v1/users/${user.id}/password-reset`, {}), 403, 'FORBIDDEN');
    expectProblem(
      await post(admin, '/api/v1/users/00000000-0000-4000-8000-000000000000/password-reset', {}),
      404,
      'USER_NOT_FOUND',
    );
  });
});

describe('replying by mail (outbound headers → inbound)', () => {
  it('a reply to the notification, built from its own headers, lands on the ticket as the requester’s comment', async () => {
    const id = await newTicket(requester);
    expect((await patch(agent, `/api/v1/tickets/${id}`, { assigneeId: agent.id })).statusCode).toBe(200);
    await post(agent, `/api/v1/tickets/${id}/comments`, { body: 'Have you tried a new cartridge?' });
    const notification = (await mailsTo(requester, id)).find((m) => m.parsed.text?.includes('new cartridge'));
    expect(notification).toBeDefined();
    const n = notification!.parsed;
    const replyTo = n.replyTo!.value[0]!.address!;
    const references = [...(Array.isArray(n.references) ? n.references : [n.references!]), n.messageId!];
    const raw = await new MailComposer({
      from: { name: requester.name, address: requester.email },
      to: replyTo,
      subject: `Re: ${n.subject}`,
      inReplyTo: n.messageId,
      references,
      text: `Yes, a new one: still smoking.\n\nOn Mon, 30 Nov 2026 at 10:00, Helpdesk Support <${replyTo}> wrote:\n> ${n.text?.split('\n')[0]}\n`,
    })
      .compile()
      .build();
    const res = await app.inject({
      method: 'POST',
      url: '/api/v1/inbound/email',
      headers: { authorization: `Bearer ${INBOUND_TOKEN}`, 'content-type': 'message/rfc822' },
      payload: raw,
    });
    expect(res.statusCode, res.body).toBe(201);
    expect(res.json()).toMatchObject({ action: 'replied', ticketId: id });
    const comments = (
      await app.inject({ method: 'GET', url: `/api/v1/tickets/${id}/comments`, headers: agent.auth })
    ).json().data;
    expect(comments.at(-1)).toMatchObject({
      body: 'Yes, a new one: still smoking.',
      author: { id: requester.id },
      visibility: 'public',
    });
    // The reply is a requester reply like any other: the assignee is told.
    const toAgent = await mailsTo(agent, id);
    expect(toAgent.some((m) => m.parsed.text?.includes('still smoking'))).toBe(true);
    // Our notification itself, piped back in (a loop), is ignored.
    const loop = await app.inject({
      method: 'POST',
      url: '/api/v1/inbound/email',
      headers: { authorization: `Bearer ${INBOUND_TOKEN}`, 'content-type': 'message/rfc822' },
      payload: notification!.raw,
    });
    expect(loop.statusCode).toBe(202);
  });
});
