import { describe, expect, it } from 'vitest';
import type { UserRole } from '../../src/db/schema/index.js';
import {
  DEFAULT_PREFERENCES,
  type NotificationEvent,
  type NotificationPreferences,
  type NotificationTicket,
  notificationRecipients,
  type Person,
} from '../../src/modules/mail/notification-rules.js';

function person(
  id: string,
  role: UserRole,
  opts: { active?: boolean; prefs?: Partial<NotificationPreferences> } = {},
): Person {
  return { id, role, active: opts.active ?? true, preferences: { ...DEFAULT_PREFERENCES, ...opts.prefs } };
}

const requester = person('req', 'requester');
const agent = person('agent', 'agent');
const admin = person('admin', 'admin');
const teamAgent = person('team-agent', 'agent');
const teamAgent2 = person('team-agent-2', 'agent');
const otherRequester = person('other-req', 'requester');

function run(
  event: Partial<NotificationEvent> & { type: string },
  ticket: Partial<NotificationTicket> = {},
  people: Person[] = [requester, agent, admin, teamAgent, teamAgent2, otherRequester],
  team: string[] = [],
) {
  const byId = new Map(people.map((p) => [p.id, p]));
  return notificationRecipients(
    { ticketId: 1, actorId: null, ...event },
    { id: 1, requesterId: 'req', assigneeId: null, teamId: null, ...ticket },
    (id) => byId.get(id),
    team,
  );
}

describe('who gets what (the contract table)', () => {
  it('ticket created: the requester gets a receipt even as the actor; the team’s agents are told', () => {
    const out = run({ type: 'ticket.created', actorId: 'req' }, { teamId: 't' }, undefined, [
      'team-agent',
      'team-agent-2',
      'other-req',
    ]);
    expect(out).toEqual([
      { userId: 'req', kind: 'ticketCreated' },
      { userId: 'team-agent', kind: 'ticketCreated' },
      { userId: 'team-agent-2', kind: 'ticketCreated' },
    ]);
  });

  it('ticket created by an agent of the team: the agent is the actor and is not mailed', () => {
    const out = run({ type: 'ticket.created', actorId: 'team-agent' }, { teamId: 't' }, undefined, [
      'team-agent',
      'team-agent-2',
    ]);
    expect(out.map((r) => r.userId)).toEqual(['req', 'team-agent-2']);
  });

  it('public staff reply: the requester', () => {
    const out = run({
      type: 'comment.created',
      actorId: 'agent',
      comment: { id: 'c', authorId: 'agent', visibility: 'public' },
    });
    expect(out).toEqual([{ userId: 'req', kind: 'publicReply' }]);
  });

  it('internal note: nobody, not even staff', () => {
    const out = run(
      {
        type: 'comment.created',
        actorId: 'agent',
        comment: { id: 'c', authorId: 'agent', visibility: 'internal' },
      },
      { assigneeId: 'admin', teamId: 't' },
      undefined,
      ['team-agent'],
    );
    expect(out).toEqual([]);
  });

  it('requester reply: the assignee; no assignee → nobody', () => {
    const event = {
      type: 'comment.created',
      actorId: 'req',
      comment: { id: 'c', authorId: 'req', visibility: 'public' as const },
    };
    expect(run(event, { assigneeId: 'agent' })).toEqual([{ userId: 'agent', kind: 'requesterReply' }]);
    expect(run(event)).toEqual([]);
  });

  it('ticket solved: the requester, not the agent who solved it', () => {
    const out = run(
      { type: 'ticket.status_changed', actorId: 'agent', newStatus: 'solved' },
      { assigneeId: 'agent' },
    );
    expect(out).toEqual([{ userId: 'req', kind: 'ticketSolved' }]);
  });

  it('a status change other than solved mails nobody', () => {
    expect(run({ type: 'ticket.status_changed', actorId: 'agent', newStatus: 'pending' })).toEqual([]);
  });

  it('assigned by someone else: the new assignee; taking it yourself mails nobody', () => {
    const byAdmin = run(
      { type: 'ticket.assigned', actorId: 'admin', assigneeChanged: true, newAssigneeId: 'agent' },
      { assigneeId: 'agent' },
    );
    expect(byAdmin).toEqual([{ userId: 'agent', kind: 'assigned' }]);
    const take = run(
      { type: 'ticket.assigned', actorId: 'agent', assigneeChanged: true, newAssigneeId: 'agent' },
      { assigneeId: 'agent' },
    );
    expect(take).toEqual([]);
  });

  it('assigning a new ticket (status_changed to open) still tells the new assignee', () => {
    const out = run(
      {
        type: 'ticket.status_changed',
        actorId: 'admin',
        newStatus: 'open',
        assigneeChanged: true,
        newAssigneeId: 'agent',
      },
      { assigneeId: 'agent' },
    );
    expect(out).toEqual([{ userId: 'agent', kind: 'assigned' }]);
  });

  it('assign and solve in one change: each person gets their own mail', () => {
    const out = run(
      {
        type: 'ticket.status_changed',
        actorId: 'admin',
        newStatus: 'solved',
        assigneeChanged: true,
        newAssigneeId: 'agent',
      },
      { assigneeId: 'agent' },
    );
    expect(out).toEqual([
      { userId: 'req', kind: 'ticketSolved' },
      { userId: 'agent', kind: 'assigned' },
    ]);
  });

  it('SLA breach: the assignee, else the team’s agents', () => {
    expect(
      run({ type: 'ticket.sla_breached' }, { assigneeId: 'agent', teamId: 't' }, undefined, ['team-agent']),
    ).toEqual([{ userId: 'agent', kind: 'slaBreach' }]);
    expect(
      run({ type: 'ticket.sla_breached' }, { teamId: 't' }, undefined, ['team-agent', 'other-req']),
    ).toEqual([{ userId: 'team-agent', kind: 'slaBreach' }]);
  });
});

describe('filters on every recipient', () => {
  it('never a deactivated user', () => {
    const people = [person('req', 'requester', { active: false }), agent];
    expect(run({ type: 'ticket.status_changed', actorId: 'agent', newStatus: 'solved' }, {}, people)).toEqual(
      [],
    );
  });

  it('a switched-off preference stops that kind only', () => {
    const people = [person('req', 'requester', { prefs: { ticketSolved: false } }), agent];
    expect(run({ type: 'ticket.status_changed', actorId: 'agent', newStatus: 'solved' }, {}, people)).toEqual(
      [],
    );
    expect(
      run(
        {
          type: 'comment.created',
          actorId: 'agent',
          comment: { id: 'c', authorId: 'agent', visibility: 'public' },
        },
        {},
        people,
      ),
    ).toEqual([{ userId: 'req', kind: 'publicReply' }]);
  });

  it('only people who may see the ticket: a deleted ticket mails nobody but admins', () => {
    const out = run(
      { type: 'ticket.assigned', actorId: 'admin', assigneeChanged: true, newAssigneeId: 'agent' },
      { assigneeId: 'agent', deletedAt: new Date() },
    );
    expect(out).toEqual([]);
  });

  it('one mail per recipient per event, even when two rows name the same person', () => {
    // A staff member who requested the ticket, is in its team, and is its requester: one receipt.
    const staffRequester = person('req', 'agent');
    const out = run(
      { type: 'ticket.created', actorId: 'admin' },
      { teamId: 't' },
      [staffRequester, admin],
      ['req'],
    );
    expect(out).toEqual([{ userId: 'req', kind: 'ticketCreated' }]);
  });

  it('unknown users (deleted since) are skipped', () => {
    expect(
      run({ type: 'ticket.status_changed', actorId: 'agent', newStatus: 'solved' }, {}, [agent]),
    ).toEqual([]);
  });
});
