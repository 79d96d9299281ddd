import { and, desc, eq, getTableColumns, sql } from 'drizzle-orm';
import type { Executor } from '../../db/client.js';
import { compile, queryBuilder, runCompiled } from '../../db/compiled.js';
import { afterCreatedAt, createdAtSortKey } from '../../db/keyset.js';
import {
  type WebhookDeliveryRow,
  type WebhookRow,
  webhookDeliveries,
  webhooks,
} from '../../db/schema/index.js';
import type { CreatedAtKeyset } from '../../lib/keyset.js';

/** Built once: every change's transaction asks it (drizzle building it cost more than running it). */
const anyActiveQuery = compile<{ eventType: string }>(
  queryBuilder
    .select({ id: webhooks.id })
    .from(webhooks)
    .where(
      and(
        eq(webhooks.active, true),
        sql`${webhooks.events} && ARRAY['*', ${sql.placeholder('eventType')}]::text[]`,
      ),
    )
    .limit(1),
);

export function createWebhooksRepository() {
  return {
    async insert(ex: Executor, values: typeof webhooks.$inferInsert): Promise<WebhookRow> {
      const [row] = await ex.insert(webhooks).values(values).returning();
      return row!;
    },
    async findById(ex: Executor, id: string, opts: { lock?: boolean } = {}): Promise<WebhookRow | undefined> {
      const q = ex.select().from(webhooks).where(eq(webhooks.id, id)).limit(1);
      const [row] = opts.lock ? await q.for('update') : await q;
      return row;
    },
    /** Newest first. */
    async list(
      ex: Executor,
      limit: number,
      after?: CreatedAtKeyset,
    ): Promise<(WebhookRow & { sortKey: string })[]> {
      return ex
        .select({ ...getTableColumns(webhooks), sortKey: createdAtSortKey(webhooks.createdAt) })
        .from(webhooks)
        .where(after ? afterCreatedAt(webhooks.createdAt, webhooks.id, after, true) : undefined)
        .orderBy(desc(webhooks.createdAt), desc(webhooks.id))
        .limit(limit);
    },
    async update(
      ex: Executor,
      id: string,
      set: Partial<typeof webhooks.$inferInsert>,
      now: Date,
    ): Promise<WebhookRow> {
      const [row] = await ex
        .update(webhooks)
        .set({ ...set, updatedAt: now })
        .where(eq(webhooks.id, id))
        .returning();
      return row!;
    },
    async remove(ex: Executor, id: string): Promise<void> {
      await ex.delete(webhooks).where(eq(webhooks.id, id));
    },
    /** Does any active webhook want this event type? (Cheap: asked inside every change's transaction.) */
    async anyActiveFor(ex: Executor, eventType: string): Promise<boolean> {
      const rows = await runCompiled(ex, anyActiveQuery, { eventType });
      return rows.length > 0;
    },
    /** Of these event types, those some active webhook wants: one query for a whole batch of events. */
    async wantedTypes(ex: Executor, eventTypes: string[]): Promise<Set<string>> {
      const { rows } = await ex.execute<{ type: string }>(sql`
        SELECT t.type FROM unnest(${sql.param(eventTypes)}::text[]) AS t(type)
         WHERE EXISTS (SELECT 1 FROM ${webhooks}
                        WHERE ${webhooks.active} AND ${webhooks.events} && ARRAY['*', t.type]::text[])`);
      return new Set(rows.map((r) => r.type));
    },
    async activeFor(ex: Executor, eventType: string): Promise<Pick<WebhookRow, 'id'>[]> {
      return ex
        .select({ id: webhooks.id })
        .from(webhooks)
        .where(and(eq(webhooks.active, true), sql`${webhooks.events} && ARRAY['*', ${eventType}]::text[]`));
    },

    /** One delivery per (webhook, event); returns undefined when it already exists. */
    async insertDelivery(
      ex: Executor,
      values: typeof webhookDeliveries.$inferInsert,
    ): Promise<WebhookDeliveryRow | undefined> {
      const [row] = await ex.insert(webhookDeliveries).values(values).onConflictDoNothing().returning();
      return row;
    },
    async findDelivery(ex: Executor, id: string, opts: { lock?: boolean } = {}) {
      const q = ex.select().from(webhookDeliveries).where(eq(webhookDeliveries.id, id)).limit(1);
      const [row] = opts.lock ? await q.for('update') : await q;
      return row;
    },
    async listDeliveries(ex: Executor, webhookId: string, limit: number, after?: CreatedAtKeyset) {
      return ex
        .select({
          ...getTableColumns(webhookDeliveries),
          sortKey: createdAtSortKey(webhookDeliveries.createdAt),
        })
        .from(webhookDeliveries)
        .where(
          and(
            eq(webhookDeliveries.webhookId, webhookId),
            after
              ? afterCreatedAt(webhookDeliveries.createdAt, webhookDeliveries.id, after, true)
              : undefined,
          ),
        )
        .orderBy(desc(webhookDeliveries.createdAt), desc(webhookDeliveries.id))
        .limit(limit);
    },
    async updateDelivery(
      ex: Executor,
      id: string,
      set: Partial<typeof webhookDeliveries.$inferInsert>,
      now: Date,
    ): Promise<void> {
      await ex
        .update(webhookDeliveries)
        .set({ ...set, updatedAt: now })
        .where(eq(webhookDeliveries.id, id));
    },
  };
}

export type WebhooksRepository = ReturnType<typeof createWebhooksRepository>;
