import { createHash, createHmac, timingSafeEqual } from 'node:crypto';

/**
 * Header values built from user content (titles, names) on one line: CR, LF, the Unicode line and
 * paragraph separators and every other control character become a space, so no value can start a new
 * header. nodemailer then encodes non-ASCII text (RFC 2047) and folds long lines itself.
 */
export function headerText(value: string, maxLength = 200): string {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: removing control characters is the point
  const flat = value.replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029]+/g, ' ').replace(/\s{2,}/g, ' ');
  const trimmed = flat.trim();
  return trimmed.length > maxLength ? `${trimmed.slice(0, maxLength - 1)}…` : trimmed;
}

/** `[#42] Printer on fire`: the subject of every mail about a ticket. */
export function ticketSubject(ticketId: number, title: string): string {
  return `[#${ticketId}] ${headerText(title, 180)}`;
}

/** The domain part of an address, lower-cased (the right-hand side of our Message-IDs). */
export function mailDomain(address: string): string {
  const at = address.lastIndexOf('@');
  return (at >= 0 ? address.slice(at + 1) : address).toLowerCase();
}

/**
 * The thread root of a ticket, `<ticket-42@helpdesk.example>`: every mail about the ticket names it in
 * References (and In-Reply-To), so mail clients keep one conversation per ticket.
 */
export function ticketThreadId(ticketId: number, domain: string): string {
  return `<ticket-${ticketId}@${domain}>`;
}

/**
 * The Message-ID of one mail about a ticket, derived from what the mail is for (event + recipient), so
 * a retried job produces the same id and the delivery record catches the duplicate:
 * `<ticket-42.3f9a…@helpdesk.example>`.
 */
export function ticketMessageId(ticketId: number, key: string, domain: string): string {
  const digest = createHash('sha256').update(key).digest('hex').slice(0, 24);
  return `<ticket-${ticketId}.${digest}@${domain}>`;
}

/** A Message-ID for a mail that belongs to no ticket (password reset), from a stable key. */
export function standaloneMessageId(kind: string, key: string, domain: string): string {
  const digest = createHash('sha256').update(`${kind}:${key}`).digest('hex').slice(0, 24);
  return `<${kind}.${digest}@${domain}>`;
}

/**
 * The ticket number named by one of our Message-IDs (`<ticket-42@d>` or `<ticket-42.x@d>`), or null
 * when the id is not ours (another domain or shape). For inbound threading: whether we really sent it
 * can be checked in mail_deliveries.
 */
export function ticketIdFromMessageId(messageId: string, domain: string): number | null {
  const m = /^<?ticket-(\d{1,10})(?:\.[0-9a-f]{24})?@([^>\s]+)>?$/i.exec(messageId.trim());
  if (!m || m[2]!.toLowerCase() !== domain.toLowerCase()) return null;
  const id = Number(m[1]);
  return Number.isSafeInteger(id) && id > 0 && id <= 2_147_483_647 ? id : null;
}

export interface ReplyAddressCodec {
  /** `support+t42.1a2b3c4d5e6f7a8b@helpdesk.example`: replies to it land on ticket #42. */
  address(ticketId: number): string;
  /** The ticket a Reply-To address routes to, or null when it is not ours or its tag does not verify. */
  verify(address: string): number | null;
}

const TAG_HEX = 16; // 64 bits of HMAC: guessing the address of another ticket is out of reach

/**
 * Signed, plus-addressed reply addresses. The tag is an HMAC of the ticket number keyed from a server
 * secret (derived, so the secret itself never appears in a mail), so knowing the address of one ticket
 * tells nothing about another's. Compared case-insensitively: mail systems may change the case.
 */
export function createReplyAddressCodec(secret: string, baseAddress: string): ReplyAddressCodec {
  const key = createHmac('sha256', secret).update('helpdesk mail reply-to v1').digest();
  const at = baseAddress.lastIndexOf('@');
  const local = baseAddress.slice(0, at).split('+')[0]!;
  const domain = baseAddress.slice(at + 1);
  const tagOf = (ticketId: number) =>
    createHmac('sha256', key).update(`t${ticketId}`).digest('hex').slice(0, TAG_HEX);
  return {
    address: (ticketId) => `${local}+t${ticketId}.${tagOf(ticketId)}@${domain}`,
    verify(address) {
      const m = /^\s*<?([^+@\s<>]+)\+t(\d{1,10})\.([0-9a-f]+)@([^@\s<>]+?)>?\s*$/i.exec(address);
      if (!m) return null;
      const [, gotLocal, id, tag, gotDomain] = m;
      if (
        gotLocal!.toLowerCase() !== local.toLowerCase() ||
        gotDomain!.toLowerCase() !== domain.toLowerCase()
      )
        return null;
      const ticketId = Number(id);
      if (!Number.isSafeInteger(ticketId) || ticketId < 1 || ticketId > 2_147_483_647) return null;
      const expected = Buffer.from(tagOf(ticketId));
      const given = Buffer.from(tag!.toLowerCase());
      return given.length === expected.length && timingSafeEqual(given, expected) ? ticketId : null;
    },
  };
}
