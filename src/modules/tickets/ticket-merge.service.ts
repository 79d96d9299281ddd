import type { Database } from '../../db/client.js';
import type { Clock } from '../../lib/clock.js';
import { UnprocessableError } from '../../lib/errors.js';
import type { AuditService } from '../audit/audit.service.js';
import type { AuthedContext } from '../auth/actor.js';
import { AccessDeniedError, isStaff } from '../auth/permissions.js';
import type { ChangeRecorder } from '../changes/changes.service.js';
import type { TicketsRepository } from './tickets.repository.js';
import type { TicketDto } from './tickets.schemas.js';
import type { TicketService } from './tickets.service.js';

export interface TicketMergeDeps {
  db: Database;
  tickets: Pick<TicketService, 'lockTicketForWrite' | 'toDto'>;
  ticketsRepo: Pick<TicketsRepository, 'update' | 'findView' | 'moveConversation'>;
  audit: AuditService;
  changes: ChangeRecorder;
  clock: Clock;
}

/**
 * Merging a duplicate into the ticket that stays. The conversation MOVES: comments and attachments of
 * the source get the target's ticket id (one home per comment, so every read, permission check, search
 * and attachment download on the target works unchanged); the source stays as a closed stub with
 * `mergedIntoId`. Staff only.
 */
export function createTicketMergeService(deps: TicketMergeDeps) {
  const { db, tickets, ticketsRepo, audit, changes: changeFeed, clock } = deps;

  return {
    /**
     * POST /tickets/{id}/merge. Into itself → 422 MERGE_INTO_SELF; either ticket deleted → 409
     * TICKET_DELETED; either closed or cancelled → 409 TICKET_CLOSED (a merged ticket is closed). Both
     * tickets are locked in id order (two crossing merges cannot deadlock). Audited on both
     * (`ticket.merged`, with the counts moved) and a `ticket.merged` change event on both.
     */
    async merge(ctx: AuthedContext, sourceId: number, targetId: number): Promise<TicketDto> {
      if (!isStaff(ctx.actor.role)) {
        throw new AccessDeniedError(
          'ticket.merge',
          { type: 'ticket', id: sourceId },
          'Agents and admins merge tickets.',
        );
      }
      if (sourceId === targetId) {
        throw new UnprocessableError('MERGE_INTO_SELF', `Ticket #${sourceId} cannot be merged into itself.`);
      }
      return db.transaction(async (tx) => {
        const lock = (id: number) =>
          tickets.lockTicketForWrite(ctx, tx, id, {
            whenClosed: id === sourceId ? 'it cannot be merged' : 'nothing can be merged into it',
          });
        const [first, second] = sourceId < targetId ? [sourceId, targetId] : [targetId, sourceId];
        const a = await lock(first);
        const b = await lock(second);
        const source = a.id === sourceId ? a : b;
        const target = a.id === targetId ? a : b;

        const now = clock.now();
        const moved = await ticketsRepo.moveConversation(tx, sourceId, targetId);
        await ticketsRepo.update(
          tx,
          sourceId,
          { status: 'closed', closedAt: now, mergedIntoId: targetId },
          now,
        );
        // The target's conversation grew: updatedAt and version move.
        await ticketsRepo.update(tx, targetId, {}, now);

        await audit.record(tx, ctx, {
          action: 'ticket.merged',
          entityType: 'ticket',
          entityId: sourceId,
          changes: {
            status: [source.status, 'closed'],
            closedAt: [source.closedAt, now],
            mergedIntoId: [null, targetId],
          },
          metadata: {
            ticketId: String(sourceId),
            role: 'source',
            targetId,
            movedComments: moved.comments,
            movedAttachments: moved.attachments,
            version: source.version + 1,
          },
        });
        await audit.record(tx, ctx, {
          action: 'ticket.merged',
          entityType: 'ticket',
          entityId: targetId,
          changes: {},
          metadata: {
            ticketId: String(targetId),
            role: 'target',
            sourceId,
            movedComments: moved.comments,
            movedAttachments: moved.attachments,
            version: target.version + 1,
          },
        });
        const sourceDto = tickets.toDto((await ticketsRepo.findView(tx, sourceId))!, ctx.actor);
        const targetDto = tickets.toDto((await ticketsRepo.findView(tx, targetId))!, ctx.actor);
        const data = {
          sourceId,
          targetId,
          movedComments: moved.comments,
          movedAttachments: moved.attachments,
        };
        await changeFeed.record(tx, ctx, {
          type: 'ticket.merged',
          ticketId: sourceId,
          data: { ticket: sourceDto, ...data },
        });
        await changeFeed.record(tx, ctx, {
          type: 'ticket.merged',
          ticketId: targetId,
          data: { ticket: targetDto, ...data },
        });
        return targetDto;
      });
    },
  };
}

export type TicketMergeService = ReturnType<typeof createTicketMergeService>;
