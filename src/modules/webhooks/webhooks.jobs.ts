import type { Database, Executor } from '../../db/client.js';
import type { Clock } from '../../lib/clock.js';
import { type OutboundClient, OutboundError, type OutboundResponse } from '../../lib/outbound-http.js';
import type { SecretBox } from './webhook-secrets.js';
import { signedHeaders } from './webhook-secrets.js';
import type { WebhooksRepository } from './webhooks.repository.js';
import { PING_EVENT } from './webhooks.schemas.js';
import { DELIVER_JOB, enqueueDelivery, type JobEnqueuer } from './webhooks.service.js';

export const FANOUT_JOB = 'webhooks.fanout';
/** The fan-out of a batch of events (one SLA breach pass's thousands) in one job. */
export const FANOUT_BATCH_JOB = 'webhooks.fanout_batch';

/** The contract's retry schedule: after 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h; then the delivery failed. */
export const DEFAULT_RETRY_SCHEDULE = '5s,5m,30m,2h,5h,10h,10h';
/** A webhook whose every delivery failed for this long is disabled. */
export const FAILING_DISABLE_MS = 5 * 86_400_000;

/** `5s,5m,30m,2h` → milliseconds; throws on anything else. */
export function parseRetrySchedule(text: string): number[] {
  const unit = { s: 1000, m: 60_000, h: 3_600_000 } as const;
  return text.split(',').map((part) => {
    const m = /^\s*(\d{1,6})([smh])\s*$/.exec(part);
    if (!m) throw new Error(`"${part}" is not a duration like 5s, 5m or 2h`);
    return Number(m[1]) * unit[m[2] as keyof typeof unit];
  });
}

/** What webhooks receive of a change: the event as staff see it. */
export interface WebhookEvent {
  id: string;
  type: string;
  occurredAt: Date | string;
  [key: string]: unknown;
}

interface Logger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
}

export interface WebhookDeliveryDeps {
  db: Database;
  webhooks: WebhooksRepository;
  jobs: JobEnqueuer;
  secrets: SecretBox;
  outbound: OutboundClient;
  clock: Clock;
  /** Delays before each retry, in ms. */
  retrySchedule: number[];
  log: Logger;
}

type Outcome = { kind: 'response'; res: OutboundResponse } | { kind: 'error'; error: OutboundError | Error };

/**
 * Deliveries: a change event fans out to one delivery per matching active webhook (one job, outside the
 * writer's transaction), and each delivery is attempted by its own job. Every attempt sends the same body and
 * `webhook-id`; the retry schedule is ours (each retry is a job scheduled for its time), so the queue's own
 * retries only cover failures of the database itself.
 */
export function createWebhookDelivery(deps: WebhookDeliveryDeps) {
  const { db, webhooks, jobs, secrets, outbound, clock, retrySchedule, log } = deps;

  async function attempt(deliveryId: string): Promise<void> {
    const delivery = await webhooks.findDelivery(db, deliveryId);
    if (delivery?.status !== 'pending') return;
    const hook = await webhooks.findById(db, delivery.webhookId);
    if (!hook) return; // deleted with its deliveries
    const startedAt = clock.now();
    if (!hook.active && delivery.eventType !== PING_EVENT) {
      await webhooks.updateDelivery(
        db,
        delivery.id,
        { status: 'failed', lastError: 'The webhook is disabled.', nextAttemptAt: null },
        startedAt,
      );
      return;
    }

    const body = JSON.stringify(delivery.payload);
    const keys = [secrets.open(hook.secretEnc)];
    if (hook.previousSecretEnc && hook.previousSecretExpiresAt && hook.previousSecretExpiresAt > startedAt) {
      keys.push(secrets.open(hook.previousSecretEnc));
    }
    const headers = signedHeaders(`msg_${delivery.id}`, startedAt, body, keys);
    let outcome: Outcome;
    try {
      outcome = { kind: 'response', res: await outbound.post(new URL(hook.url), body, headers) };
    } catch (err) {
      outcome = { kind: 'error', error: err as Error };
    }

    const now = clock.now();
    const attempts = delivery.attempts + 1;
    await db.transaction(async (tx) => {
      const current = await webhooks.findDelivery(tx, delivery.id, { lock: true });
      if (!current) return;
      const status = outcome.kind === 'response' ? outcome.res.status : null;
      if (status !== null && status >= 200 && status < 300) {
        await webhooks.updateDelivery(
          tx,
          delivery.id,
          { status: 'succeeded', attempts, lastResponseStatus: status, lastError: null, nextAttemptAt: null },
          now,
        );
        if (hook.failingSince) await webhooks.update(tx, hook.id, { failingSince: null }, now);
        log.info({ deliveryId: delivery.id, webhookId: hook.id, status, attempts }, 'webhook delivered');
        return;
      }

      const lastError =
        outcome.kind === 'error'
          ? outcome.error.message
          : `HTTP ${status}: ${outcome.res.body || '(empty body)'}`;
      const blocked =
        outcome.kind === 'error' &&
        outcome.error instanceof OutboundError &&
        outcome.error.kind === 'blocked';
      const gone = status === 410;
      const retryIn = blocked || gone ? undefined : retrySchedule[attempts - 1];
      const nextAttemptAt = retryIn === undefined ? null : new Date(now.getTime() + retryIn);
      await webhooks.updateDelivery(
        tx,
        delivery.id,
        {
          status: nextAttemptAt ? 'pending' : 'failed',
          attempts,
          lastResponseStatus: status,
          lastError: lastError.slice(0, 1100),
          nextAttemptAt,
        },
        now,
      );
      if (nextAttemptAt) await enqueueDelivery(jobs, tx, delivery, nextAttemptAt);

      const failingSince = hook.failingSince ?? now;
      let disabledReason: string | null = null;
      if (gone) disabledReason = 'The endpoint answered 410 Gone.';
      else if (now.getTime() - failingSince.getTime() >= FAILING_DISABLE_MS)
        disabledReason = 'Every delivery failed for 5 days.';
      if (disabledReason && hook.active) {
        await webhooks.update(tx, hook.id, { active: false, disabledReason, failingSince }, now);
      } else if (!hook.failingSince) {
        await webhooks.update(tx, hook.id, { failingSince }, now);
      }
      log.warn(
        {
          deliveryId: delivery.id,
          webhookId: hook.id,
          status,
          attempts,
          retryAt: nextAttemptAt,
          disabled: !!disabledReason,
        },
        'webhook delivery failed',
      );
    });
  }

  /** One delivery per active webhook that wants the event; the same event twice adds nothing. */
  async function fanout(event: WebhookEvent): Promise<number> {
    return fanoutMany([event]);
  }

  /** fanout() of several events in one transaction, the webhooks of each event type looked up once. */
  async function fanoutMany(events: WebhookEvent[]): Promise<number> {
    return db.transaction(async (tx) => {
      const now = clock.now();
      const hooksOf = new Map<string, Array<{ id: string }>>();
      let n = 0;
      for (const event of events) {
        const occurredAt = new Date(event.occurredAt);
        let hooks = hooksOf.get(event.type);
        if (!hooks) {
          hooks = await webhooks.activeFor(tx, event.type);
          hooksOf.set(event.type, hooks);
        }
        for (const hook of hooks) {
          const delivery = await webhooks.insertDelivery(tx, {
            webhookId: hook.id,
            eventId: event.id,
            eventType: event.type,
            payload: { type: event.type, timestamp: occurredAt.toISOString(), data: event },
            nextAttemptAt: now,
            createdAt: now,
            updatedAt: now,
          });
          if (delivery) {
            await enqueueDelivery(jobs, tx, delivery);
            n++;
          }
        }
      }
      return n;
    });
  }

  return {
    /**
     * In the writer's transaction: one small job when some active webhook wants this event. `wanted`: the
     * answer when the caller already has it (the change feed asks while inserting the event).
     */
    async onRecorded(ex: Executor, event: WebhookEvent, wanted?: boolean): Promise<void> {
      if (wanted ?? (await webhooks.anyActiveFor(ex, event.type))) {
        await jobs.enqueue(ex, FANOUT_JOB, { event }, { jobKey: `webhook-fanout:${event.id}` });
      }
    },

    /**
     * onRecorded for a batch of events: one lookup of the wanted event types and one fan-out job for the
     * events some webhook wants (deliveries stay one per webhook and event).
     */
    async onRecordedMany(ex: Executor, events: WebhookEvent[]): Promise<void> {
      if (events.length === 0) return;
      const wanted = await webhooks.wantedTypes(ex, [...new Set(events.map((e) => e.type))]);
      const fanned = events.filter((e) => wanted.has(e.type));
      if (fanned.length === 0) return;
      await jobs.enqueue(
        ex,
        FANOUT_BATCH_JOB,
        { events: fanned },
        { jobKey: `webhook-fanout:${fanned[0]!.id}+${fanned.length}` },
      );
    },

    fanout,
    fanoutMany,
    attempt,

    /** The job kinds this module runs. */
    jobs() {
      return [
        {
          kind: FANOUT_JOB,
          maxAttempts: 10,
          handler: async (payload: { event: WebhookEvent }) => {
            await fanout(payload.event);
          },
        },
        {
          kind: FANOUT_BATCH_JOB,
          maxAttempts: 10,
          handler: async (payload: { events: WebhookEvent[] }) => ({
            deliveries: await fanoutMany(payload.events),
          }),
        },
        {
          kind: DELIVER_JOB,
          maxAttempts: 5,
          handler: async (payload: { deliveryId: string }) => {
            await attempt(payload.deliveryId);
          },
        },
      ];
    },
  };
}

export type WebhookDelivery = ReturnType<typeof createWebhookDelivery>;
