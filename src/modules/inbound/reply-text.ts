import EmailReplyParser from 'email-reply-parser';

/** Text the reply parser reads: its regular expressions are not linear, so its input is bounded. */
const PARSE_MAX_CHARS = 64 * 1024;
const PARSE_MAX_LINE = 1000;

/** Markers the parser does not know that start the quoted original in common clients. */
const EXTRA_QUOTE_MARKERS: RegExp[] = [
  /^-{2,}\s*(Original Message|Forwarded message|Ursprüngliche Nachricht|Message d'origine)\s*-{2,}\s*$/i,
  /^_{20,}\s*$/, // Outlook's rule above "From: … Sent: …"
  /^<div class="gmail_quote">/i,
];

/** Hard-wraps lines longer than `max` (so no line given to the parser is longer than that). */
function wrapLongLines(text: string, max: number): string {
  return text
    .split('\n')
    .map((line) => {
      if (line.length <= max) return line;
      const parts: string[] = [];
      for (let i = 0; i < line.length; i += max) parts.push(line.slice(i, i + max));
      return parts.join('\n');
    })
    .join('\n');
}

/**
 * The new text of a reply: quoted history ("On … wrote:", `>` lines, Outlook's "From: … Sent: …" block,
 * "-----Original Message-----") and signatures (`-- `, "Sent from my iPhone", "Get Outlook for …") cut.
 * The cutting is email-reply-parser's (Crisp's maintained port of GitHub's EmailReplyParser, with quote
 * headers of many languages); this function bounds its input and falls back to the whole text when the
 * cut would leave nothing (a mail that is all quote is better kept than lost).
 */
export function stripQuotedReply(text: string): string {
  const normalized = text.replace(/\r\n?/g, '\n');
  let bounded = wrapLongLines(normalized.slice(0, PARSE_MAX_CHARS), PARSE_MAX_LINE);
  const lines = bounded.split('\n');
  const marker = lines.findIndex((l) => EXTRA_QUOTE_MARKERS.some((re) => re.test(l.trim())));
  if (marker > 0) bounded = lines.slice(0, marker).join('\n');
  const visible = new EmailReplyParser().parseReply(bounded).trim();
  if (visible !== '') return visible;
  return marker > 0 && bounded.trim() !== '' ? bounded.trim() : normalized.trim();
}

const NOTICE = '\n\n[… the rest of this email was cut: it was longer than the helpdesk keeps]';

/**
 * Text safe to store: no NUL or other control characters (PostgreSQL refuses NUL in text; the others
 * only confuse displays), at most `max` characters (the comment and description limit, which also keeps
 * the search vector far below its 1 MiB cap), with a note when it was cut.
 */
export function boundText(text: string, max: number): string {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: removing control characters is the point
  const clean = text.replace(/\r\n?/g, '\n').replace(/[\u0000-\u0008\u000b-\u001f\u007f]/g, '');
  const trimmed = clean.replace(/[ \t]+$/gm, '').trim();
  if (trimmed.length <= max) return trimmed;
  let cut = max - NOTICE.length;
  // Never split a surrogate pair.
  if (/[\ud800-\udbff]/.test(trimmed[cut - 1] ?? '')) cut -= 1;
  return `${trimmed.slice(0, cut).trimEnd()}${NOTICE}`;
}

/** `[#42]` anywhere in a subject → 42 (the first one), else null. */
export function ticketNumberInSubject(subject: string): number | null {
  const m = /\[#(\d{1,10})\]/.exec(subject);
  if (!m) return null;
  const id = Number(m[1]);
  return id >= 1 && id <= 2_147_483_647 ? id : null;
}

/**
 * A ticket title from a subject: reply/forward prefixes (Re:, Fwd:, AW:, SV:, …) and our `[#N]` tag
 * removed, whitespace and control characters collapsed, at most `max` characters.
 */
export function titleFromSubject(subject: string, max = 200): string {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: removing control characters is the point
  let s = subject.replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029]+/g, ' ');
  s = s.replace(/\[#\d{1,10}\]/g, ' ');
  const prefix = /^\s*(re|fw|fwd|aw|wg|sv|vs|antw|rif|tr|ref|odp|res)\s*(\[\d+\])?\s*:\s*/i;
  while (prefix.test(s)) s = s.replace(prefix, '');
  s = s.replace(/\s{2,}/g, ' ').trim();
  if (s === '') return '(no subject)';
  return s.length > max ? `${s.slice(0, max - 1)}…` : s;
}
