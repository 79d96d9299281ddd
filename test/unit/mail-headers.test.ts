import { describe, expect, it } from 'vitest';
import {
  createReplyAddressCodec,
  headerText,
  ticketIdFromMessageId,
  ticketMessageId,
  ticketSubject,
  ticketThreadId,
} from '../../src/modules/mail/mail-headers.js';
import { renderNotification } from '../../src/modules/mail/mail-templates.js';
import { emlFileName } from '../../src/modules/mail/mail-transport.js';

const SECRET = 'x'.repeat(48);

describe('header text', () => {
  it('CR, LF, Unicode line separators and control characters cannot start a new header', () => {
    const evil = 'Hello\r\nBcc: victim@example.com\n\u2028X-Evil: 1\u0000\u0085end';
    const out = headerText(evil);
    for (const ch of ['\r', '\n', '\u2028', '\u0000', '\u0085']) expect(out).not.toContain(ch);
    expect(out).toBe('Hello Bcc: victim@example.com X-Evil: 1 end');
  });

  it('subjects are [#N] title, one line, bounded', () => {
    expect(ticketSubject(42, 'Printer\r\non fire')).toBe('[#42] Printer on fire');
    expect(ticketSubject(1, 'a'.repeat(500)).length).toBeLessThanOrEqual(6 + 180);
  });
});

describe('message ids', () => {
  it('deterministic per key, distinct per key, all in the ticket thread', () => {
    const a = ticketMessageId(42, 'event-1:user-1', 'helpdesk.example');
    expect(ticketMessageId(42, 'event-1:user-1', 'helpdesk.example')).toBe(a);
    expect(ticketMessageId(42, 'event-1:user-2', 'helpdesk.example')).not.toBe(a);
    expect(ticketIdFromMessageId(a, 'helpdesk.example')).toBe(42);
    expect(ticketIdFromMessageId(ticketThreadId(42, 'helpdesk.example'), 'HELPDESK.example')).toBe(42);
  });

  it('ids of other domains or shapes are not ours', () => {
    expect(ticketIdFromMessageId('<ticket-42@evil.example>', 'helpdesk.example')).toBeNull();
    expect(ticketIdFromMessageId('<abc@helpdesk.example>', 'helpdesk.example')).toBeNull();
    expect(ticketIdFromMessageId('<ticket-99999999999@helpdesk.example>', 'helpdesk.example')).toBeNull();
  });

  it('.eml file names come from the Message-ID and stay inside the folder', () => {
    expect(emlFileName('<ticket-1.abc@x.example>')).toBe('ticket-1.abc_x.example.eml');
    expect(emlFileName('<../../etc/passwd@x>')).not.toContain('/');
  });
});

describe('signed Reply-To', () => {
  const codec = createReplyAddressCodec(SECRET, 'support@helpdesk.example');

  it('routes back to its ticket, whatever the case', () => {
    const addr = codec.address(42);
    expect(addr).toMatch(/^support\+t42\.[0-9a-f]{16}@helpdesk\.example$/);
    expect(codec.verify(addr)).toBe(42);
    expect(codec.verify(addr.toUpperCase())).toBe(42);
    expect(codec.verify(`<${addr}>`)).toBe(42);
  });

  it('cannot be forged for another ticket, another domain, or with another secret', () => {
    const addr = codec.address(42);
    const tag = addr.split('.')[1]!.split('@')[0]!;
    expect(codec.verify(`support+t43.${tag}@helpdesk.example`)).toBeNull();
    expect(codec.verify(addr.replace('helpdesk.example', 'evil.example'))).toBeNull();
    expect(codec.verify(addr.replace('support+', 'sales+'))).toBeNull();
    expect(createReplyAddressCodec('y'.repeat(48), 'support@helpdesk.example').verify(addr)).toBeNull();
    expect(codec.verify('support@helpdesk.example')).toBeNull();
    expect(codec.verify(`support+t42.${tag.slice(0, 8)}@helpdesk.example`)).toBeNull();
  });

  it('a base address with its own +tag keeps one plus part', () => {
    const c = createReplyAddressCodec(SECRET, 'help+desk@x.example');
    expect(c.address(7)).toMatch(/^help\+t7\.[0-9a-f]{16}@x\.example$/);
    expect(c.verify(c.address(7))).toBe(7);
  });
});

describe('templates', () => {
  it('user content is escaped in HTML and quoted in text', () => {
    const out = renderNotification({
      kind: 'publicReply',
      recipient: { name: 'Rita <b>', isRequester: true },
      ticket: { id: 7, title: '<script>alert(1)</script>', description: 'd', requesterName: 'Rita' },
      ticketUrl: 'https://app.example/tickets/7',
      actorName: 'Alex',
      comment: { authorName: 'Alex "&"', body: 'Try <img src=x onerror=alert(1)>\nthen reboot' },
    });
    expect(out.subject).toBe('[#7] <script>alert(1)</script>');
    expect(out.html).not.toContain('<script>');
    expect(out.html).not.toContain('<img');
    expect(out.html).toContain('&lt;img src=x onerror=alert(1)&gt;<br>then reboot');
    expect(out.html).toContain('Alex &quot;&amp;&quot;');
    expect(out.text).toContain('> Try <img src=x onerror=alert(1)>\n> then reboot');
    expect(out.text).toContain('https://app.example/tickets/7');
  });
});
