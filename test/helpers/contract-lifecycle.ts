import type { TicketStatus } from '../../src/db/schema/index.js';

/**
 * The contract's transition table (../shared/API.md "Ticket lifecycle"), written out independently of
 * src/modules/tickets/ticket-lifecycle.ts so the tests check the module against the contract, not itself.
 */
export const CONTRACT_TRANSITIONS: Readonly<Record<TicketStatus, readonly TicketStatus[]>> = {
  new: ['open', 'pending', 'on_hold', 'solved', 'cancelled'],
  open: ['pending', 'on_hold', 'solved', 'cancelled'],
  pending: ['open', 'on_hold', 'solved'],
  on_hold: ['open', 'pending', 'solved'],
  solved: ['open', 'closed'],
  closed: [],
  cancelled: [],
};
