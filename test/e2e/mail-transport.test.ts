import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { simpleParser } from 'mailparser';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { headerText, ticketSubject } from '../../src/modules/mail/mail-headers.js';
import {
  createFileTransport,
  createSmtpTransport,
  type OutgoingMail,
  PermanentMailError,
} from '../../src/modules/mail/mail-transport.js';
import { TestSmtpServer } from '../helpers/smtp.js';

const lines: Array<{ obj: object; msg: string }> = [];
const log = { info: (obj: object, msg: string) => lines.push({ obj, msg }) };

function message(over: Partial<OutgoingMail> = {}): OutgoingMail {
  return {
    messageId: `<ticket-7.${Math.random().toString(16).slice(2)}@helpdesk.example>`,
    from: { name: 'Helpdesk', address: 'support@helpdesk.example' },
    to: { name: 'Zoë Ünïcode', address: 'zoe@example.test' },
    replyTo: 'support+t7.0123456789abcdef@helpdesk.example',
    subject: ticketSubject(7, 'Drucker brennt — 🔥'),
    text: 'secret body text',
    html: '<p>secret body text</p>',
    inReplyTo: '<ticket-7@helpdesk.example>',
    references: ['<ticket-7@helpdesk.example>'],
    headers: { 'Auto-Submitted': 'auto-generated' },
    ...over,
  };
}

describe('SMTP transport against a real SMTP server', () => {
  let smtp: TestSmtpServer;
  beforeAll(async () => {
    smtp = await TestSmtpServer.start({ auth: { user: 'mailer', pass: 'p@ss:word/1' } });
  });
  afterAll(async () => {
    await smtp.close();
  });

  it('authenticates with the URL credentials and delivers text + HTML with every header intact', async () => {
    const transport = createSmtpTransport(smtp.url, log);
    const mail = message();
    const { response } = await transport.send(mail);
    expect(response).toMatch(/^250/);
    const got = await smtp.waitFor((m) => m.parsed.messageId === mail.messageId);
    const p = got.parsed;
    expect(p.subject).toBe('[#7] Drucker brennt — 🔥');
    expect(p.to && !Array.isArray(p.to) ? p.to.value[0] : null).toEqual({
      name: 'Zoë Ünïcode',
      address: 'zoe@example.test',
    });
    expect(p.inReplyTo).toBe('<ticket-7@helpdesk.example>');
    expect(p.references).toBe('<ticket-7@helpdesk.example>');
    expect(p.replyTo?.value[0]?.address).toBe('support+t7.0123456789abcdef@helpdesk.example');
    expect(p.headers.get('auto-submitted')).toBe('auto-generated');
    expect(p.text?.trim()).toBe('secret body text');
    expect(p.html).toContain('<p>secret body text</p>');
    // Non-ASCII names and subjects travel encoded (RFC 2047), never raw 8-bit in the header block.
    const head = got.raw.slice(0, got.raw.indexOf('\r\n\r\n'));
    expect(head).not.toMatch(/[^\x20-\x7e\r\n\t]/);
    transport.close();
  });

  it('CR/LF in a display name or subject cannot add a header or a recipient', async () => {
    const transport = createSmtpTransport(smtp.url, log);
    const mail = message({
      to: { name: 'Mallory\r\nBcc: victim@example.test', address: 'mallory@example.test' },
      subject: ticketSubject(7, 'Hi\r\nBcc: victim@example.test\r\nX-Injected: yes'),
    });
    await transport.send(mail);
    const got = await smtp.waitFor((m) => m.parsed.messageId === mail.messageId);
    expect(got.envelope.to).toEqual(['mallory@example.test']);
    expect(got.parsed.headers.has('x-injected')).toBe(false);
    expect(got.parsed.headers.has('bcc')).toBe(false);
    expect(got.parsed.subject).toBe('[#7] Hi Bcc: victim@example.test X-Injected: yes');
    expect(headerText('a\r\nb')).toBe('a b');
    transport.close();
  });

  it('a 550 refusal is a PermanentMailError carrying the server’s answer', async () => {
    smtp.refuse.add('gone@example.test');
    const transport = createSmtpTransport(smtp.url, log);
    const err = await transport
      .send(message({ to: { name: 'Gone', address: 'gone@example.test' } }))
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PermanentMailError);
    expect((err as PermanentMailError).responseCode).toBe(550);
    expect((err as Error).message).toMatch(/550.*Mailbox unavailable/);
    transport.close();
  });

  it('a server that is down is a transient error (retried), not a permanent one', async () => {
    const down = await TestSmtpServer.start();
    await down.down();
    const transport = createSmtpTransport(down.url, log);
    const err = await transport.send(message()).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(Error);
    expect(err).not.toBeInstanceOf(PermanentMailError);
    transport.close();
  });

  it('wrong credentials are not permanent either: fixing the configuration lets the retries through', async () => {
    const wrong = smtp.url.replace('mailer:', 'intruder:');
    const transport = createSmtpTransport(wrong, log);
    const err = await transport.send(message()).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(Error);
    expect(err).not.toBeInstanceOf(PermanentMailError);
    transport.close();
  });
});

describe('.eml fallback without SMTP_URL', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'helpdesk-mail-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('writes one parseable .eml per message, logs subject and recipient but never the body', async () => {
    lines.length = 0;
    const transport = createFileTransport(path.join(dir, 'mail'), log);
    const mail = message();
    await transport.send(mail);
    await transport.send(mail); // the same message again (a retry) overwrites, it does not duplicate
    const files = await readdir(path.join(dir, 'mail'));
    expect(files).toHaveLength(1);
    expect(files[0]).toMatch(/\.eml$/);
    const raw = await readFile(path.join(dir, 'mail', files[0]!));
    expect(raw.includes('\r')).toBe(false); // Unix line ends, as a mail client saves a message
    const parsed = await simpleParser(raw);
    expect(parsed.messageId).toBe(mail.messageId);
    expect(parsed.subject).toBe(mail.subject);
    expect(parsed.text?.trim()).toBe('secret body text');
    expect(parsed.html).toContain('<p>secret body text</p>');
    expect(parsed.to).toMatchObject({ value: [{ name: 'Zoë Ünïcode', address: 'zoe@example.test' }] });
    expect(parsed.replyTo?.text).toBe(mail.replyTo);
    expect(parsed.inReplyTo).toBe(mail.inReplyTo);
    expect(parsed.headers.get('auto-submitted')).toBe('auto-generated');
    const logged = JSON.stringify(lines);
    expect(lines.at(-1)?.obj).toMatchObject({ to: 'zoe@example.test', subject: mail.subject });
    expect(logged).not.toContain('secret body text');
  });
});
