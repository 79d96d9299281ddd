import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NO_PASSWORD } from '../../src/modules/auth/password.js';
import { inboundMessagesPurge } from '../../src/modules/inbound/inbound.service.js';
import { createTestApp } from '../helpers/app.js';
import { elf, pdf, png } from '../helpers/attachments-fixtures.js';
import { createUser, type TestUser } from '../helpers/factory.js';
import { expectProblem } from '../helpers/http.js';
import { appleMailReply, compose, gmailReply, messageId, outlookReply } from '../helpers/mail-fixtures.js';

const TOKEN = 'inbound-test-token-0123456789abcdef';
const SUPPORT = 'support@helpdesk.test';
let app: FastifyInstance;
let requester: TestUser;
let agent: TestUser;

beforeAll(async () => {
  app = await createTestApp({
    INBOUND_EMAIL_TOKEN: TOKEN,
    MAIL_FROM: `Helpdesk Support <${SUPPORT}>`,
    UPLOAD_MAX_BYTES: '200000',
  });
  [requester, agent] = await Promise.all([
    createUser(app, { role: 'requester', name: 'Rita Requester' }),
    createUser(app, { role: 'agent', name: 'Alex Agent' }),
  ]);
});
afterAll(() => app?.close());

const deliver = (raw: Buffer, headers: Record<string, string> = {}) =>
  app.inject({
    method: 'POST',
    url: '/api/v1/inbound/email',
    headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'message/rfc822', ...headers },
    payload: raw,
  });

const q = async <T>(text: string, values: unknown[] = []) =>
  (await app.db.$client.query(text, values)).rows as T[];
const ticket = async (id: number) =>
  (await app.inject({ method: 'GET', url: `/api/v1/tickets/${id}`, headers: agent.auth })).json();
const comments = async (id: number) =>
  (await app.inject({ method: 'GET', url: `/api/v1/tickets/${id}/comments`, headers: agent.auth })).json()
    .data;

async function newTicketByMail(from: string, subject = 'Printer on fire'): Promise<number> {
  const res = await deliver(await compose({ from, to: SUPPORT, subject, text: 'It smells of toner.' }));
  expect(res.statusCode, res.body).toBe(201);
  return res.json().ticketId;
}

async function setStatus(id: number, status: string) {
  await app.inject({
    method: 'PATCH',
    url: `/api/v1/tickets/${id}`,
    headers: agent.auth,
    payload: { assigneeId: agent.id },
  });
  for (const s of status === 'closed' ? ['solved', 'closed'] : [status]) {
    const res = await app.inject({
      method: 'PATCH',
      url: `/api/v1/tickets/${id}`,
      headers: agent.auth,
      payload: { status: s },
    });
    expect(res.statusCode, res.body).toBe(200);
  }
}

describe('the endpoint', () => {
  it('answers 404 when INBOUND_EMAIL_TOKEN is not set, and is documented either way', async () => {
    const off = await createTestApp();
    try {
      const res = await off.inject({
        method: 'POST',
        url: '/api/v1/inbound/email',
        headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'message/rfc822' },
        payload: await compose({ from: 'a@example.com', to: SUPPORT, subject: 'x', text: 'y' }),
      });
      expectProblem(res, 404, 'NOT_FOUND');
      const doc = (await off.inject({ method: 'GET', url: '/openapi.json' })).json();
      const op = doc.paths['/api/v1/inbound/email'].post;
      expect(Object.keys(op.requestBody.content)).toEqual(['message/rfc822']);
      expect(Object.keys(op.responses)).toEqual(
        expect.arrayContaining(['201', '202', '401', '404', '413', '415', '422']),
      );
    } finally {
      await off.close();
    }
  });

  it('refuses a missing or wrong token (401), another content type (415) and an oversized body (413)', async () => {
    const raw = await compose({ from: 'a@example.com', to: SUPPORT, subject: 'x', text: 'y' });
    expectProblem(
      await deliver(raw, { authorization: 'Bearer wrong-token-wrong-token-wrong' }),
      401,
      'UNAUTHENTICATED',
    );
    expectProblem(await deliver(raw, { authorization: '' }), 401, 'UNAUTHENTICATED');
    const json = await app.inject({
      method: 'POST',
      url: '/api/v1/inbound/email',
      headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
      payload: '{}',
    });
    expect(json.statusCode).toBe(415);
    const huge = Buffer.concat([raw, Buffer.alloc(2 * 1024 * 1024, 'a')]);
    expectProblem(await deliver(huge), 413, 'PAYLOAD_TOO_LARGE');
  });

  it('refuses a body that is not an email (422)', async () => {
    expectProblem(await deliver(Buffer.from('\r\n\r\n')), 422, 'INVALID_MESSAGE');
  });
});

describe('new conversations', () => {
  it('an unknown sender gets a requester account without a password and a ticket; quoted text and signature cut', async () => {
    const from = `newcomer-${Date.now()}@example.com`;
    const res = await deliver(
      await compose({
        from: `Nina Newcomer <${from}>`,
        to: SUPPORT,
        subject: 'Fwd: VPN drops every hour',
        text: 'Since Monday the VPN disconnects on the hour.\n\n-- \nNina Newcomer\nACME Corp',
      }),
    );
    expect(res.statusCode, res.body).toBe(201);
    expect(res.json()).toEqual({ action: 'created', ticketId: expect.any(Number), commentId: null });
    const t = await ticket(res.json().ticketId);
    expect(t.title).toBe('VPN drops every hour');
    expect(t.description).toBe('Since Monday the VPN disconnects on the hour.');
    expect(t.requester).toMatchObject({ name: 'Nina Newcomer', email: from });
    const [user] = await q<{ role: string; password_hash: string }>(
      'SELECT role, password_hash FROM users WHERE email = $1',
      [from],
    );
    expect(user).toEqual({ role: 'requester', password_hash: NO_PASSWORD });
    // No password works until one is set through a password reset.
    const login = await app.inject({
      method: 'POST',
      url: '/api/v1/auth/login',
      payload: { email: from, password: NO_PASSWORD },
    });
    expect(login.statusCode).toBe(401);
    const reset = await app.inject({
      method: 'POST',
      url: '/api/v1/auth/password-reset',
      payload: { email: from },
    });
    expect(reset.statusCode).toBe(202);
    const audit = await q<{ action: string }>(
      'SELECT action FROM audit_events WHERE trace_id = $1 ORDER BY seq',
      [res.headers['x-request-id']],
    );
    expect(audit.map((a) => a.action)).toEqual(['user.created', 'ticket.created', 'inbound_email.received']);
  });

  it('a known sender’s mail becomes their ticket', async () => {
    const id = await newTicketByMail(requester.email);
    expect((await ticket(id)).requester.id).toBe(requester.id);
  });

  it('HTML-only mail is turned into text (no markup, no script)', async () => {
    const res = await deliver(
      await compose({
        from: requester.email,
        to: SUPPORT,
        subject: 'HTML only',
        html: '<html><head><style>p{color:red}</style><script>alert(1)</script></head><body><p>The <b>screen</b> is black.</p><p>See <a href="https://status.example.com">status</a>.</p></body></html>',
      }),
    );
    expect(res.statusCode, res.body).toBe(201);
    const t = await ticket(res.json().ticketId);
    expect(t.description).toBe('The screen is black.\n\nSee status [https://status.example.com].');
  });

  it('decodes other charsets: ISO-8859-1 body and an RFC 2047 subject', async () => {
    const raw = Buffer.concat([
      Buffer.from(
        [
          `From: =?iso-8859-1?Q?J=FCrgen_M=FCller?= <juergen-${Date.now()}@example.de>`,
          `To: ${SUPPORT}`,
          'Subject: =?iso-8859-1?Q?Dr=FCcker_kaputt?=',
          `Message-ID: ${messageId()}`,
          'MIME-Version: 1.0',
          'Content-Type: text/plain; charset=iso-8859-1',
          'Content-Transfer-Encoding: 8bit',
          '',
          '',
        ].join('\r\n'),
      ),
      Buffer.from('Der Drucker druckt nur noch Gr\xfc\xdfe.\r\n', 'latin1'),
    ]);
    const res = await deliver(raw);
    expect(res.statusCode, res.body).toBe(201);
    const t = await ticket(res.json().ticketId);
    expect(t.title).toBe('Drücker kaputt');
    expect(t.description).toBe('Der Drucker druckt nur noch Grüße.');
    expect(t.requester.name).toBe('Jürgen Müller');
  });

  it('strips NUL and bounds a huge body to the description limit', async () => {
    const res = await deliver(
      await compose({
        from: requester.email,
        to: SUPPORT,
        subject: 'Long',
        text: `a\u0000b ${'word '.repeat(10_000)}`,
      }),
    );
    expect(res.statusCode, res.body).toBe(201);
    const t = await ticket(res.json().ticketId);
    expect(t.description.length).toBeLessThanOrEqual(20_000);
    expect(t.description.startsWith('ab word')).toBe(true);
    expect(t.description).toContain('the rest of this email was cut');
  });
});

describe('replies', () => {
  it('by In-Reply-To/References naming our thread (Gmail quoting cut)', async () => {
    const id = await newTicketByMail(requester.email);
    const res = await deliver(
      gmailReply({
        from: requester.email,
        to: SUPPORT,
        subject: 'Printer on fire',
        inReplyTo: `<ticket-${id}@helpdesk.test>`,
        text: 'Still smoking after a restart.',
      }),
    );
    expect(res.statusCode, res.body).toBe(201);
    expect(res.json()).toEqual({ action: 'replied', ticketId: id, commentId: expect.any(String) });
    const [c] = await comments(id);
    expect(c).toMatchObject({
      body: 'Still smoking after a restart.',
      visibility: 'public',
      author: { id: requester.id },
    });
  });

  it('by the signed Reply-To address (Outlook quoting cut)', async () => {
    const id = await newTicketByMail(requester.email);
    const to = app.services.mail.replyAddress.address(id);
    const res = await deliver(
      outlookReply({ from: requester.email, to, subject: 'No tag here', text: 'It is still broken.' }),
    );
    expect(res.json()).toMatchObject({ action: 'replied', ticketId: id });
    expect((await comments(id))[0].body).toBe('It is still broken.');
    // A forged tag routes nowhere: a new ticket.
    const forged = to.replace(/\.[0-9a-f]{16}@/, '.0000000000000000@');
    const res2 = await deliver(
      outlookReply({ from: requester.email, to: forged, subject: 'Other', text: 'Hello.' }),
    );
    expect(res2.json()).toMatchObject({ action: 'created' });
  });

  it('by [#N] in the subject from a participant (Apple Mail quoting cut)', async () => {
    const id = await newTicketByMail(requester.email);
    const res = await deliver(
      appleMailReply({
        from: requester.email,
        to: SUPPORT,
        subject: `[#${id}] Printer on fire`,
        text: 'Works now, thanks!',
      }),
    );
    expect(res.json()).toMatchObject({ action: 'replied', ticketId: id });
    expect((await comments(id))[0].body).toBe('Works now, thanks!');
  });

  it('an agent’s reply by mail is a public staff comment', async () => {
    const id = await newTicketByMail(requester.email);
    const res = await deliver(
      await compose({
        from: agent.email,
        to: SUPPORT,
        subject: `Re: [#${id}] Printer on fire`,
        text: 'On my way.',
      }),
    );
    expect(res.json()).toMatchObject({ action: 'replied', ticketId: id });
    expect((await ticket(id)).firstResponseAt).not.toBeNull();
  });

  it('a stranger with [#N] or a forged In-Reply-To gets a ticket of their own', async () => {
    const id = await newTicketByMail(requester.email);
    const stranger = `stranger-${Date.now()}@example.org`;
    for (const extra of [
      { subject: `Re: [#${id}] Printer on fire` },
      { subject: 'Re: hi', inReplyTo: `<ticket-${id}@helpdesk.test>` },
    ]) {
      const res = await deliver(await compose({ from: stranger, to: SUPPORT, text: 'Let me in.', ...extra }));
      expect(res.statusCode).toBe(201);
      expect(res.json().action).toBe('created');
      expect(res.json().ticketId).not.toBe(id);
    }
    expect(await comments(id)).toEqual([]);
  });

  it('a requester’s reply reopens a pending or solved ticket', async () => {
    for (const status of ['pending', 'solved']) {
      const id = await newTicketByMail(requester.email);
      await setStatus(id, status);
      const res = await deliver(
        await compose({ from: requester.email, to: SUPPORT, subject: `Re: [#${id}] x`, text: 'Not fixed.' }),
      );
      expect(res.json()).toMatchObject({ action: 'replied', ticketId: id });
      expect((await ticket(id)).status).toBe('open');
    }
  });

  it('a reply to a closed ticket starts a new ticket that names the old one', async () => {
    const id = await newTicketByMail(requester.email);
    await setStatus(id, 'closed');
    const res = await deliver(
      await compose({
        from: requester.email,
        to: SUPPORT,
        subject: `Re: [#${id}] Printer on fire`,
        text: 'It is back.',
      }),
    );
    expect(res.json()).toMatchObject({ action: 'created' });
    const t = await ticket(res.json().ticketId);
    expect(t.title).toBe('Printer on fire');
    expect(t.description).toBe(`Follow-up to #${id} (closed).\n\nIt is back.`);
    const [row] = await q<{ reason: string }>('SELECT reason FROM inbound_messages WHERE ticket_id = $1', [
      t.id,
    ]);
    expect(row!.reason).toBe('follow_up');
  });
});

describe('attachments', () => {
  it('accepted files are kept (inline images too); refused ones are listed in the comment', async () => {
    const id = await newTicketByMail(requester.email);
    const res = await deliver(
      await compose({
        from: requester.email,
        to: SUPPORT,
        subject: `Re: [#${id}] logs`,
        html: '<p>Screenshot: <img src="cid:shot@x"></p>',
        text: 'Here are the files.',
        attachments: [
          { filename: 'shot.png', content: png(), cid: 'shot@x' },
          { filename: 'report.pdf', content: pdf() },
          { filename: 'setup.exe', content: elf() },
          { filename: 'huge.txt', content: Buffer.alloc(300_000, 'a') },
        ],
      }),
    );
    expect(res.statusCode, res.body).toBe(201);
    const [c] = await comments(id);
    // One insert: the rows share created_at, so their order is the ids'; compare them as a set.
    const kept = c.attachments.map((a: { filename: string; contentType: string }) => [
      a.filename,
      a.contentType,
    ]);
    expect(kept.sort()).toEqual([
      ['report.pdf', 'application/pdf'],
      ['shot.png', 'image/png'],
    ]);
    expect(c.body).toBe(
      'Here are the files.\n\n[Attachments not accepted]\n- setup.exe: not an accepted file type\n- huge.txt: larger than the helpdesk accepts',
    );
  });

  it('a new ticket keeps its files at ticket level', async () => {
    const res = await deliver(
      await compose({
        from: requester.email,
        to: SUPPORT,
        subject: 'With a file',
        text: 'See attached.',
        attachments: [{ filename: 'résumé.pdf', content: pdf() }],
      }),
    );
    const rows = await q<{ filename: string; comment_id: string | null }>(
      'SELECT filename, comment_id FROM attachments WHERE ticket_id = $1',
      [res.json().ticketId],
    );
    expect(rows).toEqual([{ filename: 'résumé.pdf', comment_id: null }]);
  });
});

describe('loops, noise and repeats', () => {
  const cases: Array<[string, Record<string, string>, string]> = [
    ['Auto-Submitted: auto-replied', { 'Auto-Submitted': 'auto-replied' }, 'auto_submitted'],
    ['X-Autoreply', { 'X-Autoreply': 'yes' }, 'auto_reply'],
    ['Precedence: bulk', { Precedence: 'bulk' }, 'bulk'],
    ['an empty Return-Path (bounce)', { 'Return-Path': '<>' }, 'bounce'],
  ];
  for (const [name, headers, reason] of cases) {
    it(`ignores ${name} (202, audited)`, async () => {
      const res = await deliver(
        await compose({
          from: requester.email,
          to: SUPPORT,
          subject: 'Out of office',
          text: 'I am away.',
          headers,
        }),
      );
      expect(res.statusCode).toBe(202);
      expect(res.json()).toEqual({ action: 'ignored', reason });
      const audit = await q<{ action: string; metadata: { reason: string } }>(
        'SELECT action, metadata FROM audit_events WHERE trace_id = $1',
        [res.headers['x-request-id']],
      );
      expect(audit).toEqual([
        { action: 'inbound_email.ignored', metadata: expect.objectContaining({ reason }) },
      ]);
    });
  }

  it('keeps Auto-Submitted: no', async () => {
    const res = await deliver(
      await compose({
        from: requester.email,
        to: SUPPORT,
        subject: 'Hi',
        text: 'Human.',
        headers: { 'Auto-Submitted': 'no' },
      }),
    );
    expect(res.statusCode).toBe(201);
  });

  it('ignores a MAILER-DAEMON delivery report and our own messages', async () => {
    const dsn = await compose({
      from: 'Mail Delivery System <MAILER-DAEMON@mx.example.com>',
      to: SUPPORT,
      subject: 'Undelivered Mail Returned to Sender',
      text: 'This is the mail system at host mx.example.com.',
    });
    expect((await deliver(dsn)).json()).toEqual({ action: 'ignored', reason: 'bounce' });
    const own = await compose({
      from: `Helpdesk Support <${SUPPORT}>`,
      to: SUPPORT,
      subject: '[#1] x',
      text: 'loop',
    });
    expect((await deliver(own)).json()).toEqual({ action: 'ignored', reason: 'own_address' });
    const ownPlus = await compose({
      from: 'support+t1.abc@helpdesk.test',
      to: SUPPORT,
      subject: 'x',
      text: 'loop',
    });
    expect((await deliver(ownPlus)).json()).toEqual({ action: 'ignored', reason: 'own_address' });
  });

  it('ignores a deactivated sender', async () => {
    const gone = await createUser(app, { role: 'requester', active: false });
    const res = await deliver(
      await compose({ from: gone.email, to: SUPPORT, subject: 'Hi', text: 'Me again.' }),
    );
    expect(res.json()).toEqual({ action: 'ignored', reason: 'sender_deactivated' });
  });

  it('the same Message-ID twice → one ticket; the repeat gets the first answer', async () => {
    const raw = await compose({ from: requester.email, to: SUPPORT, subject: 'Twice', text: 'Once only.' });
    const [a, b] = await Promise.all([deliver(raw), deliver(raw)]);
    const first = [a, b].find((r) => r.headers['idempotent-replayed'] === undefined)!;
    const again = [a, b].find((r) => r !== first)!;
    expect(first.statusCode).toBe(201);
    expect(again.statusCode).toBe(201);
    expect(again.json()).toEqual(first.json());
    expect(again.headers['idempotent-replayed']).toBe('true');
    const rows = await q<{ n: number }>(
      "SELECT count(*)::int AS n FROM tickets WHERE title = 'Twice' AND requester_id = $1",
      [requester.id],
    );
    expect(rows[0]!.n).toBe(1);
  });

  it('Message-IDs are remembered for 30 days, then purged by maintenance', async () => {
    const oldMail = await compose({ from: requester.email, to: SUPPORT, subject: 'Old', text: 'Long ago.' });
    const newMail = await compose({ from: requester.email, to: SUPPORT, subject: 'New', text: 'Just now.' });
    const old = (await deliver(oldMail)).json();
    const fresh = (await deliver(newMail)).json();
    await q("UPDATE inbound_messages SET received_at = now() - interval '31 days' WHERE ticket_id = $1", [
      old.ticketId,
    ]);
    const purged = await inboundMessagesPurge.run(app.db, new Date());
    expect(purged).toBeGreaterThanOrEqual(1);
    const left = await q<{ ticket_id: number }>(
      'SELECT ticket_id FROM inbound_messages WHERE ticket_id = ANY($1::int[])',
      [[old.ticketId, fresh.ticketId]],
    );
    expect(left.map((r) => r.ticket_id)).toEqual([fresh.ticketId]);
    expect((await deliver(newMail)).headers['idempotent-replayed']).toBe('true');
  });

  it('a mail without Message-ID is keyed by its bytes', async () => {
    const raw = Buffer.from(
      `From: ${requester.email}\r\nTo: ${SUPPORT}\r\nSubject: No id ${Date.now()}\r\n\r\nHello.\r\n`,
    );
    const a = await deliver(raw);
    const b = await deliver(raw);
    expect(a.statusCode).toBe(201);
    expect(b.json()).toEqual(a.json());
    expect(b.headers['idempotent-replayed']).toBe('true');
  });

  it('is all or nothing: a failure leaves no ticket, user or inbound row', async () => {
    const from = `atomic-${Date.now()}@example.com`;
    // A subject whose title is fine, but a ticket insert that fails: a trigger refuses it for this test only.
    await app.db.$client.query(`
      CREATE OR REPLACE FUNCTION refuse_atomic_test() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN IF NEW.title = 'Refuse me' THEN RAISE EXCEPTION 'refused for the test'; END IF; RETURN NEW; END $$;
      DROP TRIGGER IF EXISTS refuse_atomic_test ON tickets;
      CREATE TRIGGER refuse_atomic_test BEFORE INSERT ON tickets FOR EACH ROW EXECUTE FUNCTION refuse_atomic_test();`);
    try {
      const raw = await compose({
        from,
        to: SUPPORT,
        subject: 'Refuse me',
        text: 'x',
        attachments: [{ filename: 'a.pdf', content: pdf() }],
      });
      const res = await deliver(raw);
      expect(res.statusCode).toBe(500);
      expect(await q('SELECT 1 FROM users WHERE email = $1', [from])).toEqual([]);
      expect(await q('SELECT 1 FROM inbound_messages WHERE from_address = $1', [from])).toEqual([]);
    } finally {
      await app.db.$client.query(
        'DROP TRIGGER IF EXISTS refuse_atomic_test ON tickets; DROP FUNCTION IF EXISTS refuse_atomic_test();',
      );
    }
  });
});

describe('INBOUND_CREATE_REQUESTERS=false', () => {
  it('ignores unknown senders and keeps known ones', async () => {
    const closed = await createTestApp({ INBOUND_EMAIL_TOKEN: TOKEN, INBOUND_CREATE_REQUESTERS: 'false' });
    try {
      const send = async (from: string) =>
        closed.inject({
          method: 'POST',
          url: '/api/v1/inbound/email',
          headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'message/rfc822' },
          payload: await compose({ from, to: SUPPORT, subject: 'Hi', text: 'Hello.' }),
        });
      expect((await send(`unknown-${Date.now()}@example.com`)).json()).toEqual({
        action: 'ignored',
        reason: 'unknown_sender',
      });
      expect((await send(requester.email)).statusCode).toBe(201);
    } finally {
      await closed.close();
    }
  });
});
