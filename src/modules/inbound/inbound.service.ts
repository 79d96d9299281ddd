import { sql } from 'drizzle-orm';
import type { Database, Executor } from '../../db/client.js';
import { isUniqueViolation } from '../../db/errors.js';
import type { UserRow } from '../../db/schema/index.js';
import { UnprocessableError } from '../../lib/errors.js';
import type { AttachmentService, RefusedFile, StagedFiles } from '../attachments/attachments.service.js';
import type { AuditService } from '../audit/audit.service.js';
import type { AuthedContext, RequestContext } from '../auth/actor.js';
import { isStaff } from '../auth/permissions.js';
import type { CommentService } from '../comments/comments.service.js';
import { deleteInBatches, type Purge } from '../jobs/maintenance.js';
import { headerText, type ReplyAddressCodec, ticketIdFromMessageId } from '../mail/mail-headers.js';
import type { TicketsRepository, TicketView } from '../tickets/tickets.repository.js';
import type { TicketService } from '../tickets/tickets.service.js';
import type { UsersRepository } from '../users/users.repository.js';
import type { UsersService } from '../users/users.service.js';
import type { InboundRepository } from './inbound.repository.js';
import type { InboundResult } from './inbound.schemas.js';
import { type InboundMail, ignoreReason, parseInboundMail } from './inbound-mail.js';
import { boundText, stripQuotedReply, ticketNumberInSubject, titleFromSubject } from './reply-text.js';

/** Comment and description limit (the contract's 20,000 characters). */
const BODY_MAX = 20_000;
const TERMINAL = new Set(['closed', 'cancelled']);

export interface InboundServiceDeps {
  db: Database;
  inbound: InboundRepository;
  users: Pick<UsersRepository, 'findByEmail'>;
  usersService: Pick<UsersService, 'createRequesterWithoutPasswordIn'>;
  tickets: Pick<TicketService, 'createIn'>;
  ticketsRepo: Pick<TicketsRepository, 'findView'>;
  comments: Pick<CommentService, 'createIn'>;
  attachments: Pick<
    AttachmentService,
    'stageWholeFiles' | 'admitStagedIn' | 'attachStagedIn' | 'discardStaged'
  >;
  audit: AuditService;
  replyAddress: ReplyAddressCodec;
  /** Our From address and the base of the signed Reply-To addresses. */
  addresses: { from: string; replyTo: string };
  createRequesters: boolean;
}

/** A ticket the mail may belong to, and what pointed at it. */
interface Route {
  ticket: TicketView;
  via: 'reply_to' | 'in_reply_to' | 'subject';
}

class AlreadyProcessed extends Error {}

const REFUSAL_TEXT: Record<RefusedFile['reason'], string> = {
  too_large: 'larger than the helpdesk accepts',
  type_not_accepted: 'not an accepted file type',
  too_many_files: 'too many files in one email',
  quota_exceeded: "over the sender's daily upload quota",
};

function split(address: string): { local: string; domain: string } {
  const at = address.lastIndexOf('@');
  return { local: address.slice(0, at).toLowerCase(), domain: address.slice(at + 1).toLowerCase() };
}

export function createInboundService(deps: InboundServiceDeps) {
  const { db, inbound, users, usersService, tickets, ticketsRepo, comments, attachments, audit } = deps;
  const mailDomain = split(deps.addresses.from).domain;
  const own = [deps.addresses.from, deps.addresses.replyTo].map(split);

  /** Our From address, the Reply-To base, and their plus-addressed forms: mail from them is ours. */
  function isOwnAddress(address: string): boolean {
    const a = split(address);
    return own.some(
      (o) =>
        a.domain === o.domain && (a.local === o.local || a.local.startsWith(`${o.local.split('+')[0]}+`)),
    );
  }

  /** Whether this person may add a public comment to this ticket (as on the web). */
  const mayReply = (sender: UserRow, t: TicketView) => isStaff(sender.role) || t.requesterId === sender.id;

  async function ticketById(ex: Executor, id: number): Promise<TicketView | null> {
    let t = await ticketsRepo.findView(ex, id);
    // A reply to a merged ticket belongs on the ticket it was merged into.
    for (let hops = 0; t?.mergedIntoId && hops < 5; hops++)
      t = await ticketsRepo.findView(ex, t.mergedIntoId);
    return t && !t.deletedAt ? t : null;
  }

  /**
   * The ticket a reply belongs to: the signed Reply-To address it was sent to, then In-Reply-To/References
   * naming one of our messages, then `[#N]` in the subject. A candidate counts only when the sender may
   * reply to it (its requester, or staff): a stranger's mail never lands on someone else's ticket, whatever
   * its headers or subject say; it becomes a ticket of its own.
   */
  async function routeOf(ex: Executor, mail: InboundMail, sender: UserRow): Promise<Route | null> {
    const candidates: Array<{ id: number; via: Route['via'] }> = [];
    for (const r of mail.recipients) {
      const id = deps.replyAddress.verify(r);
      if (id !== null) candidates.push({ id, via: 'reply_to' });
    }
    for (const messageId of mail.threadIds) {
      const id = ticketIdFromMessageId(messageId, mailDomain);
      if (id !== null) candidates.push({ id, via: 'in_reply_to' });
    }
    const inSubject = ticketNumberInSubject(mail.subject);
    if (inSubject !== null) candidates.push({ id: inSubject, via: 'subject' });
    const seen = new Set<number>();
    for (const c of candidates) {
      if (seen.has(c.id)) continue;
      seen.add(c.id);
      const ticket = await ticketById(ex, c.id);
      if (ticket && mayReply(sender, ticket)) return { ticket, via: c.via };
    }
    return null;
  }

  function refusalNote(refused: readonly RefusedFile[]): string {
    if (refused.length === 0) return '';
    const lines = refused.map((f) => `- ${f.filename}: ${REFUSAL_TEXT[f.reason]}`);
    return `\n\n[Attachments not accepted]\n${lines.join('\n')}`;
  }

  function replay(row: {
    outcome: string;
    reason: string | null;
    ticketId: number | null;
    commentId: string | null;
  }): InboundResult {
    if (row.outcome === 'ignored')
      return { status: 202, body: { action: 'ignored', reason: row.reason as never }, replayed: true };
    return {
      status: 201,
      body: {
        action: row.outcome as 'created' | 'replied',
        ticketId: row.ticketId ?? 0,
        commentId: row.commentId,
      },
      replayed: true,
    };
  }

  /** An ignored mail: its row and its audit event, so "why did my mail not arrive?" has an answer. */
  async function ignore(
    ctx: RequestContext,
    mail: InboundMail,
    reason: Exclude<InboundResult['body'], { action: 'created' | 'replied' }>['reason'],
    sender: UserRow | null,
  ): Promise<InboundResult> {
    try {
      return await db.transaction(async (tx) => {
        const claimed = await inbound.claim(tx, {
          messageId: mail.key,
          fromAddress: mail.from?.address ?? null,
        });
        if (!claimed) throw new AlreadyProcessed();
        await inbound.settle(tx, claimed.id, {
          outcome: 'ignored',
          reason,
          ticketId: null,
          commentId: null,
          senderId: sender?.id ?? null,
        });
        await audit.record(tx, ctx, {
          action: 'inbound_email.ignored',
          entityType: 'inbound_email',
          entityId: claimed.id,
          metadata: { messageId: mail.key, reason, from: mail.from?.address ?? null },
          actor: sender ? { id: sender.id, role: sender.role } : null,
        });
        return { status: 202 as const, body: { action: 'ignored' as const, reason }, replayed: false };
      });
    } catch (err) {
      if (err instanceof AlreadyProcessed) return replay((await inbound.find(db, mail.key))!);
      throw err;
    }
  }

  /** Everything a processed mail does, in one transaction. */
  async function process(
    ctx: RequestContext,
    mail: InboundMail,
    staged: StagedFiles,
  ): Promise<InboundResult> {
    const from = mail.from!;
    return db.transaction(async (tx) => {
      const claimed = await inbound.claim(tx, { messageId: mail.key, fromAddress: from.address });
      if (!claimed) throw new AlreadyProcessed();
      await inbound.lockAddress(tx, from.address);
      const sender =
        (await users.findByEmail(tx, from.address)) ??
        (await usersService.createRequesterWithoutPasswordIn(
          tx,
          ctx,
          { email: from.address, name: headerText(from.name, 100) || from.address.split('@')[0]! },
          'inbound_email',
        ));
      const actx: AuthedContext = {
        ...ctx,
        actor: { id: sender.id, role: sender.role, name: sender.name, email: sender.email },
      };
      await attachments.admitStagedIn(tx, actx.actor, staged);
      const note = refusalNote(staged.refused);
      const stripped = boundText(stripQuotedReply(mail.text), BODY_MAX - note.length);
      const route = await routeOf(tx, mail, sender);
      const metadata = { channel: 'email', messageId: mail.key, inboundId: claimed.id };

      let result: {
        outcome: 'created' | 'replied';
        ticketId: number;
        commentId: string | null;
        reason: string;
      };
      if (route && !TERMINAL.has(route.ticket.status)) {
        const body = `${stripped || '(This email had no text.)'}${note}`;
        const comment = await comments.createIn(
          tx,
          actx,
          route.ticket.id,
          { body, visibility: 'public' },
          metadata,
        );
        await attachments.attachStagedIn(tx, actx, route.ticket.id, comment.id, staged);
        result = { outcome: 'replied', ticketId: route.ticket.id, commentId: comment.id, reason: route.via };
      } else {
        // A reply to a closed ticket starts a new one that names the old one.
        const followUp = route ? route.ticket.id : null;
        const lead = followUp ? `Follow-up to #${followUp} (${route!.ticket.status}).\n\n` : '';
        const description =
          boundText(`${lead}${stripped || '(This email had no text.)'}`, BODY_MAX - note.length) + note;
        const ticket = await tickets.createIn(
          tx,
          actx,
          { title: titleFromSubject(mail.subject), description },
          followUp ? { ...metadata, followUpOf: followUp } : metadata,
        );
        await attachments.attachStagedIn(tx, actx, ticket.id, null, staged);
        result = {
          outcome: 'created',
          ticketId: ticket.id,
          commentId: null,
          reason: followUp ? 'follow_up' : 'new',
        };
      }
      await inbound.settle(tx, claimed.id, { ...result, senderId: sender.id });
      await audit.record(tx, actx, {
        action: 'inbound_email.received',
        entityType: 'inbound_email',
        entityId: claimed.id,
        metadata: {
          messageId: mail.key,
          outcome: result.outcome,
          route: result.reason,
          ticketId: result.ticketId,
          commentId: result.commentId,
          attachments: staged.files.length,
          refused: staged.refused,
          fromHtml: mail.fromHtml,
        },
      });
      return {
        status: 201 as const,
        body: { action: result.outcome, ticketId: result.ticketId, commentId: result.commentId },
        replayed: false,
      };
    });
  }

  return {
    /**
     * POST /inbound/email: one raw RFC 5322 message in. Ignored (202, audited) when it is an auto-reply,
     * bulk mail, a bounce, our own, or from a deactivated or (INBOUND_CREATE_REQUESTERS=false) unknown
     * sender. Otherwise, in one transaction: the sender's account (an unknown sender gets a requester
     * account without a password), then a public comment on the ticket it replies to (see routeOf), or a
     * new ticket (also when the ticket it replies to is closed: a follow-up that names it), with its
     * attachments through the upload checks. The Message-ID is claimed in the same transaction: the same
     * mail twice is processed once and the second delivery gets the first one's answer.
     */
    async receive(ctx: RequestContext, raw: Buffer): Promise<InboundResult> {
      let mail: InboundMail;
      try {
        mail = await parseInboundMail(raw);
      } catch {
        throw new UnprocessableError('INVALID_MESSAGE', 'The body could not be read as an RFC 5322 message.');
      }
      if (!mail.from && mail.threadIds.length === 0 && mail.text.trim() === '' && mail.subject === '')
        throw new UnprocessableError(
          'INVALID_MESSAGE',
          'The body is not an email: it has no sender, subject or text.',
        );
      const known = await inbound.find(db, mail.key);
      if (known && known.reason !== 'processing') return replay(known);

      const noise = ignoreReason(mail, isOwnAddress);
      if (noise) return ignore(ctx, mail, noise, null);
      const existing = await users.findByEmail(db, mail.from!.address);
      if (existing && !existing.active) return ignore(ctx, mail, 'sender_deactivated', existing);
      if (!existing && !deps.createRequesters) return ignore(ctx, mail, 'unknown_sender', null);

      for (let attempt = 0; ; attempt++) {
        const staged = await attachments.stageWholeFiles(mail.files);
        try {
          return await process(ctx, mail, staged);
        } catch (err) {
          await attachments.discardStaged(staged);
          if (err instanceof AlreadyProcessed) return replay((await inbound.find(db, mail.key))!);
          // The same address signed up on the web in the same moment: run again, it is known now.
          if (attempt === 0 && isUniqueViolation(err, 'users_email_lower_uq')) continue;
          throw err;
        }
      }
    },
  };
}

export type InboundService = ReturnType<typeof createInboundService>;

/**
 * How long a received Message-ID is remembered. Mail servers stop retrying a message after about five days,
 * so a month covers every redelivery of the same mail; older rows only hold the table's size.
 */
export const INBOUND_MESSAGE_RETENTION_DAYS = 30;

/** The maintenance purge of old inbound_messages rows (the Message-ID memory of the idempotency rule). */
export const inboundMessagesPurge: Purge = {
  name: 'inbound-messages',
  run: (db, now) =>
    deleteInBatches(
      db,
      'inbound_messages',
      sql`received_at < ${new Date(now.getTime() - INBOUND_MESSAGE_RETENTION_DAYS * 86_400_000)}`,
    ),
};
