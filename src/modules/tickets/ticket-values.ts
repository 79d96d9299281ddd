/**
 * The values a ticket's fields take, owned by the domain: the database enums (src/db/schema) and the
 * request schemas are made from these lists.
 */

export const TICKET_STATUSES = [
  'new',
  'open',
  'pending',
  'on_hold',
  'solved',
  'closed',
  'cancelled',
] as const;
export type TicketStatus = (typeof TICKET_STATUSES)[number];

/** Ascending, so ORDER BY priority (a PostgreSQL enum sorts in declaration order) sorts low < urgent. */
export const TICKET_PRIORITIES = ['low', 'normal', 'high', 'urgent'] as const;
export type TicketPriority = (typeof TICKET_PRIORITIES)[number];

export const TICKET_TYPES = ['question', 'incident', 'problem', 'task'] as const;
export type TicketType = (typeof TICKET_TYPES)[number];

/** A public reply the requester sees, or an internal note for staff only. */
export const COMMENT_VISIBILITIES = ['public', 'internal'] as const;
export type CommentVisibility = (typeof COMMENT_VISIBILITIES)[number];
