import escapeHtml from 'escape-html';
import { ticketSubject } from './mail-headers.js';

/** What a notification mail is about; also the name of the preference that switches it off. */
export type NotificationKind =
  | 'ticketCreated'
  | 'publicReply'
  | 'ticketSolved'
  | 'requesterReply'
  | 'assigned'
  | 'slaBreach'
  | 'ticketMerged';

export interface RenderedMail {
  subject: string;
  text: string;
  html: string;
}

export interface TicketFacts {
  id: number;
  title: string;
  description: string;
  requesterName: string;
}

/** Everything a notification template may show; each template picks what its kind needs. */
export interface NotificationContent {
  kind: NotificationKind;
  /** The recipient's role decides the wording of a receipt: "we received" vs "new ticket". */
  recipient: { name: string; isRequester: boolean };
  ticket: TicketFacts;
  ticketUrl: string;
  actorName: string | null;
  /** The public reply's text (publicReply, requesterReply). */
  comment?: { authorName: string; body: string };
  /** ticketCreated for staff: the team the ticket was filed under. */
  teamName?: string | null;
  /** slaBreach: which target was missed. */
  slaTarget?: 'firstResponse' | 'resolution' | null;
  /** ticketMerged: which side of the merge this ticket was, and the other ticket. */
  merge?: { role: 'source' | 'target'; otherTicketId: number } | null;
}

/** `html` tagged template: every interpolated value is HTML-escaped; `raw()` marks trusted markup. */
class Raw {
  constructor(readonly value: string) {}
}
const raw = (value: string) => new Raw(value);
function html(strings: TemplateStringsArray, ...values: unknown[]): Raw {
  let out = strings[0]!;
  values.forEach((v, i) => {
    out += (v instanceof Raw ? v.value : escapeHtml(String(v ?? ''))) + strings[i + 1]!;
  });
  return new Raw(out);
}

/** Plain text as HTML paragraphs: escaped, line breaks kept. */
function paragraphs(text: string): Raw {
  const parts = text
    .split(/\n{2,}/)
    .map((p) => html`<p style="margin:0 0 12px">${raw(escapeHtml(p).replace(/\n/g, '<br>'))}</p>`.value);
  return raw(parts.join(''));
}

/** Quoted user text in the plain-text part: each line prefixed so it cannot pass for our wording. */
function quote(text: string): string {
  return text
    .split('\n')
    .map((l) => `> ${l}`)
    .join('\n');
}

const MAX_EXCERPT = 4000;
const excerpt = (s: string) => (s.length > MAX_EXCERPT ? `${s.slice(0, MAX_EXCERPT)}…` : s);

function layout(opts: { intro: Raw; body?: Raw; url: string; linkLabel: string; footer: string }): string {
  return html`<!doctype html>
<html><head><meta charset="utf-8"><meta name="viewport" content="width=device-width"></head>
<body style="font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;font-size:15px;line-height:1.5;color:#1f2328;margin:0;padding:24px">
<div style="max-width:640px">
${opts.intro}
${opts.body ?? raw('')}
<p style="margin:16px 0"><a href="${opts.url}" style="color:#0969da">${opts.linkLabel}</a></p>
<p style="margin:24px 0 0;color:#656d76;font-size:13px">${opts.footer}</p>
</div>
</body></html>
`.value;
}

const REPLY_FOOTER = 'Reply to this email to add a comment to the ticket.';

/** Subject, plain text and HTML of one notification. User content is escaped in HTML, quoted in text. */
export function renderNotification(c: NotificationContent): RenderedMail {
  const subject = ticketSubject(c.ticket.id, c.ticket.title);
  const hi = c.recipient.name ? `Hi ${c.recipient.name},` : 'Hi,';
  const ref = `#${c.ticket.id} "${c.ticket.title}"`;
  let introText: string;
  let bodyText: string | null = null;
  let linkLabel = `View ticket #${c.ticket.id}`;
  let footer = REPLY_FOOTER;

  switch (c.kind) {
    case 'ticketCreated':
      if (c.recipient.isRequester) {
        introText = `We received your request ${ref}. We will get back to you by email.`;
      } else {
        const team = c.teamName ? ` for ${c.teamName}` : '';
        introText = `${c.ticket.requesterName} opened ticket ${ref}${team}.`;
      }
      bodyText = c.ticket.description;
      break;
    case 'publicReply':
      introText = `${c.comment?.authorName ?? 'Support'} replied to your request ${ref}:`;
      bodyText = c.comment?.body ?? '';
      break;
    case 'requesterReply':
      introText = `${c.comment?.authorName ?? c.ticket.requesterName} replied on ticket ${ref}:`;
      bodyText = c.comment?.body ?? '';
      break;
    case 'ticketSolved':
      introText = `Your request ${ref} has been marked as solved.`;
      footer = 'Not solved for you? Reply to this email and the ticket opens again.';
      break;
    case 'assigned':
      introText = `${c.actorName ?? 'Someone'} assigned ticket ${ref} to you.`;
      linkLabel = `Open ticket #${c.ticket.id}`;
      break;
    case 'slaBreach': {
      const target = c.slaTarget === 'firstResponse' ? 'first-response' : 'resolution';
      introText = `Ticket ${ref} has missed its ${target} target.`;
      linkLabel = `Open ticket #${c.ticket.id}`;
      break;
    }
    case 'ticketMerged':
      if (c.merge?.role === 'target') {
        introText = `Request #${c.merge.otherTicketId} was merged into your request ${ref}; its conversation continues here.`;
      } else {
        const into = c.merge ? ` into #${c.merge.otherTicketId}` : '';
        introText = `Your request ${ref} was merged${into}, where our team handles it together with a related request.`;
        footer = 'Reply to this email to add a comment; it reaches the ticket your request was merged into.';
      }
      break;
  }

  const text = [
    hi,
    '',
    introText,
    ...(bodyText !== null ? ['', quote(excerpt(bodyText))] : []),
    '',
    `${linkLabel}: ${c.ticketUrl}`,
    '',
    '-- ',
    footer,
    '',
  ].join('\n');
  const htmlBody = layout({
    intro: html`<p style="margin:0 0 12px">${hi}</p><p style="margin:0 0 12px">${introText}</p>`,
    body:
      bodyText !== null
        ? html`<blockquote style="margin:0 0 12px;padding:0 0 0 12px;border-left:3px solid #d0d7de;color:#1f2328">${paragraphs(excerpt(bodyText))}</blockquote>`
        : undefined,
    url: c.ticketUrl,
    linkLabel,
    footer,
  });
  return { subject, text, html: htmlBody };
}

/** The password-reset mail: a single-use link valid for `validMinutes`. */
export function renderPasswordReset(opts: { name: string; url: string; validMinutes: number }): RenderedMail {
  const hi = opts.name ? `Hi ${opts.name},` : 'Hi,';
  const intro = `Someone (hopefully you) asked to reset the password of your helpdesk account. The link below works once, for ${opts.validMinutes} minutes.`;
  const footer =
    'If you did not ask for this, ignore this email: your password stays as it is. Setting a new password signs you out everywhere.';
  return {
    subject: 'Reset your password',
    text: [hi, '', intro, '', `Set a new password: ${opts.url}`, '', '-- ', footer, ''].join('\n'),
    html: layout({
      intro: html`<p style="margin:0 0 12px">${hi}</p><p style="margin:0 0 12px">${intro}</p>`,
      url: opts.url,
      linkLabel: 'Set a new password',
      footer,
    }),
  };
}
