import { createHash, randomBytes } from 'node:crypto';
import type { Database } from '../../db/client.js';
import type { Clock } from '../../lib/clock.js';
import type { CommentsRepository } from '../comments/comments.repository.js';
import { type JobContext, type JobDefinition, PermanentJobError } from '../jobs/job-definition.js';
import type { JobsService } from '../jobs/jobs.service.js';
import type { TicketsRepository } from '../tickets/tickets.repository.js';
import type { UsersRepository } from '../users/users.repository.js';
import type { MailRepository } from './mail.repository.js';
import {
  mailDomain,
  type ReplyAddressCodec,
  standaloneMessageId,
  ticketMessageId,
  ticketThreadId,
} from './mail-headers.js';
import { type NotificationKind, renderNotification, renderPasswordReset } from './mail-templates.js';
import { type MailTransport, type OutgoingMail, PermanentMailError } from './mail-transport.js';
import { type NotificationEvent, notificationRecipients } from './notification-rules.js';

export const MAIL_NOTIFY = 'mail.notify';
/** Several `mail.notify` payloads in one job (a batch of change events, e.g. one SLA breach pass). */
export const MAIL_NOTIFY_BATCH = 'mail.notify_batch';
export const MAIL_SEND = 'mail.send';
export const MAIL_PASSWORD_RESET = 'mail.password_reset';

/** A reset link works this long after the mail is issued. */
export const RESET_TOKEN_TTL_MS = 30 * 60 * 1000;

export interface NotifyPayload {
  /** The change event's id: with the recipient, the key of each mail's Message-ID. */
  eventId: string;
  event: NotificationEvent;
}

export interface SendPayload {
  kind: NotificationKind | 'passwordReset';
  ticketId: number | null;
  recipientUserId: string | null;
  mail: OutgoingMail;
}

export type PasswordResetPayload = { emailKey: string } | { userId: string };

export interface MailSettings {
  from: { name: string; address: string };
  publicAppUrl: string;
}

export interface MailJobDeps {
  db: Database;
  jobs: Pick<JobsService, 'enqueue'>;
  mail: MailRepository;
  tickets: Pick<TicketsRepository, 'findView'>;
  comments: Pick<CommentsRepository, 'findView'>;
  users: Pick<UsersRepository, 'findById' | 'findByEmail'>;
  transport: MailTransport;
  replyAddress: ReplyAddressCodec;
  settings: MailSettings;
  clock: Clock;
}

/** SHA-256 of a reset token: only the hash is stored. */
export function hashResetToken(token: string): string {
  return createHash('sha256').update(token).digest('hex');
}

/**
 * The mail job kinds:
 * - `mail.notify` (one per change event): decides the recipients (notification rules, with today's
 *   users, preferences and permissions) and, on its first attempt, sends their mails itself; a message it
 *   cannot send (and every later one) becomes a `mail.send` job keyed by its Message-ID, as do all of them
 *   on a retry;
 * - `mail.send`: hands one message to the transport, at most once: a message whose Message-ID is in
 *   mail_deliveries is never sent again (neither path sends it); a permanent SMTP refusal fails the job at
 *   once with the reason;
 * - `mail.password_reset`: issues a reset token (stored hashed) and mails the link. The token exists only
 *   in the mail, never in the job's payload.
 */
export function createMailJobs(deps: MailJobDeps): JobDefinition[] {
  const { db, jobs, mail, tickets, comments, users, transport, replyAddress, settings, clock } = deps;
  const domain = mailDomain(settings.from.address);
  const ticketUrl = (id: number) => `${settings.publicAppUrl}/tickets/${id}`;
  const autoHeaders = {
    'Auto-Submitted': 'auto-generated',
    // Asks Exchange/Outlook not to answer with out-of-office replies.
    'X-Auto-Response-Suppress': 'All',
  };

  /** Hands the message to the transport and records it as delivered (the key that stops a second send). */
  async function sendAndRecord(payload: SendPayload): Promise<string> {
    const { response } = await transport.send(payload.mail);
    await mail.recordDelivery(db, {
      messageId: payload.mail.messageId,
      kind: payload.kind,
      ticketId: payload.ticketId,
      recipientUserId: payload.recipientUserId,
      response: response.slice(0, 1000),
    });
    return response;
  }

  /** One mail.send job per message, keyed by its Message-ID, all or none (mail.send skips what was sent). */
  async function handOff(sends: SendPayload[]): Promise<void> {
    if (sends.length === 0) return;
    await db.transaction(async (tx) => {
      for (const s of sends)
        await jobs.enqueue(tx, MAIL_SEND, s, { jobKey: `mail.send:${s.mail.messageId}` });
    });
  }

  async function deliver(payload: SendPayload, ctx: JobContext) {
    const done = await mail.findDelivery(db, payload.mail.messageId);
    if (done) return { messageId: payload.mail.messageId, alreadySent: true };
    if (payload.recipientUserId) {
      // Deactivated since the mail was queued: never to a deactivated user.
      const user = await users.findById(db, payload.recipientUserId);
      if (!user?.active) return { messageId: payload.mail.messageId, skipped: 'recipient deactivated' };
    }
    let response: string;
    try {
      response = await sendAndRecord(payload);
    } catch (err) {
      if (err instanceof PermanentMailError) throw new PermanentJobError(err.message, { cause: err });
      ctx.log.warn({ err, messageId: payload.mail.messageId }, 'mail not sent; will retry');
      throw err;
    }
    return { messageId: payload.mail.messageId, response };
  }

  /** People and teams read once per job: a batch names the same few teams and agents again and again. */
  type Lookups = {
    teamMembers: Map<string, Promise<string[]>>;
    teamNames: Map<string, Promise<string | null>>;
  };
  const newLookups = (): Lookups => ({ teamMembers: new Map(), teamNames: new Map() });
  function cached<T>(map: Map<string, Promise<T>>, key: string, load: () => Promise<T>): Promise<T> {
    let hit = map.get(key);
    if (!hit) {
      hit = load();
      map.set(key, hit);
    }
    return hit;
  }

  /** One event's recipients: one `mail.send` per recipient, keyed by its Message-ID (event id + person). */
  async function notifyOne(
    { eventId, event }: NotifyPayload,
    lookups: Lookups,
    dispatch: (sends: SendPayload[]) => Promise<Record<string, number>>,
  ) {
    const ticket = await tickets.findView(db, event.ticketId);
    if (!ticket) return { recipients: 0, skipped: 'ticket not found' };
    const comment = event.comment ? await comments.findView(db, event.comment.id) : undefined;
    const teamId = ticket.teamId;
    const teamIds = teamId
      ? await cached(lookups.teamMembers, teamId, () => mail.teamMemberIds(db, teamId))
      : [];
    const ids = new Set<string>([ticket.requesterId, ...teamIds]);
    for (const id of [ticket.assigneeId, event.newAssigneeId, event.comment?.authorId, event.actorId])
      if (id) ids.add(id);
    const people = new Map((await mail.usersWithPreferences(db, [...ids])).map((u) => [u.id, u]));
    const recipients = notificationRecipients(event, ticket, (id) => people.get(id), teamIds);
    if (recipients.length === 0) return { recipients: 0 };

    const actorName = event.actorId ? (people.get(event.actorId)?.name ?? null) : null;
    const teamName =
      teamId && recipients.some((r) => r.kind === 'ticketCreated')
        ? await cached(lookups.teamNames, teamId, () => mail.teamName(db, teamId))
        : null;
    const thread = ticketThreadId(ticket.id, domain);
    const sends: SendPayload[] = recipients.map((r) => {
      const person = people.get(r.userId)!;
      const rendered = renderNotification({
        kind: r.kind,
        recipient: { name: person.name, isRequester: person.id === ticket.requesterId },
        ticket: {
          id: ticket.id,
          title: ticket.title,
          description: ticket.description,
          requesterName: ticket.requesterName,
        },
        ticketUrl: ticketUrl(ticket.id),
        actorName,
        comment: comment
          ? comment.visibility === 'public'
            ? { authorName: comment.authorName, body: comment.body }
            : undefined
          : undefined,
        teamName,
        slaTarget: event.slaTarget ?? null,
        merge: event.merge ? { role: event.merge.role, otherTicketId: event.merge.otherTicketId } : null,
      });
      return {
        kind: r.kind,
        ticketId: ticket.id,
        recipientUserId: person.id,
        mail: {
          messageId: ticketMessageId(ticket.id, `${eventId}:${person.id}`, domain),
          from: settings.from,
          to: { name: person.name, address: person.email },
          replyTo: replyAddress.address(ticket.id),
          subject: rendered.subject,
          text: rendered.text,
          html: rendered.html,
          inReplyTo: thread,
          references: [thread],
          headers: autoHeaders,
        },
      };
    });
    return { recipients: sends.length, ...(await dispatch(sends)) };
  }

  /**
   * The first attempt of a `mail.notify` sends its mails itself (a mail.send job per message costs a job's
   * round trips and a second look-up of what this job just read). What was already delivered is skipped;
   * after the first failure, that message and the rest go to mail.send jobs, which retry (or fail with the
   * reason). A retry hands everything to mail.send: it may follow a hand-off that committed.
   */
  async function sendHere(sends: SendPayload[], ctx: JobContext): Promise<Record<string, number>> {
    if (ctx.attempt > 1) {
      await handOff(sends);
      return { queued: sends.length };
    }
    const delivered = await mail.deliveredIds(
      db,
      sends.map((s) => s.mail.messageId),
    );
    let sent = 0;
    for (let i = 0; i < sends.length; i++) {
      const s = sends[i]!;
      if (delivered.has(s.mail.messageId)) continue;
      try {
        await sendAndRecord(s);
        sent++;
      } catch (err) {
        ctx.log.warn({ err, messageId: s.mail.messageId }, 'mail not sent; handed to mail.send');
        const rest = sends.slice(i).filter((x) => !delivered.has(x.mail.messageId));
        await handOff(rest);
        return { sent, queued: rest.length };
      }
    }
    return { sent };
  }

  const notify: JobDefinition<NotifyPayload> = {
    kind: MAIL_NOTIFY,
    maxAttempts: 10,
    handler: (payload, ctx) => notifyOne(payload, newLookups(), (sends) => sendHere(sends, ctx)),
  };

  // Each event's sends are enqueued with their Message-ID keys, and mail.send skips what was sent: a retry
  // after a failure half-way redoes the batch without mailing anyone twice.
  const notifyBatch: JobDefinition<{ items: NotifyPayload[] }> = {
    kind: MAIL_NOTIFY_BATCH,
    maxAttempts: 10,
    async handler({ items }) {
      const lookups = newLookups();
      let recipients = 0;
      for (const item of items)
        recipients += (
          await notifyOne(item, lookups, async (sends) => {
            await handOff(sends);
            return {};
          })
        ).recipients;
      return { events: items.length, recipients };
    },
  };

  const send: JobDefinition<SendPayload> = {
    kind: MAIL_SEND,
    maxAttempts: 12, // with exponential backoff: retried for about a day before giving up
    handler: deliver,
  };

  const passwordReset: JobDefinition<PasswordResetPayload> = {
    kind: MAIL_PASSWORD_RESET,
    maxAttempts: 8, // a few hours: a reset link that arrives a day late is of no use
    async handler(payload, ctx) {
      const user =
        'userId' in payload
          ? await users.findById(db, payload.userId)
          : await users.findByEmail(db, payload.emailKey);
      // No account, or a deactivated one: nothing is sent (and the requester was told nothing either way).
      if (!user?.active) return { sent: false };
      const messageId = standaloneMessageId('password-reset', ctx.jobId, domain);
      if (await mail.findDelivery(db, messageId)) return { sent: true, alreadySent: true };

      const token = randomBytes(32).toString('base64url');
      const now = clock.now();
      await db.transaction(async (tx) => {
        await mail.pruneTokens(tx, now);
        await mail.replaceJobToken(tx, {
          userId: user.id,
          tokenHash: hashResetToken(token),
          jobId: ctx.jobId,
          expiresAt: new Date(now.getTime() + RESET_TOKEN_TTL_MS),
        });
      });
      const url = `${settings.publicAppUrl}/reset-password?token=${encodeURIComponent(token)}`;
      const rendered = renderPasswordReset({
        name: user.name,
        url,
        validMinutes: RESET_TOKEN_TTL_MS / 60_000,
      });
      await deliver(
        {
          kind: 'passwordReset',
          ticketId: null,
          recipientUserId: user.id,
          mail: {
            messageId,
            from: settings.from,
            to: { name: user.name, address: user.email },
            subject: rendered.subject,
            text: rendered.text,
            html: rendered.html,
            headers: autoHeaders,
          },
        },
        ctx,
      );
      return { sent: true };
    },
  };

  return [notify, notifyBatch, send, passwordReset] as JobDefinition[];
}
