import MailComposer from 'nodemailer/lib/mail-composer/index.js';
import type Mail from 'nodemailer/lib/mailer/index.js';

let seq = 0;
/** A unique Message-ID for a fixture. */
export const messageId = () => `<fixture-${Date.now()}-${++seq}@client.example>`;

/** An RFC 5322 message built by nodemailer's MailComposer (what a real client would send). */
export async function compose(opts: Mail.Options): Promise<Buffer> {
  return new MailComposer({ messageId: messageId(), date: new Date(), ...opts }).compile().build();
}

/**
 * A reply as Gmail writes it (captured shape): multipart/alternative, the attribution line broken over
 * two lines, quoted text with `>` in the plain part and a gmail_quote div in the HTML.
 */
export function gmailReply(o: {
  from: string;
  to: string;
  subject: string;
  inReplyTo: string;
  text: string;
}) {
  const id = messageId();
  return Buffer.from(
    [
      'MIME-Version: 1.0',
      'Date: Mon, 30 Nov 2026 10:12:44 +0100',
      `References: ${o.inReplyTo}`,
      `In-Reply-To: ${o.inReplyTo}`,
      `Message-ID: ${id}`,
      `Subject: Re: ${o.subject}`,
      `From: Rita Requester <${o.from}>`,
      `To: Helpdesk Support <${o.to}>`,
      'Content-Type: multipart/alternative; boundary="000000000000a1b2c3d4e5f6"',
      '',
      '--000000000000a1b2c3d4e5f6',
      'Content-Type: text/plain; charset="UTF-8"',
      'Content-Transfer-Encoding: quoted-printable',
      '',
      `${o.text}`,
      '',
      'On Mon, Nov 30, 2026 at 10:00 AM Helpdesk Support <',
      `${o.to}> wrote:`,
      '',
      '> Hi Rita,',
      '> Could you try turning it off and on again?',
      '>',
      '',
      '--000000000000a1b2c3d4e5f6',
      'Content-Type: text/html; charset="UTF-8"',
      'Content-Transfer-Encoding: quoted-printable',
      '',
      `<div dir=3D"ltr">${o.text}</div><br><div class=3D"gmail_quote"><div dir=3D"ltr" class=3D"gmail_attr">On Mon, Nov 30, 2026 at 10:00 AM Helpdesk Support &lt;<a href=3D"mailto:${o.to}">${o.to}</a>&gt; wrote:<br></div><blockquote class=3D"gmail_quote" style=3D"margin:0px 0px 0px 0.8ex">Hi Rita,<br>Could you try turning it off and on again?</blockquote></div>`,
      '',
      '--000000000000a1b2c3d4e5f6--',
      '',
    ].join('\r\n'),
  );
}

/** A reply as Outlook (Windows, top posting) writes it: a rule and a From/Sent/To/Subject block, no `>`. */
export function outlookReply(o: {
  from: string;
  to: string;
  subject: string;
  text: string;
  references?: string;
}) {
  return Buffer.from(
    [
      `From: Rita Requester <${o.from}>`,
      `To: "Helpdesk Support" <${o.to}>`,
      `Subject: RE: ${o.subject}`,
      'Thread-Topic: Printer on fire',
      'Thread-Index: AQHZ1a2b3c4d5e6f7g8h9i0jAAABBBCCC',
      'Date: Mon, 30 Nov 2026 09:20:11 +0000',
      `Message-ID: <AM0PR02MB1234567890ABCDEF${Date.now()}${++seq}@AM0PR02MB1234.eurprd02.prod.outlook.com>`,
      ...(o.references ? [`References: ${o.references}`, `In-Reply-To: ${o.references}`] : []),
      'Content-Language: en-US',
      'X-MS-Has-Attach:',
      'Content-Type: text/plain; charset="windows-1252"',
      'Content-Transfer-Encoding: quoted-printable',
      'MIME-Version: 1.0',
      '',
      o.text,
      '',
      '________________________________',
      `From: Helpdesk Support <${o.to}>`,
      'Sent: Monday, November 30, 2026 10:00 AM',
      `To: Rita Requester <${o.from}>`,
      `Subject: ${o.subject}`,
      '',
      'Hi Rita,',
      'Could you try turning it off and on again?',
      '',
    ].join('\r\n'),
  );
}

/** A reply as Apple Mail (iPhone) writes it: "Sent from my iPhone", then the attribution and `>` lines. */
export function appleMailReply(o: { from: string; to: string; subject: string; text: string }) {
  return Buffer.from(
    [
      'Content-Type: text/plain; charset=utf-8',
      'Content-Transfer-Encoding: quoted-printable',
      `From: Rita Requester <${o.from}>`,
      'Mime-Version: 1.0 (1.0)',
      'Date: Mon, 30 Nov 2026 10:31:02 +0100',
      `Subject: Re: ${o.subject}`,
      `Message-Id: <7A1B2C3D-4E5F-6789-ABCD-${Date.now()}${++seq}@example.com>`,
      `To: Helpdesk Support <${o.to}>`,
      'X-Mailer: iPhone Mail (21A329)',
      '',
      o.text,
      '',
      'Sent from my iPhone',
      '',
      `> On 30 Nov 2026, at 10:00, Helpdesk Support <${o.to}> wrote:`,
      '>=20',
      '> =EF=BB=BFHi Rita,',
      '> Could you try turning it off and on again?',
      '',
    ].join('\r\n'),
  );
}
