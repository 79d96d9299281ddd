import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import { and, eq, isNull } from 'drizzle-orm';
import type { Database } from '../../db/client.js';
import { bulkRuns } from '../../db/schema/index.js';
import type { Clock } from '../../lib/clock.js';
import { deriveKey } from '../../lib/cursor.js';
import { AppError, ConflictError, UnprocessableError } from '../../lib/errors.js';
import type { AuditService } from '../audit/audit.service.js';
import type { Actor, AuthedContext } from '../auth/actor.js';
import { canonical } from '../idempotency/idempotency.service.js';
import type { JobDefinition } from '../jobs/job-definition.js';
import { PermanentJobError } from '../jobs/job-definition.js';
import type { JobsService } from '../jobs/jobs.service.js';
import type { TicketState, TicketsRepository } from '../tickets/tickets.repository.js';
import type { ListTicketsQuery, PatchTicketInput } from '../tickets/tickets.schemas.js';
import type { TicketService } from '../tickets/tickets.service.js';
import type { UsersRepository } from '../users/users.repository.js';
import { BULK_MAX_TICKETS, type BulkBody, type BulkChanges, type BulkOutcome } from './bulk.schemas.js';

const TOKEN_TTL_MS = 10 * 60 * 1000;
export const BULK_JOB = 'tickets.bulk';

export interface BulkServiceDeps {
  db: Database;
  tickets: Pick<TicketService, 'patchIn' | 'list'>;
  ticketsRepo: Pick<TicketsRepository, 'lockById'>;
  users: Pick<UsersRepository, 'findById'>;
  audit: AuditService;
  jobs: Pick<JobsService, 'enqueue'>;
  clock: Clock;
  secret: string;
}

interface BulkJobPayload {
  bulkId: string;
  actorId: string;
  traceId: string;
  ids: number[];
  changes: BulkChanges;
}

/** A token's failure: 422 for a token that is not ours or not for this request, 409 once used. */
function tokenError(code: string, detail: string): UnprocessableError {
  return new UnprocessableError(code, detail);
}

/**
 * The PATCH body a bulk change makes for one ticket as it is: addTags/removeTags become its new tag list.
 * More than 20 tags → the ticket's outcome is an error (TOO_MANY_TAGS), like PATCH's limit.
 */
export function patchFor(
  changes: BulkChanges,
  ticket: Pick<TicketState, 'tags'> | undefined,
): PatchTicketInput {
  const { addTags, removeTags, ...rest } = changes;
  const input: PatchTicketInput = { ...rest };
  if (ticket && (addTags || removeTags)) {
    const remove = new Set(removeTags ?? []);
    const tags = [...new Set([...ticket.tags, ...(addTags ?? [])])].filter((t) => !remove.has(t));
    if (tags.length > 20) throw new UnprocessableError('TOO_MANY_TAGS', 'A ticket carries at most 20 tags.');
    input.tags = tags;
  }
  return input;
}

/**
 * Bulk ticket changes: a dry run previews each ticket's outcome and hands out a confirmation token bound to
 * the exact request (resolved ids, changes, actor; 10 minutes; single use); executing enqueues a tracked job
 * that changes each ticket in its own transaction through PATCH's own code (tickets.patchIn).
 */
export function createBulkService(deps: BulkServiceDeps) {
  const { db, tickets, ticketsRepo, users, audit, jobs, clock } = deps;
  const key = deriveKey(deps.secret, 'bulk-confirmation');
  const sign = (text: string) => createHmac('sha256', key).update(text).digest('base64url');

  function requestHash(actorId: string, body: BulkBody): string {
    const bound = {
      actor: actorId,
      ids: body.ids ?? null,
      filter: body.filter ?? null,
      changes: body.changes,
    };
    return createHash('sha256').update(canonical(bound)).digest('hex');
  }

  async function resolveIds(ctx: AuthedContext, body: BulkBody): Promise<number[]> {
    if (body.ids) return body.ids;
    const ids: number[] = [];
    let cursor: string | undefined;
    do {
      const query = { ...body.filter, sort: '-updatedAt', limit: 100, cursor } as ListTicketsQuery;
      const page = await tickets.list(ctx, query);
      ids.push(...page.data.map((t) => t.id));
      cursor = page.nextCursor ?? undefined;
    } while (cursor && ids.length <= BULK_MAX_TICKETS);
    if (ids.length > BULK_MAX_TICKETS) {
      throw new UnprocessableError(
        'TOO_MANY_TICKETS',
        `The filter matches more than ${BULK_MAX_TICKETS} tickets; narrow it.`,
      );
    }
    return ids;
  }

  /**
   * One ticket's change in `tx`-less form: its own transaction, PATCH's rules; the refusal PATCH would
   * answer becomes the outcome's code. `commit: false` rolls the transaction back (the dry run).
   */
  async function applyOne(
    ctx: AuthedContext,
    id: number,
    changes: BulkChanges,
    bulkId: string | null,
    commit: boolean,
  ): Promise<BulkOutcome> {
    const rollback = new Error('dry run');
    try {
      const outcome = await db.transaction(async (tx) => {
        const before = await ticketsRepo.lockById(tx, id, 'update');
        const input = patchFor(changes, before);
        const after = await tickets.patchIn(tx, ctx, id, input, { metadata: bulkId ? { bulkId } : {} });
        const result: BulkOutcome = { id, outcome: after.version !== before?.version ? 'change' : 'skip' };
        if (!commit) throw Object.assign(rollback, { result });
        return result;
      });
      return outcome;
    } catch (err) {
      if (err === rollback) return (rollback as Error & { result: BulkOutcome }).result;
      if (err instanceof AppError && err.status < 500) return { id, outcome: 'error', code: err.code };
      throw err;
    }
  }

  const job: JobDefinition<BulkJobPayload> = {
    kind: BULK_JOB,
    // A retry re-evaluates every ticket: the ones an earlier attempt changed come out as skip.
    maxAttempts: 3,
    async handler(payload, jobCtx) {
      const user = await users.findById(db, payload.actorId);
      if (!user?.active)
        throw new PermanentJobError('the user who started this bulk change is no longer active');
      const actor: Actor = { id: user.id, role: user.role, name: user.name, email: user.email };
      const ctx: AuthedContext = { actor, traceId: payload.traceId, ip: null, userAgent: null };
      const results: BulkOutcome[] = [];
      const total = payload.ids.length;
      for (const id of payload.ids) {
        if (jobCtx.signal.aborted) throw new Error('worker shutting down; the bulk change resumes on retry');
        results.push(await applyOne(ctx, id, payload.changes, payload.bulkId, true));
        if (results.length % 25 === 0 || results.length === total)
          await jobCtx.progress(results.length, total);
      }
      const count = (o: BulkOutcome['outcome']) => results.filter((r) => r.outcome === o).length;
      return {
        bulkId: payload.bulkId,
        matched: total,
        changed: count('change'),
        skipped: count('skip'),
        failed: count('error'),
        results,
      };
    },
  };

  return {
    definitions: [job] as JobDefinition[],

    /** POST /tickets/bulk with dryRun: each ticket's outcome (nothing changes) and the confirmation token. */
    async preview(ctx: AuthedContext, body: BulkBody) {
      const ids = await resolveIds(ctx, body);
      const results: BulkOutcome[] = [];
      for (const id of ids) results.push(await applyOne(ctx, id, body.changes, null, false));
      const now = clock.now();
      const expiresAt = new Date(now.getTime() + TOKEN_TTL_MS);
      const hash = requestHash(ctx.actor.id, body);
      const [run] = await db
        .insert(bulkRuns)
        .values({
          actorId: ctx.actor.id,
          ticketIds: ids,
          changes: body.changes,
          requestHash: hash,
          expiresAt,
        })
        .returning({ id: bulkRuns.id });
      const exp = expiresAt.getTime();
      const confirmationToken = `${run!.id}.${exp}.${sign(`${run!.id}.${exp}.${ctx.actor.id}.${hash}`)}`;
      return { matched: ids.length, results, confirmationToken, expiresAt };
    },

    /**
     * POST /tickets/bulk with a confirmationToken: checks the token (ours, unexpired, this actor, this exact
     * request), claims it once, and enqueues the job in the same transaction as the claim and its audit event.
     */
    async execute(ctx: AuthedContext, body: BulkBody): Promise<{ jobId: string; bulkId: string }> {
      const token = body.confirmationToken ?? '';
      const [runId, expText, mac] = token.split('.');
      const hash = requestHash(ctx.actor.id, body);
      const expected = sign(`${runId}.${expText}.${ctx.actor.id}.${hash}`);
      const valid =
        runId !== undefined &&
        /^[0-9a-f-]{36}$/.test(runId) &&
        mac !== undefined &&
        mac.length === expected.length &&
        timingSafeEqual(Buffer.from(mac), Buffer.from(expected));
      if (!valid) {
        throw tokenError(
          'CONFIRMATION_TOKEN_INVALID',
          'The confirmation token is not valid for this request and user; run the dry run of this exact request again.',
        );
      }
      if (Number(expText) <= clock.now().getTime()) {
        throw tokenError(
          'CONFIRMATION_TOKEN_EXPIRED',
          'The confirmation token expired (10 minutes); run the dry run again.',
        );
      }
      return db.transaction(async (tx) => {
        const [run] = await tx
          .update(bulkRuns)
          .set({ usedAt: clock.now() })
          .where(and(eq(bulkRuns.id, runId!), eq(bulkRuns.actorId, ctx.actor.id), isNull(bulkRuns.usedAt)))
          .returning();
        if (!run) {
          throw new ConflictError(
            'CONFIRMATION_TOKEN_USED',
            'This confirmation token was already used; run the dry run again.',
          );
        }
        const payload: BulkJobPayload = {
          bulkId: run.id,
          actorId: ctx.actor.id,
          traceId: ctx.traceId,
          ids: run.ticketIds,
          changes: run.changes as BulkChanges,
        };
        const jobId = await jobs.enqueue(tx, BULK_JOB, payload, { createdBy: ctx.actor.id });
        await tx.update(bulkRuns).set({ jobId }).where(eq(bulkRuns.id, run.id));
        await audit.record(tx, ctx, {
          action: 'ticket.bulk_started',
          entityType: 'bulk',
          entityId: run.id,
          metadata: { bulkId: run.id, jobId, tickets: run.ticketIds.length, changes: run.changes },
        });
        return { jobId, bulkId: run.id };
      });
    },
  };
}

export type BulkService = ReturnType<typeof createBulkService>;
