import { createHash } from 'node:crypto';
import type { AddressObject, HeaderValue } from 'mailparser';

/**
 * mailparser and html-to-text (with their dependencies ≈ 8 MB of heap) are loaded with the first inbound
 * mail, not in every API process and worker at start.
 */
let parsers: Promise<[typeof import('mailparser'), typeof import('html-to-text')]> | undefined;
const loadParsers = () => {
  parsers ??= Promise.all([import('mailparser'), import('html-to-text')]);
  return parsers;
};

/** One file of a mail, as its sender named and typed it (the type is decided again from the bytes). */
export interface InboundFile {
  filename: string | undefined;
  content: Buffer;
  /** An image the HTML body shows inline (`cid:`), rather than a file attached to the mail. */
  inline: boolean;
}

/** What the helpdesk needs of a raw RFC 5322 message, decoded (charsets, transfer encodings, RFC 2047). */
export interface InboundMail {
  /** `<id@host>` as sent (bounded), or `sha256:<hex>` of the raw message when it has none. */
  key: string;
  from: { address: string; name: string } | null;
  /** To, Cc and the delivery headers a mail server adds (Delivered-To, X-Original-To, Envelope-To). */
  recipients: string[];
  subject: string;
  /** In-Reply-To first, then References from the newest back. */
  threadIds: string[];
  /** The body as plain text: the text part when there is one, else the HTML turned into text. */
  text: string;
  /** Whether `text` came from HTML. */
  fromHtml: boolean;
  files: InboundFile[];
  /** Header facts the loop and noise rules look at (lower-cased names). */
  headers: {
    autoSubmitted: string | null;
    precedence: string | null;
    autoReply: boolean;
    returnPath: string | null;
    failedRecipients: boolean;
    contentType: string | null;
    reportType: string | null;
  };
}

/** Text taken from HTML: at most this many characters are read, whatever the part's size. */
const HTML_INPUT_LIMIT = 2_000_000;
const MESSAGE_ID_MAX = 500;

function addresses(value: AddressObject | AddressObject[] | undefined): { address: string; name: string }[] {
  if (!value) return [];
  const list = Array.isArray(value) ? value : [value];
  const out: { address: string; name: string }[] = [];
  const walk = (items: AddressObject['value']) => {
    for (const a of items) {
      if (a.group) walk(a.group);
      else if (a.address) out.push({ address: a.address.trim().toLowerCase(), name: (a.name ?? '').trim() });
    }
  };
  for (const v of list) walk(v.value);
  return out;
}

function headerString(value: HeaderValue | undefined): string | null {
  if (value === undefined || value === null) return null;
  if (typeof value === 'string') return value.trim();
  if (Array.isArray(value)) return value.length ? headerString(value[0] as HeaderValue) : null;
  if (value instanceof Date) return value.toISOString();
  if (typeof value === 'object' && 'value' in value) {
    const v = (value as { value: unknown }).value;
    if (typeof v === 'string') return v.trim();
    if (Array.isArray(v)) return v.map((a: { address?: string }) => a.address ?? '').join(',');
  }
  if (typeof value === 'object' && 'text' in value) return String((value as { text: unknown }).text).trim();
  return null;
}

const ID = /<[^<>\s]{1,998}>/g;

/** The message ids named in In-Reply-To / References, bounded and de-duplicated. */
function idsOf(value: string | string[] | undefined): string[] {
  if (!value) return [];
  const joined = Array.isArray(value) ? value.join(' ') : value;
  return [...joined.matchAll(ID)].map((m) => m[0]);
}

/** HTML turned into readable text: no scripts, styles or images; links keep their address; quotes get `>`. */
export async function htmlToText(html: string): Promise<string> {
  const [, { convert }] = await loadParsers();
  return convert(html, {
    wordwrap: false,
    limits: { maxInputLength: HTML_INPUT_LIMIT },
    selectors: [
      { selector: 'img', format: 'skip' },
      { selector: 'a', options: { hideLinkHrefIfSameAsText: true } },
      { selector: 'table', format: 'dataTable' },
    ],
  });
}

/**
 * Parses a raw message with mailparser (a maintained MIME parser: charsets through iconv-lite,
 * quoted-printable/base64, RFC 2047 subjects and RFC 2231 filenames, nested multiparts, TNEF-free).
 * multipart/alternative: the text part is preferred; an HTML-only mail is turned into text here.
 */
export async function parseInboundMail(raw: Buffer): Promise<InboundMail> {
  const [{ simpleParser }] = await loadParsers();
  const parsed = await simpleParser(raw, {
    skipHtmlToText: true,
    skipTextToHtml: true,
    skipTextLinks: true,
    skipImageLinks: true,
  });
  const h = parsed.headers;
  const from = addresses(parsed.from)[0] ?? null;
  const recipients = new Set<string>();
  for (const list of [parsed.to, parsed.cc]) for (const a of addresses(list)) recipients.add(a.address);
  for (const name of ['delivered-to', 'x-original-to', 'envelope-to', 'x-envelope-to']) {
    const v = h.get(name);
    const found =
      v && typeof v === 'object' && 'value' in v && Array.isArray((v as AddressObject).value)
        ? addresses(v as AddressObject).map((a) => a.address)
        : (headerString(v) ?? '').split(/[\s,]+/).filter((s) => s.includes('@'));
    for (const a of found) recipients.add(a.replace(/^<|>$/g, '').toLowerCase());
  }

  const rawId = parsed.messageId?.trim();
  const key =
    rawId && /^<[^<>\s]+>$/.test(rawId) && rawId.length <= MESSAGE_ID_MAX
      ? rawId
      : `sha256:${createHash('sha256')
          .update(rawId ?? raw)
          .digest('hex')}`;

  const threadIds = [
    ...new Set([...idsOf(parsed.inReplyTo), ...idsOf(parsed.references as string | string[]).reverse()]),
  ].slice(0, 100);

  const plain = typeof parsed.text === 'string' ? parsed.text : '';
  const html = typeof parsed.html === 'string' ? parsed.html : '';
  const fromHtml = plain.trim() === '' && html.trim() !== '';
  const text = fromHtml ? await htmlToText(html) : plain;

  const contentType = h.get('content-type') as
    | { value?: string; params?: Record<string, string> }
    | undefined;
  const returnPathHeader = h.get('return-path');
  const returnPath =
    returnPathHeader === undefined
      ? null
      : typeof returnPathHeader === 'object' && returnPathHeader !== null && 'value' in returnPathHeader
        ? (addresses(returnPathHeader as AddressObject)[0]?.address ?? '')
        : (headerString(returnPathHeader) ?? '').replace(/^<|>$/g, '').trim().toLowerCase();

  return {
    key,
    from,
    recipients: [...recipients],
    subject: parsed.subject ?? '',
    threadIds,
    text,
    fromHtml,
    files: parsed.attachments.map((a) => ({
      filename: a.filename,
      content: a.content,
      inline: a.related === true || (a.contentDisposition === 'inline' && Boolean(a.cid)),
    })),
    headers: {
      autoSubmitted: headerString(h.get('auto-submitted')),
      precedence: headerString(h.get('precedence')),
      autoReply: ['x-autoreply', 'x-autorespond', 'x-autoresponder'].some((n) => h.has(n)),
      returnPath,
      failedRecipients: h.has('x-failed-recipients'),
      contentType: contentType?.value?.toLowerCase() ?? null,
      reportType: contentType?.params?.['report-type']?.toLowerCase() ?? null,
    },
  };
}

export type IgnoreReason = 'auto_submitted' | 'bulk' | 'auto_reply' | 'bounce' | 'own_address' | 'no_sender';

/**
 * Why a mail must not become a ticket or comment, or null. Answering robots is how mail loops start:
 * RFC 3834 Auto-Submitted (anything but "no"), Precedence bulk/junk/auto_reply, the X-Autoreply family,
 * bounces (null Return-Path, MAILER-DAEMON/postmaster, multipart/report delivery status, X-Failed-Recipients)
 * and mail from our own addresses.
 */
export function ignoreReason(
  mail: InboundMail,
  ownAddresses: (address: string) => boolean,
): IgnoreReason | null {
  const { headers: h } = mail;
  if (
    h.returnPath === '' ||
    h.failedRecipients ||
    (h.contentType === 'multipart/report' && h.reportType === 'delivery-status')
  )
    return 'bounce';
  const local = mail.from?.address.split('@')[0] ?? '';
  if (/^(mailer-daemon|postmaster)$/i.test(local)) return 'bounce';
  if (!mail.from || !/^[^@\s]+@[^@\s]+$/.test(mail.from.address)) return 'no_sender';
  if (ownAddresses(mail.from.address)) return 'own_address';
  const auto = h.autoSubmitted?.split(';')[0]?.trim().toLowerCase();
  if (auto && auto !== 'no') return 'auto_submitted';
  if (h.autoReply) return 'auto_reply';
  const precedence = h.precedence?.trim().toLowerCase();
  if (precedence === 'bulk' || precedence === 'junk' || precedence === 'auto_reply') return 'bulk';
  return null;
}
