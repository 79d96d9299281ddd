import { randomUUID } from 'node:crypto';
import type { Database, Executor } from '../../db/client.js';
import type { WebhookDeliveryRow, WebhookRow } from '../../db/schema/index.js';
import type { Clock } from '../../lib/clock.js';
import type { CursorCodec } from '../../lib/cursor.js';
import { NotFoundError, ValidationError } from '../../lib/errors.js';
import { createdAtKeyset, keysetPage } from '../../lib/keyset.js';
import { refuseTarget } from '../../lib/outbound-http.js';
import type { AuditService } from '../audit/audit.service.js';
import type { AuthedContext } from '../auth/actor.js';
import { assertCan } from '../auth/permissions.js';
import type { SecretBox } from './webhook-secrets.js';
import { newWebhookSecret } from './webhook-secrets.js';
import type { WebhooksRepository } from './webhooks.repository.js';
import {
  type CreateWebhookInput,
  type DeliveryDto,
  type PatchWebhookInput,
  PING_EVENT,
  type WebhookDto,
} from './webhooks.schemas.js';

/** The slice of the job queue webhooks need: enqueue in the caller's transaction. */
export interface JobEnqueuer {
  enqueue(
    ex: Executor,
    kind: string,
    payload: object,
    opts?: { runAt?: Date; maxAttempts?: number; jobKey?: string; queue?: string },
  ): Promise<string>;
}

export const DELIVER_JOB = 'webhooks.deliver';

/** How long the previous secret keeps signing after a rotation. */
export const ROTATION_OVERLAP_MS = 24 * 3600_000;

export interface WebhooksServiceDeps {
  db: Database;
  webhooks: WebhooksRepository;
  audit: AuditService;
  jobs: JobEnqueuer;
  secrets: SecretBox;
  cursor: CursorCodec;
  clock: Clock;
  allowPrivateNetworks: boolean;
  requireHttps: boolean;
  lookup?: import('node:net').LookupFunction;
}

export function webhookNotFound(id: string) {
  return new NotFoundError('WEBHOOK_NOT_FOUND', 'Webhook not found', `Webhook ${id} does not exist.`);
}

export function toWebhookDto(row: WebhookRow): WebhookDto {
  return {
    id: row.id,
    url: row.url,
    events: row.events,
    description: row.description,
    active: row.active,
    disabledReason: row.disabledReason,
    createdAt: row.createdAt,
    updatedAt: row.updatedAt,
  };
}

export function toDeliveryDto(row: WebhookDeliveryRow): DeliveryDto {
  return {
    id: row.id,
    eventId: row.eventId,
    eventType: row.eventType,
    status: row.status,
    attempts: row.attempts,
    lastResponseStatus: row.lastResponseStatus,
    lastError: row.lastError,
    nextAttemptAt: row.nextAttemptAt,
    createdAt: row.createdAt,
    updatedAt: row.updatedAt,
  };
}

/** Enqueues the delivery job of one delivery (one job per delivery at a time: the job key). */
export function enqueueDelivery(
  jobs: JobEnqueuer,
  ex: Executor,
  delivery: { id: string; webhookId: string },
  runAt?: Date,
) {
  return jobs.enqueue(
    ex,
    DELIVER_JOB,
    { deliveryId: delivery.id },
    {
      runAt,
      jobKey: `webhook-delivery:${delivery.id}`,
      queue: `webhook:${delivery.webhookId}`,
      maxAttempts: 5,
    },
  );
}

/** Webhook administration (admins only): CRUD, secret rotation, ping, delivery log and redelivery. */
export function createWebhooksService(deps: WebhooksServiceDeps) {
  const { db, webhooks, audit, jobs, secrets, cursor, clock } = deps;

  function page<T extends { sortKey: string; id: string }>(rows: T[], limit: number) {
    const { page: data, nextCursor } = keysetPage(rows, limit, (last) =>
      cursor.encode({ t: last.sortKey, i: last.id }),
    );
    return { data, nextCursor };
  }
  const after = (token: string | undefined) => (token ? createdAtKeyset(cursor.decode(token)) : undefined);

  async function checkUrl(raw: string): Promise<string> {
    const url = new URL(raw);
    if (deps.requireHttps && url.protocol !== 'https:') {
      throw new ValidationError([{ path: 'body.url', message: 'Webhook URLs must use https.' }]);
    }
    if (url.username || url.password) {
      throw new ValidationError([{ path: 'body.url', message: 'Credentials in the URL are not accepted.' }]);
    }
    const refused = await refuseTarget(url, {
      allowPrivateNetworks: deps.allowPrivateNetworks,
      lookup: deps.lookup,
    });
    if (refused) {
      throw new ValidationError(
        [{ path: 'body.url', message: `${refused}: webhooks only reach public addresses.` }],
        'The webhook URL points to a private, loopback, link-local or multicast address.',
      );
    }
    return url.toString();
  }

  async function getRow(ex: Executor, id: string, lock = false) {
    const row = await webhooks.findById(ex, id, { lock });
    if (!row) throw webhookNotFound(id);
    return row;
  }

  return {
    async create(ctx: AuthedContext, input: CreateWebhookInput): Promise<WebhookDto & { secret: string }> {
      assertCan(ctx.actor, 'webhook.manage', { type: 'webhook' });
      const url = await checkUrl(input.url);
      const secret = newWebhookSecret();
      return db.transaction(async (tx) => {
        const row = await webhooks.insert(tx, {
          url,
          events: input.events,
          description: input.description ?? null,
          active: input.active,
          secretEnc: secrets.seal(secret),
          createdBy: ctx.actor.id,
          createdAt: clock.now(),
          updatedAt: clock.now(),
        });
        await audit.record(tx, ctx, {
          action: 'webhook.created',
          entityType: 'webhook',
          entityId: row.id,
          changes: { url: [null, row.url], events: [null, row.events], active: [null, row.active] },
        });
        return { ...toWebhookDto(row), secret };
      });
    },

    async list(ctx: AuthedContext, query: { limit: number; cursor?: string }) {
      assertCan(ctx.actor, 'webhook.manage', { type: 'webhook' });
      const rows = await webhooks.list(db, query.limit + 1, after(query.cursor));
      const p = page(rows, query.limit);
      return { data: p.data.map(toWebhookDto), nextCursor: p.nextCursor };
    },

    async get(ctx: AuthedContext, id: string): Promise<WebhookDto> {
      assertCan(ctx.actor, 'webhook.manage', { type: 'webhook', id });
      return toWebhookDto(await getRow(db, id));
    },

    /** PATCH: `active: true` re-enables a disabled webhook and clears disabledReason and the failure streak. */
    async update(ctx: AuthedContext, id: string, input: PatchWebhookInput): Promise<WebhookDto> {
      assertCan(ctx.actor, 'webhook.manage', { type: 'webhook', id });
      const url = input.url === undefined ? undefined : await checkUrl(input.url);
      return db.transaction(async (tx) => {
        const before = await getRow(tx, id, true);
        const set: Partial<WebhookRow> = {};
        if (url !== undefined && url !== before.url) set.url = url;
        if (input.events !== undefined && input.events.join() !== before.events.join())
          set.events = input.events;
        if (input.description !== undefined && input.description !== before.description)
          set.description = input.description;
        if (input.active !== undefined && input.active !== before.active) set.active = input.active;
        if (input.active === true) {
          if (before.disabledReason !== null) set.disabledReason = null;
          set.failingSince = null;
        }
        const changes: Record<string, [unknown, unknown]> = {};
        for (const [k, v] of Object.entries(set)) {
          if (k !== 'failingSince') changes[k] = [before[k as keyof WebhookRow], v];
        }
        if (Object.keys(changes).length === 0) return toWebhookDto(before);
        const row = await webhooks.update(tx, id, set, clock.now());
        await audit.record(tx, ctx, {
          action: 'webhook.updated',
          entityType: 'webhook',
          entityId: id,
          changes,
        });
        return toWebhookDto(row);
      });
    },

    async remove(ctx: AuthedContext, id: string): Promise<void> {
      assertCan(ctx.actor, 'webhook.manage', { type: 'webhook', id });
      await db.transaction(async (tx) => {
        const before = await getRow(tx, id, true);
        await webhooks.remove(tx, id);
        await audit.record(tx, ctx, {
          action: 'webhook.deleted',
          entityType: 'webhook',
          entityId: id,
          changes: { url: [before.url, null] },
        });
      });
    },

    /** A new secret; the previous one keeps signing beside it for 24 h so receivers can switch without loss. */
    async rotateSecret(ctx: AuthedContext, id: string): Promise<{ secret: string }> {
      assertCan(ctx.actor, 'webhook.manage', { type: 'webhook', id });
      const secret = newWebhookSecret();
      await db.transaction(async (tx) => {
        const before = await getRow(tx, id, true);
        const now = clock.now();
        await webhooks.update(
          tx,
          id,
          {
            secretEnc: secrets.seal(secret),
            previousSecretEnc: before.secretEnc,
            previousSecretExpiresAt: new Date(now.getTime() + ROTATION_OVERLAP_MS),
          },
          now,
        );
        await audit.record(tx, ctx, {
          action: 'webhook.secret_rotated',
          entityType: 'webhook',
          entityId: id,
          metadata: { previousSecretValidUntil: new Date(now.getTime() + ROTATION_OVERLAP_MS).toISOString() },
        });
      });
      return { secret };
    },

    /** Sends a `webhook.ping` event to this webhook alone (active or not), through the delivery log. */
    async ping(ctx: AuthedContext, id: string): Promise<{ deliveryId: string }> {
      assertCan(ctx.actor, 'webhook.manage', { type: 'webhook', id });
      return db.transaction(async (tx) => {
        const hook = await getRow(tx, id);
        const now = clock.now();
        const eventId = `ping_${randomUUID()}`;
        const delivery = await webhooks.insertDelivery(tx, {
          webhookId: hook.id,
          eventId,
          eventType: PING_EVENT,
          payload: {
            type: PING_EVENT,
            timestamp: now.toISOString(),
            data: { webhookId: hook.id, message: 'Ping from the helpdesk: your endpoint is reachable.' },
          },
          nextAttemptAt: now,
          createdAt: now,
          updatedAt: now,
        });
        await enqueueDelivery(jobs, tx, delivery!);
        await audit.record(tx, ctx, {
          action: 'webhook.pinged',
          entityType: 'webhook',
          entityId: id,
          metadata: { deliveryId: delivery!.id },
        });
        return { deliveryId: delivery!.id };
      });
    },

    async listDeliveries(ctx: AuthedContext, id: string, query: { limit: number; cursor?: string }) {
      assertCan(ctx.actor, 'webhook.manage', { type: 'webhook', id });
      await getRow(db, id);
      const rows = await webhooks.listDeliveries(db, id, query.limit + 1, after(query.cursor));
      const p = page(rows, query.limit);
      return { data: p.data.map(toDeliveryDto), nextCursor: p.nextCursor };
    },

    /** Sends the same message (same webhook-id and body) again, now; the attempt count goes on. */
    async redeliver(ctx: AuthedContext, id: string, deliveryId: string): Promise<void> {
      assertCan(ctx.actor, 'webhook.manage', { type: 'webhook', id });
      await db.transaction(async (tx) => {
        const delivery = await webhooks.findDelivery(tx, deliveryId, { lock: true });
        if (!delivery || delivery.webhookId !== id) {
          throw new NotFoundError(
            'DELIVERY_NOT_FOUND',
            'Delivery not found',
            `Delivery ${deliveryId} does not exist.`,
          );
        }
        const now = clock.now();
        await webhooks.updateDelivery(tx, deliveryId, { status: 'pending', nextAttemptAt: now }, now);
        await enqueueDelivery(jobs, tx, delivery);
        await audit.record(tx, ctx, {
          action: 'webhook.redelivered',
          entityType: 'webhook',
          entityId: id,
          changes: { status: [delivery.status, 'pending'] },
          metadata: { deliveryId },
        });
      });
    },
  };
}

export type WebhooksService = ReturnType<typeof createWebhooksService>;
