import type { Executor } from '../../db/client.js';
import { ConflictError, NotFoundError, PreconditionFailedError } from '../../lib/errors.js';
import type { Actor, AuthedContext } from '../auth/actor.js';
import { canViewTicket } from '../auth/permissions.js';
import { isTerminal } from './ticket-lifecycle.js';
import type { TicketState, TicketsRepository } from './tickets.repository.js';

/**
 * The one gate in front of every write that touches a ticket (a change of the ticket, a comment, a
 * file). It answers, in this order: 404 TICKET_NOT_FOUND when the caller may not see it (never 403) →
 * 409 TICKET_DELETED (only admins see deleted tickets) → 412 VERSION_MISMATCH for a stale expected
 * version → the caller's own 403 checks → 409 TICKET_CLOSED on a closed or cancelled ticket.
 */

/** The version(s) a conditional write expects: `*` any, one version, or a list (none matching → 412). */
export type ExpectedVersion = number | '*' | readonly number[];

export interface TicketWriteOptions {
  /** If-Match, as versions: a ticket at another version → 412 and nothing changes. */
  expectedVersion?: ExpectedVersion;
  /** Role and field checks (403) that come before the closed-ticket refusal. */
  authorize?(ticket: TicketState): void;
  /** What a closed ticket refuses, for the 409 detail ("it takes no more comments"); false: closed tickets pass. */
  whenClosed?: string | false;
  /** FOR UPDATE (default: writers of the ticket serialize) or FOR SHARE (the ticket itself does not change). */
  lock?: 'update' | 'share';
}

export function ticketNotFound(id: number): NotFoundError {
  return new NotFoundError(
    'TICKET_NOT_FOUND',
    'Ticket not found',
    `Ticket #${id} does not exist or is not visible to you.`,
  );
}

function versionMatches(expected: ExpectedVersion, version: number): boolean {
  if (expected === '*') return true;
  if (typeof expected === 'number') return expected === version;
  return expected.includes(version);
}

/** The gate's rules on a ticket already read (or undefined when there is none): see the module comment. */
export function assertTicketWritable(
  actor: Pick<Actor, 'id' | 'role'>,
  id: number,
  ticket: TicketState | undefined,
  opts: TicketWriteOptions = {},
): TicketState {
  if (!ticket || !canViewTicket(actor, ticket)) throw ticketNotFound(id);
  if (ticket.deletedAt) {
    throw new ConflictError('TICKET_DELETED', `Ticket #${id} is deleted; restore it before changing it.`);
  }
  if (opts.expectedVersion !== undefined && !versionMatches(opts.expectedVersion, ticket.version)) {
    throw new PreconditionFailedError(
      `Ticket #${id} is at version ${ticket.version}; If-Match named another. Reload it and apply your change again.`,
    );
  }
  opts.authorize?.(ticket);
  const whenClosed = opts.whenClosed ?? 'it cannot change any more';
  if (whenClosed !== false && isTerminal(ticket.status)) {
    throw new ConflictError('TICKET_CLOSED', `Ticket #${id} is ${ticket.status}; ${whenClosed}.`);
  }
  return ticket;
}

export function createTicketGate(tickets: Pick<TicketsRepository, 'lockById'>) {
  return {
    /**
     * Locks the ticket for a write in this transaction and passes it through the gate. Every service
     * that writes to a ticket (or hangs something on it) goes through here.
     */
    async lockTicketForWrite(
      ctx: AuthedContext,
      tx: Executor,
      id: number,
      opts: TicketWriteOptions = {},
    ): Promise<TicketState> {
      return assertTicketWritable(ctx.actor, id, await tickets.lockById(tx, id, opts.lock ?? 'update'), opts);
    },

    /** The same gate without a lock, to refuse early before expensive work (reading an upload). */
    async checkTicketWritable(
      ctx: AuthedContext,
      ex: Executor,
      id: number,
      opts: TicketWriteOptions = {},
    ): Promise<TicketState> {
      return assertTicketWritable(ctx.actor, id, await tickets.lockById(ex, id, 'none'), opts);
    },
  };
}

export type TicketGate = ReturnType<typeof createTicketGate>;
