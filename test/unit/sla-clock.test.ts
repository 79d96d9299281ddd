import { describe, expect, it } from 'vitest';
import type { TicketStatus } from '../../src/db/schema/index.js';
import {
  dueTargets,
  EMPTY_SLA,
  planSla,
  policyMatches,
  type SlaPolicyRule,
  type SlaState,
  type SlaTicketFacts,
} from '../../src/modules/sla/sla-clock.js';

const T0 = new Date('2026-11-30T08:00:00.000Z');
const at = (minutes: number) => new Date(T0.getTime() + minutes * 60_000);

const POLICY: SlaPolicyRule = {
  id: 'p1',
  targets: { normal: { firstResponseMinutes: 30, resolutionMinutes: 240 }, low: { resolutionMinutes: 600 } },
  businessHours: null,
};
const OFFICE: SlaPolicyRule = {
  id: 'p2',
  targets: { normal: { firstResponseMinutes: 60 } },
  businessHours: { timezone: 'Europe/Berlin', days: { mon: [['09:00', '17:00']] }, holidays: [] },
};

const facts = (over: Partial<SlaTicketFacts> = {}): SlaTicketFacts => ({
  status: 'new',
  priority: 'normal',
  type: 'question',
  teamId: null,
  createdAt: T0,
  firstResponseAt: null,
  ...over,
});

/** Replays status changes (minute, status) on a new ticket under POLICY. */
function replay(steps: Array<[number, TicketStatus]>, policy: SlaPolicyRule | null = POLICY): SlaState {
  let state = planSla({
    prev: EMPTY_SLA,
    prevStatus: null,
    ticket: facts(),
    policy,
    recompute: true,
    now: T0,
  });
  let status: TicketStatus = 'new';
  for (const [minute, next] of steps) {
    state = planSla({
      prev: state,
      prevStatus: status,
      ticket: facts({ status: next }),
      policy,
      recompute: false,
      now: at(minute),
    });
    status = next;
  }
  return state;
}

describe('planSla', () => {
  it('a new ticket: due times from creation, both unmet, the earliest is next', () => {
    const s = replay([]);
    expect(s).toMatchObject({
      slaPolicyId: 'p1',
      slaFirstResponseDueAt: at(30),
      slaResolutionDueAt: at(240),
      slaResolutionStartedAt: T0,
      slaResolutionConsumedMs: 0,
      slaNextDueAt: at(30),
      slaBreachCheckAt: at(30),
    });
  });

  it.each([
    ['open keeps the clock running', [[10, 'open']], at(240)],
    ['on_hold keeps it running', [[10, 'on_hold']], at(240)],
    ['pending pauses: no due time', [[60, 'pending']], null],
    [
      'pending then open resumes with the rest',
      [
        [60, 'pending'],
        [200, 'open'],
      ],
      at(200 + 180),
    ],
    [
      'two pauses add up',
      [
        [60, 'pending'],
        [100, 'open'],
        [130, 'pending'],
        [500, 'on_hold'],
      ],
      at(500 + 150),
    ],
    [
      'solved keeps the due time it had',
      [
        [20, 'open'],
        [50, 'solved'],
      ],
      at(240),
    ],
    [
      'reopening a solved ticket resumes',
      [
        [50, 'solved'],
        [300, 'open'],
      ],
      at(300 + 190),
    ],
    [
      'pending straight to solved keeps no due time',
      [
        [60, 'pending'],
        [90, 'solved'],
      ],
      null,
    ],
  ] as const)('resolution: %s', (_name, steps, due) => {
    expect(replay(steps as unknown as Array<[number, TicketStatus]>).slaResolutionDueAt).toEqual(due);
  });

  it('the next due time skips met and paused targets; none left is null', () => {
    const replied = planSla({
      prev: replay([]),
      prevStatus: 'new',
      ticket: facts({ firstResponseAt: at(5) }),
      policy: POLICY,
      recompute: false,
      now: at(5),
    });
    expect(replied.slaNextDueAt).toEqual(at(240));
    const paused = planSla({
      prev: replied,
      prevStatus: 'new',
      ticket: facts({ status: 'pending', firstResponseAt: at(5) }),
      policy: POLICY,
      recompute: false,
      now: at(10),
    });
    expect(paused).toMatchObject({ slaNextDueAt: null, slaBreachCheckAt: null });
  });

  it('a breached target stays unmet for the sort but is no longer waited for by the breach job', () => {
    const s = { ...replay([]), slaFirstResponseBreachedAt: at(30) };
    const next = planSla({
      prev: s,
      prevStatus: 'new',
      ticket: facts({ status: 'open' }),
      policy: POLICY,
      recompute: false,
      now: at(40),
    });
    expect(next).toMatchObject({
      slaFirstResponseBreachedAt: at(30),
      slaNextDueAt: at(30),
      slaBreachCheckAt: at(240),
    });
  });

  it('a priority change recomputes from creation and keeps the resolution time already used', () => {
    const paused = replay([
      [100, 'pending'],
      [160, 'open'],
    ]); // 100 min used, running again since 160
    const low = planSla({
      prev: paused,
      prevStatus: 'open',
      ticket: facts({ status: 'open', priority: 'low' }),
      policy: POLICY,
      recompute: true,
      now: at(170),
    });
    expect(low).toMatchObject({ slaFirstResponseDueAt: null, slaResolutionDueAt: at(160 + 500) });
  });

  it('no policy: sla cleared, but the resolution clock keeps counting for a policy that applies later', () => {
    const none = replay(
      [
        [60, 'pending'],
        [100, 'open'],
      ],
      null,
    );
    expect(none).toMatchObject({
      slaPolicyId: null,
      slaNextDueAt: null,
      slaResolutionConsumedMs: 60 * 60_000,
    });
    const governed = planSla({
      prev: none,
      prevStatus: 'open',
      ticket: facts({ status: 'open' }),
      policy: POLICY,
      recompute: true,
      now: at(110),
    });
    expect(governed.slaResolutionDueAt).toEqual(at(100 + 180));
  });

  it('business hours: the first response waits for Monday opening', () => {
    const sunday = new Date('2026-11-29T12:00:00.000Z');
    const s = planSla({
      prev: EMPTY_SLA,
      prevStatus: null,
      ticket: facts({ createdAt: sunday }),
      policy: OFFICE,
      recompute: true,
      now: sunday,
    });
    expect(s.slaFirstResponseDueAt).toEqual(new Date('2026-11-30T09:00:00.000Z'));
  });
});

describe('dueTargets', () => {
  it('names the targets past due and not yet marked, nothing once met or finished', () => {
    const s = replay([]);
    expect(dueTargets(s, facts(), at(29))).toEqual([]);
    expect(dueTargets(s, facts(), at(30))).toEqual(['firstResponse']);
    expect(dueTargets(s, facts(), at(240))).toEqual(['firstResponse', 'resolution']);
    expect(dueTargets({ ...s, slaFirstResponseBreachedAt: at(30) }, facts(), at(240))).toEqual([
      'resolution',
    ]);
    expect(dueTargets(s, facts({ firstResponseAt: at(1) }), at(240))).toEqual(['resolution']);
    const cancelled = planSla({
      prev: s,
      prevStatus: 'new',
      ticket: facts({ status: 'cancelled' }),
      policy: POLICY,
      recompute: false,
      now: at(10),
    });
    expect(dueTargets(cancelled, facts({ status: 'cancelled' }), at(240))).toEqual([]);
  });
});

describe('policyMatches', () => {
  it.each([
    [{ teamId: null, type: null }, { teamId: 't1', type: 'incident' }, true],
    [{ teamId: 't1', type: null }, { teamId: 't1', type: 'incident' }, true],
    [{ teamId: 't1', type: null }, { teamId: null, type: 'incident' }, false],
    [{ teamId: null, type: 'task' }, { teamId: 't1', type: 'incident' }, false],
    [{ teamId: 't1', type: 'incident' }, { teamId: 't1', type: 'incident' }, true],
  ] as const)('%o matches %o: %s', (appliesTo, ticket, ok) => {
    expect(policyMatches(appliesTo, ticket)).toBe(ok);
  });
});
