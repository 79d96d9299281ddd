import { describe, expect, it } from 'vitest';
import { ignoreReason, parseInboundMail } from '../../src/modules/inbound/inbound-mail.js';
import {
  boundText,
  stripQuotedReply,
  ticketNumberInSubject,
  titleFromSubject,
} from '../../src/modules/inbound/reply-text.js';
import { appleMailReply, compose, gmailReply, outlookReply } from '../helpers/mail-fixtures.js';

const notOurs = () => false;

describe('parseInboundMail', () => {
  it('prefers the text part of multipart/alternative and collects thread ids newest first', async () => {
    const m = await parseInboundMail(
      await compose({
        from: 'Rita <RITA@Example.com>',
        to: 'support@helpdesk.test',
        cc: 'boss@example.com',
        subject: '=?utf-8?q?Gr=C3=BC=C3=9Fe?=',
        text: 'plain words',
        html: '<p>html words</p>',
        inReplyTo: '<c@x>',
        references: ['<a@x>', '<b@x>', '<c@x>'],
      }),
    );
    expect(m.from).toEqual({ address: 'rita@example.com', name: 'Rita' });
    expect(m.recipients).toEqual(['support@helpdesk.test', 'boss@example.com']);
    expect(m.text.trim()).toBe('plain words');
    expect(m.fromHtml).toBe(false);
    expect(m.threadIds).toEqual(['<c@x>', '<b@x>', '<a@x>']);
    expect(m.key).toMatch(/^<fixture-.*@client\.example>$/);
  });

  it('keys a mail without Message-ID by a hash of its bytes', async () => {
    const raw = Buffer.from('From: a@example.com\r\nSubject: x\r\n\r\nhi\r\n');
    const a = await parseInboundMail(raw);
    expect(a.key).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect((await parseInboundMail(raw)).key).toBe(a.key);
  });

  it('turns HTML-only mail into text: blockquotes become > lines, scripts vanish', async () => {
    const m = await parseInboundMail(
      await compose({
        from: 'a@example.com',
        subject: 'x',
        html: '<script>evil()</script><p>New <i>text</i></p><blockquote>old text</blockquote>',
      }),
    );
    expect(m.fromHtml).toBe(true);
    expect(m.text).toBe('New text\n\n> old text');
  });
});

describe('ignoreReason', () => {
  const mail = async (headers: Record<string, string>, from = 'a@example.com') =>
    parseInboundMail(await compose({ from, subject: 'x', text: 'y', headers }));

  it('names auto-replies, bulk mail, bounces and our own mail; keeps Auto-Submitted: no', async () => {
    expect(ignoreReason(await mail({ 'Auto-Submitted': 'auto-generated' }), notOurs)).toBe('auto_submitted');
    expect(ignoreReason(await mail({ 'Auto-Submitted': 'no' }), notOurs)).toBeNull();
    expect(ignoreReason(await mail({ 'X-Autoreply': 'yes' }), notOurs)).toBe('auto_reply');
    for (const p of ['bulk', 'junk', 'auto_reply'])
      expect(ignoreReason(await mail({ Precedence: p }), notOurs)).toBe('bulk');
    expect(ignoreReason(await mail({ Precedence: 'first-class' }), notOurs)).toBeNull();
    expect(ignoreReason(await mail({ 'Return-Path': '<>' }), notOurs)).toBe('bounce');
    expect(ignoreReason(await mail({ 'Return-Path': '<a@example.com>' }), notOurs)).toBeNull();
    expect(ignoreReason(await mail({}, 'MAILER-DAEMON@mx.example.com'), notOurs)).toBe('bounce');
    expect(ignoreReason(await mail({ 'X-Failed-Recipients': 'b@example.com' }), notOurs)).toBe('bounce');
    expect(ignoreReason(await mail({}), (a) => a === 'a@example.com')).toBe('own_address');
  });

  it('recognises a delivery status notification (multipart/report)', async () => {
    const raw = Buffer.from(
      [
        'From: postmaster@mx.example.com',
        'Subject: Delivery Status Notification (Failure)',
        'Content-Type: multipart/report; report-type=delivery-status; boundary="b"',
        '',
        '--b',
        'Content-Type: text/plain',
        '',
        'Delivery failed.',
        '--b',
        'Content-Type: message/delivery-status',
        '',
        'Final-Recipient: rfc822; nobody@example.com',
        'Action: failed',
        '--b--',
        '',
      ].join('\r\n'),
    );
    expect(ignoreReason(await parseInboundMail(raw), notOurs)).toBe('bounce');
  });
});

describe('stripQuotedReply', () => {
  const o = { from: 'rita@example.com', to: 'support@helpdesk.test', subject: 'x', text: 'New words.' };

  it('cuts Gmail, Outlook and Apple Mail quoting', async () => {
    for (const raw of [gmailReply({ ...o, inReplyTo: '<a@b>' }), outlookReply(o), appleMailReply(o)]) {
      const m = await parseInboundMail(raw);
      expect(stripQuotedReply(m.text)).toBe('New words.');
    }
  });

  it('cuts `-- ` signatures and "-----Original Message-----" blocks', () => {
    expect(stripQuotedReply('Hello.\n\n-- \nRita\nACME')).toBe('Hello.');
    expect(stripQuotedReply('Top.\n\n-----Original Message-----\nFrom: x\nold')).toBe('Top.');
  });

  it('keeps interleaved answers and keeps everything when all of it is quoted', () => {
    expect(stripQuotedReply('> q1?\nanswer one\n> q2?\nanswer two\n')).toBe('answer one\nanswer two');
    expect(stripQuotedReply('> only a quote\n> nothing new')).toBe('> only a quote\n> nothing new');
  });

  it('stays fast on hostile input (the parser’s regexes see bounded lines)', () => {
    const hostile = `${'a on '.repeat(40_000)}${' at '.repeat(10)}\n`.repeat(5);
    const started = performance.now();
    stripQuotedReply(hostile);
    // A bound, not a benchmark: unbounded, this input takes minutes.
    expect(performance.now() - started).toBeLessThan(5_000);
  });
});

describe('text helpers', () => {
  it('boundText drops NUL and control characters and cuts with a note', () => {
    expect(boundText('a\u0000b\u0007c\r\nd\t e  ', 100)).toBe('abc\nd\t e');
    const cut = boundText('x'.repeat(500), 200);
    expect(cut.length).toBeLessThanOrEqual(200);
    expect(cut).toContain('the rest of this email was cut');
    expect(boundText('😀'.repeat(300), 200).length).toBeLessThanOrEqual(200);
  });

  it('titleFromSubject drops reply prefixes and our tag; ticketNumberInSubject reads it', () => {
    expect(titleFromSubject('Re: AW: Fwd: [#42] Printer on fire')).toBe('Printer on fire');
    expect(titleFromSubject('RE[2]: hello\r\n world')).toBe('hello world');
    expect(titleFromSubject('   ')).toBe('(no subject)');
    expect(titleFromSubject('x'.repeat(300))).toHaveLength(200);
    expect(ticketNumberInSubject('Re: [#42] Printer')).toBe(42);
    expect(ticketNumberInSubject('#42 no brackets')).toBeNull();
    expect(ticketNumberInSubject('[#99999999999]')).toBeNull();
  });
});
