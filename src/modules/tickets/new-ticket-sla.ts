import type { Executor } from '../../db/client.js';
import type { TicketPriority, TicketType } from '../../db/schema/index.js';
import { EMPTY_SLA, planSla, policyMatches } from '../sla/sla-clock.js';
import type { NewTicketSlaState, SlaPolicySnapshot } from './tickets.repository.js';

/** What decides a new ticket's SLA: the policy that matches it and its priority's targets. */
export interface NewTicketFacts {
  priority: TicketPriority;
  type: TicketType;
  teamId: string | null;
  createdAt: Date;
}

export interface NewTicketSlaPlan {
  /** The policies' fingerprint the plan was made with: the INSERT inserts nothing if it changed. */
  fingerprint: string;
  state: NewTicketSlaState;
}

/**
 * The SLA clock of a ticket being created, planned before its INSERT from the SLA policies held in memory
 * (the same rules as SlaService.onTicketChanged for a new ticket: the first matching policy by position,
 * due times from creation). The policies are read once per process and again only when a ticket's INSERT
 * finds that their fingerprint changed (a policy created, changed or deleted, on any instance): no policy
 * read per ticket, and never a ticket planned with policies that no longer hold.
 *
 * `track: false` (services built without SLA tracking) plans nothing: the columns keep their defaults.
 */
export function createNewTicketSla(opts: {
  track: boolean;
  load: (ex: Executor) => Promise<SlaPolicySnapshot>;
}) {
  let cached: SlaPolicySnapshot | null = null;

  function stateFor(snapshot: SlaPolicySnapshot, t: NewTicketFacts): NewTicketSlaState {
    if (!opts.track) {
      return {
        slaPolicyId: null,
        slaFirstResponseDueAt: null,
        slaResolutionDueAt: null,
        slaResolutionStartedAt: null,
        slaResolutionConsumedMs: 0,
        slaNextDueAt: null,
        slaBreachCheckAt: null,
      };
    }
    const match = snapshot.policies.find((p) =>
      policyMatches({ teamId: p.appliesToTeamId, type: p.appliesToType }, t),
    );
    const s = planSla({
      prev: EMPTY_SLA,
      prevStatus: null,
      ticket: { ...t, status: 'new', firstResponseAt: null },
      policy: match ? { id: match.id, targets: match.targets, businessHours: match.businessHours } : null,
      recompute: true,
      now: t.createdAt,
    });
    return {
      slaPolicyId: s.slaPolicyId,
      slaFirstResponseDueAt: s.slaFirstResponseDueAt,
      slaResolutionDueAt: s.slaResolutionDueAt,
      slaResolutionStartedAt: s.slaResolutionStartedAt,
      slaResolutionConsumedMs: s.slaResolutionConsumedMs,
      slaNextDueAt: s.slaNextDueAt,
      // A new ticket has no breach marks; only a due time to watch gives it a ticket_sla row.
      slaBreachCheckAt: s.slaBreachCheckAt,
    };
  }

  return {
    /**
     * The plan for a new ticket. `stale`: the last INSERT found the policies changed, so they are read
     * again (on the caller's transaction) before planning.
     */
    async plan(ex: Executor, ticket: NewTicketFacts, stale = false): Promise<NewTicketSlaPlan> {
      if (stale || !cached) cached = await opts.load(ex);
      return { fingerprint: cached.fingerprint, state: stateFor(cached, ticket) };
    },
  };
}

export type NewTicketSla = ReturnType<typeof createNewTicketSla>;
