import { and, eq, gt, isNull, lt, or, sql } from 'drizzle-orm';
import type { Executor } from '../../db/client.js';
import { compile, queryBuilder, runCompiled } from '../../db/compiled.js';
import {
  mailDeliveries,
  notificationPreferences,
  type PasswordResetTokenRow,
  passwordResetRequests,
  passwordResetTokens,
  teamMembers,
  teams,
  tickets,
  users,
} from '../../db/schema/index.js';
import { DEFAULT_PREFERENCES, type NotificationPreferences } from './notification-rules.js';

export interface MailUser {
  id: string;
  email: string;
  name: string;
  role: 'requester' | 'agent' | 'admin';
  active: boolean;
  preferences: NotificationPreferences;
}

const prefColumns = {
  ticketCreated: notificationPreferences.ticketCreated,
  publicReply: notificationPreferences.publicReply,
  ticketSolved: notificationPreferences.ticketSolved,
  requesterReply: notificationPreferences.requesterReply,
  assigned: notificationPreferences.assigned,
  slaBreach: notificationPreferences.slaBreach,
};

type MailUserRow = Omit<MailUser, 'preferences'> & Partial<NotificationPreferences> & { hasPrefs: boolean };

// The statements every notification runs, built once (one array parameter: one text for any number of ids).
const usersWithPreferencesQuery = compile<{ ids: string[] }>(
  queryBuilder
    .select({
      id: sql`${users.id}`.as('id'),
      email: sql`${users.email}`.as('email'),
      name: sql`${users.name}`.as('name'),
      role: sql`${users.role}`.as('role'),
      active: sql`${users.active}`.as('active'),
      hasPrefs: sql`${notificationPreferences.userId} IS NOT NULL`.as('hasPrefs'),
      ...Object.fromEntries(
        Object.entries(prefColumns).map(([key, column]) => [key, sql`${column}`.as(key)]),
      ),
    })
    .from(users)
    .leftJoin(notificationPreferences, eq(notificationPreferences.userId, users.id))
    .where(sql`${users.id} = ANY(${sql.placeholder('ids')}::uuid[])`),
);

const deliveredIdsQuery = compile<{ ids: string[] }>(
  queryBuilder
    .select({ messageId: sql`${mailDeliveries.messageId}`.as('messageId') })
    .from(mailDeliveries)
    .where(sql`${mailDeliveries.messageId} = ANY(${sql.placeholder('ids')}::text[])`),
);

type DeliveryValues = {
  messageId: string;
  kind: string;
  ticketId: number | null;
  recipientUserId: string | null;
  response: string;
};

const recordDeliveryQuery = compile<DeliveryValues>(
  queryBuilder
    .insert(mailDeliveries)
    .values({
      messageId: sql.placeholder('messageId'),
      kind: sql.placeholder('kind'),
      ticketId: sql.placeholder('ticketId'),
      recipientUserId: sql.placeholder('recipientUserId'),
      response: sql.placeholder('response'),
    })
    .onConflictDoNothing(),
);

/** Preferences, delivery records, reset tokens and the reset-request throttle. */
export function createMailRepository() {
  return {
    async getPreferences(ex: Executor, userId: string): Promise<NotificationPreferences> {
      const [row] = await ex
        .select(prefColumns)
        .from(notificationPreferences)
        .where(eq(notificationPreferences.userId, userId));
      return row ?? { ...DEFAULT_PREFERENCES };
    },

    async upsertPreferences(
      ex: Executor,
      userId: string,
      prefs: NotificationPreferences,
    ): Promise<NotificationPreferences> {
      const [row] = await ex
        .insert(notificationPreferences)
        .values({ userId, ...prefs })
        .onConflictDoUpdate({
          target: notificationPreferences.userId,
          set: { ...prefs, updatedAt: sql`now()` },
        })
        .returning(prefColumns);
      return row!;
    },

    /** Users with their preferences (defaults where no row exists), for deciding and addressing mail. */
    async usersWithPreferences(ex: Executor, ids: readonly string[]): Promise<MailUser[]> {
      if (ids.length === 0) return [];
      const rows = await runCompiled<MailUserRow, { ids: string[] }>(ex, usersWithPreferencesQuery, {
        ids: [...ids],
      });
      return rows.map((r) => ({
        id: r.id,
        email: r.email,
        name: r.name,
        role: r.role,
        active: r.active,
        // No preferences row (the left join yields nulls): the defaults apply.
        preferences: r.hasPrefs
          ? {
              ticketCreated: r.ticketCreated!,
              publicReply: r.publicReply!,
              ticketSolved: r.ticketSolved!,
              requesterReply: r.requesterReply!,
              assigned: r.assigned!,
              slaBreach: r.slaBreach!,
            }
          : { ...DEFAULT_PREFERENCES },
      }));
    },

    async teamMemberIds(ex: Executor, teamId: string): Promise<string[]> {
      const rows = await ex
        .select({ userId: teamMembers.userId })
        .from(teamMembers)
        .where(eq(teamMembers.teamId, teamId));
      return rows.map((r) => r.userId);
    },

    async ticketRequesterId(ex: Executor, ticketId: number): Promise<string | null> {
      const [row] = await ex
        .select({ requesterId: tickets.requesterId })
        .from(tickets)
        .where(eq(tickets.id, ticketId));
      return row?.requesterId ?? null;
    },

    async teamName(ex: Executor, teamId: string): Promise<string | null> {
      const [row] = await ex.select({ name: teams.name }).from(teams).where(eq(teams.id, teamId));
      return row?.name ?? null;
    },

    async findDelivery(ex: Executor, messageId: string): Promise<{ response: string } | undefined> {
      const [row] = await ex
        .select({ response: mailDeliveries.response })
        .from(mailDeliveries)
        .where(eq(mailDeliveries.messageId, messageId));
      return row;
    },

    /** Which of these Message-IDs were delivered already (one statement for a notification's recipients). */
    async deliveredIds(ex: Executor, messageIds: readonly string[]): Promise<Set<string>> {
      if (messageIds.length === 0) return new Set();
      const rows = await runCompiled<{ messageId: string }, { ids: string[] }>(ex, deliveredIdsQuery, {
        ids: [...messageIds],
      });
      return new Set(rows.map((r) => r.messageId));
    },

    async recordDelivery(
      ex: Executor,
      values: {
        messageId: string;
        kind: string;
        ticketId: number | null;
        recipientUserId: string | null;
        response: string;
      },
    ): Promise<void> {
      await runCompiled(ex, recordDeliveryQuery, values);
    },

    // ---- password reset ----

    /** Drops this job's earlier, never-delivered token (a retried job issues a fresh one) and stores the new hash. */
    async replaceJobToken(
      ex: Executor,
      values: { userId: string; tokenHash: string; jobId: string; expiresAt: Date },
    ): Promise<void> {
      await ex
        .delete(passwordResetTokens)
        .where(and(eq(passwordResetTokens.jobId, values.jobId), isNull(passwordResetTokens.usedAt)));
      await ex.insert(passwordResetTokens).values(values);
    },

    async findToken(ex: Executor, tokenHash: string): Promise<PasswordResetTokenRow | undefined> {
      const [row] = await ex
        .select()
        .from(passwordResetTokens)
        .where(eq(passwordResetTokens.tokenHash, tokenHash))
        .limit(1);
      return row;
    },

    async findTokenForUpdate(ex: Executor, tokenHash: string): Promise<PasswordResetTokenRow | undefined> {
      const [row] = await ex
        .select()
        .from(passwordResetTokens)
        .where(eq(passwordResetTokens.tokenHash, tokenHash))
        .limit(1)
        .for('update');
      return row;
    },

    /** Uses up every outstanding token of the user (the one presented and any other still in a mailbox). */
    async useAllTokens(ex: Executor, userId: string): Promise<void> {
      await ex
        .update(passwordResetTokens)
        .set({ usedAt: sql`now()` })
        .where(and(eq(passwordResetTokens.userId, userId), isNull(passwordResetTokens.usedAt)));
    },

    /** Removes tokens that can no longer be used (expired or used a day ago), keeping the table small. */
    async pruneTokens(ex: Executor, now: Date): Promise<void> {
      const dayAgo = new Date(now.getTime() - 86_400_000);
      await ex
        .delete(passwordResetTokens)
        .where(or(lt(passwordResetTokens.expiresAt, dayAgo), lt(passwordResetTokens.usedAt, dayAgo)));
    },

    async countRequestsSince(ex: Executor, emailKey: string, since: Date): Promise<number> {
      const [row] = await ex
        .select({ count: sql<number>`count(*)::int` })
        .from(passwordResetRequests)
        .where(
          and(eq(passwordResetRequests.emailKey, emailKey), gt(passwordResetRequests.occurredAt, since)),
        );
      return row?.count ?? 0;
    },

    async insertRequest(ex: Executor, emailKey: string, at: Date): Promise<void> {
      await ex.insert(passwordResetRequests).values({ emailKey, occurredAt: at });
    },

    /** Drops requests that left the window (any account), so sprayed emails do not pile up. */
    async pruneRequests(ex: Executor, before: Date): Promise<void> {
      await ex.delete(passwordResetRequests).where(lt(passwordResetRequests.occurredAt, before));
    },
  };
}

export type MailRepository = ReturnType<typeof createMailRepository>;
