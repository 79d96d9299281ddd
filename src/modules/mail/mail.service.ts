import { and, desc, inArray, sql } from 'drizzle-orm';
import type { Database, Executor } from '../../db/client.js';
import { auditEvents } from '../../db/schema/index.js';
import { isTicketEntity } from '../audit/audit.repository.js';
import type { AuditService } from '../audit/audit.service.js';
import type { AuthedContext } from '../auth/actor.js';
import { assertCan } from '../auth/permissions.js';
import type { JobsService } from '../jobs/jobs.service.js';
import { MAIL_NOTIFY, MAIL_NOTIFY_BATCH, type NotifyPayload } from './mail.jobs.js';
import type { MailRepository } from './mail.repository.js';
import type { NotificationEvent, NotificationPreferences } from './notification-rules.js';

/** A recorded change event as the change feed hands it to in-transaction subscribers. */
export interface RecordedChange {
  id: string | number;
  type: string;
  ticketId: number | null;
  actor: { id: string } | null;
  data: Record<string, unknown>;
}

/** The change types that can lead to a mail (the contract's "Who gets what"). */
const MAIL_TYPES = new Set([
  'ticket.created',
  'comment.created',
  'ticket.status_changed',
  'ticket.assigned',
  'ticket.sla_breached',
  'ticket.merged',
]);

const obj = (v: unknown): Record<string, unknown> | null =>
  v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : null;
const str = (v: unknown): string | null => (typeof v === 'string' ? v : null);

export interface MailServiceDeps {
  db: Database;
  mail: MailRepository;
  audit: AuditService;
  jobs: Pick<JobsService, 'enqueue'>;
}

export function createMailService(deps: MailServiceDeps) {
  const { db, mail, audit, jobs } = deps;

  /**
   * The fields a ticket change set, as [old, new]. Taken from the event when it carries them; otherwise
   * from the ticket's audit event written earlier in this same transaction (the ticket row is locked by
   * the change, so the newest ticket change event of this ticket is this change's own).
   */
  async function changedFields(
    ex: Executor,
    ticketId: number,
    data: Record<string, unknown>,
  ): Promise<Record<string, unknown>> {
    const given = obj(data.changes);
    if (given) return given;
    const [row] = await ex
      .select({ changes: auditEvents.changes })
      .from(auditEvents)
      .where(
        and(
          isTicketEntity(String(ticketId)),
          inArray(auditEvents.action, ['ticket.status_changed', 'ticket.assigned']),
        ),
      )
      .orderBy(desc(auditEvents.seq))
      .limit(1);
    return row?.changes ?? {};
  }

  /** The facts of a change that decide its mail, read while its transaction is still open. */
  async function factsOf(ex: Executor, e: RecordedChange): Promise<NotificationEvent | null> {
    if (e.ticketId === null || !MAIL_TYPES.has(e.type)) return null;
    const facts: NotificationEvent = { type: e.type, ticketId: e.ticketId, actorId: e.actor?.id ?? null };
    const ticket = obj(e.data.ticket);
    if (e.type === 'comment.created') {
      const c = obj(e.data.comment);
      const authorId = str(obj(c?.author)?.id) ?? e.actor?.id ?? null;
      const id = str(c?.id);
      // Internal notes mail nobody: no job at all.
      if (!c || !id || !authorId || c.visibility !== 'public') return null;
      facts.comment = { id, authorId, visibility: 'public' };
    } else if (e.type === 'ticket.status_changed' || e.type === 'ticket.assigned') {
      const changes = await changedFields(ex, e.ticketId, e.data);
      const status = Array.isArray(changes.status)
        ? changes.status[1]
        : e.type === 'ticket.status_changed'
          ? ticket?.status
          : undefined;
      facts.newStatus = str(status);
      if (Array.isArray(changes.assigneeId)) {
        facts.assigneeChanged = true;
        facts.newAssigneeId = str(changes.assigneeId[1]);
      } else if (e.type === 'ticket.assigned') {
        facts.assigneeChanged = true;
        facts.newAssigneeId = str(obj(ticket?.assignee)?.id);
      }
      if (facts.newStatus !== 'solved' && !(facts.assigneeChanged && facts.newAssigneeId)) return null;
    } else if (e.type === 'ticket.sla_breached') {
      const target = str(e.data.target) ?? str(e.data.metric);
      facts.slaTarget = target === 'firstResponse' || target === 'resolution' ? target : null;
    } else if (e.type === 'ticket.merged') {
      const sourceId = e.data.sourceId;
      const targetId = e.data.targetId;
      if (typeof sourceId !== 'number' || typeof targetId !== 'number') return null;
      const role = e.ticketId === sourceId ? 'source' : 'target';
      const otherTicketId = role === 'source' ? targetId : sourceId;
      facts.merge = {
        role,
        otherTicketId,
        otherRequesterId: await mail.ticketRequesterId(ex, otherTicketId),
      };
    }
    return facts;
  }

  return {
    /**
     * In-transaction subscriber of the change feed: a change that may mail someone enqueues one
     * `mail.notify` job in the change's own transaction (no change, no mail; no mail lost once it commits).
     * Who is mailed is decided by the job, with the users and preferences of that moment.
     */
    async onChangeRecorded(ex: Executor, event: RecordedChange): Promise<void> {
      const facts = await factsOf(ex, event);
      if (!facts) return;
      const payload: NotifyPayload = { eventId: String(event.id), event: facts };
      await jobs.enqueue(ex, MAIL_NOTIFY, payload);
    },

    /**
     * onChangeRecorded for a batch of events (a breach pass's thousands): the same facts per event, in
     * one `mail.notify_batch` job instead of one `mail.notify` each. Recipients and Message-IDs are still
     * per event, so each event mails each recipient once.
     */
    async onChangesRecorded(ex: Executor, events: RecordedChange[]): Promise<void> {
      const items: NotifyPayload[] = [];
      for (const event of events) {
        const facts = await factsOf(ex, event);
        if (facts) items.push({ eventId: String(event.id), event: facts });
      }
      if (items.length === 1) await jobs.enqueue(ex, MAIL_NOTIFY, items[0]!);
      else if (items.length > 1) await jobs.enqueue(ex, MAIL_NOTIFY_BATCH, { items });
    },

    /** GET /auth/me/notifications: the caller's switches (all on until changed). */
    async getPreferences(ctx: AuthedContext): Promise<NotificationPreferences> {
      assertCan(ctx.actor, 'user.readSelf', { type: 'user', id: ctx.actor.id });
      return mail.getPreferences(db, ctx.actor.id);
    },

    /** PATCH /auth/me/notifications: changes the given switches; audited as user.notifications_updated. */
    async updatePreferences(
      ctx: AuthedContext,
      patch: Partial<NotificationPreferences>,
    ): Promise<NotificationPreferences> {
      assertCan(ctx.actor, 'user.updateSelf', { type: 'user', id: ctx.actor.id });
      return db.transaction(async (tx) => {
        // Serializes concurrent PATCHes of one user so each audit row's old values are true.
        await tx.execute(sql`SELECT pg_advisory_xact_lock(hashtext(${`mail-prefs:${ctx.actor.id}`}))`);
        const before = await mail.getPreferences(tx, ctx.actor.id);
        const after = { ...before, ...patch };
        const changes: Record<string, [unknown, unknown]> = {};
        for (const k of Object.keys(after) as (keyof NotificationPreferences)[])
          if (before[k] !== after[k]) changes[k] = [before[k], after[k]];
        if (Object.keys(changes).length === 0) return before;
        const saved = await mail.upsertPreferences(tx, ctx.actor.id, after);
        await audit.record(tx, ctx, {
          action: 'user.notifications_updated',
          entityType: 'user',
          entityId: ctx.actor.id,
          changes,
        });
        return saved;
      });
    },
  };
}

export type MailService = ReturnType<typeof createMailService>;
