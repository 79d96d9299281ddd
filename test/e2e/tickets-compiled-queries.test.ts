import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTicketsRepository, type TicketFilters } from '../../src/modules/tickets/tickets.repository.js';
import { createTestApp } from '../helpers/app.js';
import { createUser, type TestUser } from '../helpers/factory.js';
import { createTicket, patchTicket } from '../helpers/tickets.js';

/**
 * The hot ticket statements (built once, sent straight to pg) answer exactly what drizzle's builder answers
 * for the same request: same rows, same order, same values and types, on the pool and in a transaction.
 */
describe('compiled ticket statements', () => {
  let app: FastifyInstance;
  let requester: TestUser;
  let agent: TestUser;
  const compiled = createTicketsRepository();
  const built = createTicketsRepository({ compiled: false });
  const ids: number[] = [];

  beforeAll(async () => {
    app = await createTestApp();
    [requester, agent] = await Promise.all([
      createUser(app, { role: 'requester', name: 'Réquester "quoted"' }),
      createUser(app, { role: 'agent' }),
    ]);
    const other = await createUser(app, { role: 'requester' });
    for (let i = 0; i < 7; i++) {
      const t = await createTicket(app, i % 3 === 0 ? other : requester, {
        title: `compiled ${i}`,
        priority: i % 2 ? 'high' : 'low',
      });
      ids.push(t.id);
    }
    // Some assigned and open, one with tags, one soft-deleted: every column takes more than one value.
    expect((await patchTicket(app, agent, ids[1]!, { assigneeId: agent.id })).statusCode).toBe(200);
    expect((await patchTicket(app, agent, ids[2]!, { assigneeId: agent.id })).statusCode).toBe(200);
    await app.db.$client.query(`UPDATE tickets SET tags = '{a,"b c"}', deleted_at = NULL WHERE id = $1`, [
      ids[3],
    ]);
    await app.db.$client.query('UPDATE tickets SET deleted_at = now() WHERE id = $1', [ids[4]]);
  });
  afterAll(() => app?.close());

  it('reads one ticket view like the builder, deleted and missing ones included', async () => {
    for (const id of [...ids, 2_000_000_000]) {
      const a = await compiled.findView(app.db, id);
      expect(a).toEqual(await built.findView(app.db, id));
      if (a) expect(a.createdAt).toBeInstanceOf(Date);
    }
  });

  it('lists the hot shapes like the builder, first pages and after a cursor', async () => {
    const shapes: TicketFilters[] = [
      {},
      { status: ['open'] },
      { status: ['new'] },
      { requesterId: requester.id },
      { status: ['new'], requesterId: requester.id },
      // with every other filter present but undefined, as the service passes them
      { status: ['open'], priority: undefined, q: undefined, assigneeId: undefined },
    ];
    const order = { key: 'updatedAt' as const, desc: true };
    for (const filters of shapes) {
      for (const limit of [3, 26]) {
        const first = await compiled.list(app.db, filters, order, null, limit);
        expect(first).toEqual(await built.list(app.db, filters, order, null, limit));
        const last = first.at(-1);
        if (!last) continue;
        const after = { value: last.sortValue, id: last.id };
        expect(await compiled.list(app.db, filters, order, after, limit)).toEqual(
          await built.list(app.db, filters, order, after, limit),
        );
      }
    }
  });

  it('runs on the transaction it is given', async () => {
    await app.db
      .transaction(async (tx) => {
        const id = await compiled.insert(tx, {
          title: 'in a transaction',
          description: 'rolled back',
          priority: 'urgent',
          type: 'incident',
          tags: ['x'],
          teamId: null,
          requesterId: requester.id,
          createdAt: new Date(),
          updatedAt: new Date(),
        });
        const view = await compiled.findView(tx, id);
        expect(view).toMatchObject({ id, title: 'in a transaction', priority: 'urgent', tags: ['x'] });
        expect(await compiled.findView(app.db, id)).toBeUndefined(); // not committed: another connection
        throw new Error('rollback');
      })
      .catch((err: Error) => expect(err.message).toBe('rollback'));
  });
});
