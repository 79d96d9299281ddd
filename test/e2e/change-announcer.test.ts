import type { FastifyInstance } from 'fastify';
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApp } from '../helpers/app.js';
import { type Announcement, listenToAnnouncements } from '../helpers/changes.js';
import { createUser, type TestUser } from '../helpers/factory.js';
import { type OwnDatabase, ownDatabase } from '../helpers/own-database.js';
import { createTicket } from '../helpers/tickets.js';
import { until } from '../helpers/wait.js';

// Its own database: notifications are per database, and other files write changes all the time.
let database: OwnDatabase;
let app: FastifyInstance;
let agent: TestUser;
let listener: pg.Client;
let heard: Announcement[];

beforeAll(async () => {
  database = await ownDatabase('helpdesk_announce');
  app = await createTestApp({ DATABASE_URL: database.url });
  agent = await createUser(app, { role: 'agent' });
  ({ client: listener, heard } = await listenToAnnouncements(database.url));
});
afterAll(async () => {
  await listener?.end();
  await app?.close();
  await database?.drop();
});

async function newTicket(): Promise<number> {
  return (await createTicket(app, agent, { title: 'announce me' })).id;
}

/** The first notification heard that announces transaction `xid` or a later one. */
const announcing = (xid: bigint) => () => heard.find((n) => n.payload !== '' && BigInt(n.payload) >= xid);

async function xidOf(ticketId: number): Promise<bigint> {
  const { rows } = await listener.query<{ xid: string }>(
    'SELECT max(xid::text::numeric)::text AS xid FROM change_events WHERE ticket_id = $1',
    [ticketId],
  );
  return BigInt(rows[0]!.xid);
}

describe('live streams are woken after a change, outside its transaction', () => {
  it('a write is announced on change_events with the id of the transaction that wrote it', async () => {
    heard.length = 0;
    const id = await newTicket();
    const xid = await xidOf(id);
    const note = await until(announcing(xid));
    expect(BigInt(note.payload)).toBe(xid);
  });

  it('the change table has no notifying trigger: an insert outside the app is not announced', async () => {
    const id = await newTicket();
    const created = await xidOf(id);
    await until(announcing(created));
    heard.length = 0;
    await listener.query(
      `INSERT INTO change_events (type, ticket_id, data) VALUES ('ticket.updated', $1, '{}'::jsonb)`,
      [id],
    );
    // Its own notification would arrive with this statement's completion, before the next round trip.
    await listener.query('SELECT 1');
    expect(heard).toEqual([]);
  });

  it('writes close together share announcements, and the last one covers the newest transaction', async () => {
    heard.length = 0;
    const ids = await Promise.all(Array.from({ length: 12 }, () => newTicket()));
    const newest = (await Promise.all(ids.map(xidOf))).reduce((a, b) => (b > a ? b : a));
    await until(announcing(newest));
    expect(heard.length).toBeGreaterThan(0);
    expect(heard.length).toBeLessThanOrEqual(12);
  });
});
