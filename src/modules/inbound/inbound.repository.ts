import { and, eq, sql } from 'drizzle-orm';
import type { Executor } from '../../db/client.js';
import { type InboundMessageRow, inboundMessages, mailDeliveries } from '../../db/schema/index.js';

export type InboundOutcome = 'created' | 'replied' | 'ignored';

/** inbound_messages (one row per Message-ID) and the outbound delivery records replies are matched to. */
export function createInboundRepository() {
  return {
    async find(ex: Executor, messageId: string): Promise<InboundMessageRow | undefined> {
      const [row] = await ex.select().from(inboundMessages).where(eq(inboundMessages.messageId, messageId));
      return row;
    },

    /**
     * Claims a Message-ID for this transaction: inserts its row, or returns null when another delivery
     * of the same message has it (a concurrent one waits here until that one commits or rolls back).
     */
    async claim(
      tx: Executor,
      values: { messageId: string; fromAddress: string | null },
    ): Promise<{ id: string } | null> {
      const [row] = await tx
        .insert(inboundMessages)
        .values({ ...values, outcome: 'ignored', reason: 'processing' })
        .onConflictDoNothing({ target: inboundMessages.messageId })
        .returning({ id: inboundMessages.id });
      return row ?? null;
    },

    async settle(
      tx: Executor,
      id: string,
      values: {
        outcome: InboundOutcome;
        reason: string | null;
        ticketId: number | null;
        commentId: string | null;
        senderId: string | null;
      },
    ): Promise<void> {
      await tx.update(inboundMessages).set(values).where(eq(inboundMessages.id, id));
    },

    /** Whether we sent a message with this Message-ID about this ticket (mail_deliveries). */
    async sentAbout(ex: Executor, messageId: string, ticketId: number): Promise<boolean> {
      const [row] = await ex
        .select({ one: sql<number>`1` })
        .from(mailDeliveries)
        .where(and(eq(mailDeliveries.messageId, messageId), eq(mailDeliveries.ticketId, ticketId)))
        .limit(1);
      return row !== undefined;
    },

    /** Serializes account creation for one address within concurrent deliveries. */
    async lockAddress(tx: Executor, address: string): Promise<void> {
      await tx.execute(sql`SELECT pg_advisory_xact_lock(hashtext(${`inbound-sender:${address}`}))`);
    },
  };
}

export type InboundRepository = ReturnType<typeof createInboundRepository>;
