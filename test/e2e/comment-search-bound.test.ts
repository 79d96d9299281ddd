import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApp } from '../helpers/app.js';
import { createUser, type TestUser } from '../helpers/factory.js';

let app: FastifyInstance;
let agent: TestUser;
let requester: TestUser;

beforeAll(async () => {
  app = await createTestApp({ RATE_LIMIT_MAX: '10000' });
  [agent, requester] = await Promise.all([
    createUser(app, { role: 'agent' }),
    createUser(app, { role: 'requester' }),
  ]);
});
afterAll(() => app.close());

/**
 * 20,000 characters of short, distinct words: the text that makes the biggest tsvector per byte
 * (every word its own lexeme), so the thread passes PostgreSQL's 1 MiB limit far sooner than prose.
 */
function longComment(n: number, marker: string): string {
  const words: string[] = [marker];
  let length = marker.length;
  for (let i = 0; length < 19_990; i++) {
    const w = `w${n.toString(36)}x${i.toString(36)}`;
    words.push(w);
    length += w.length + 1;
  }
  return words.join(' ').slice(0, 20_000);
}

describe('a long public thread stays writable and searchable', () => {
  it('200 public comments of 20,000 characters: every reply and a description edit succeed; recent text is found', async () => {
    const created = await app.inject({
      method: 'POST',
      url: '/api/v1/tickets',
      headers: requester.auth,
      payload: { title: 'Endless thread', description: 'A ticket that collects a very long discussion.' },
    });
    expect(created.statusCode).toBe(201);
    const id = created.json().id as number;
    const statuses: number[] = [];
    for (let n = 0; n < 200; n++) {
      const res = await app.inject({
        method: 'POST',
        url: `/api/v1/tickets/${id}/comments`,
        headers: n % 2 ? agent.auth : requester.auth,
        payload: { body: longComment(n, `marker${n}q`) },
      });
      statuses.push(res.statusCode);
    }
    expect(statuses.filter((s) => s !== 201)).toEqual([]);

    const edit = await app.inject({
      method: 'PATCH',
      url: `/api/v1/tickets/${id}`,
      headers: agent.auth,
      payload: { description: 'Edited after two hundred replies.' },
    });
    expect(edit.statusCode, edit.body).toBe(200);

    const { rows } = await app.db.$client.query<{ bytes: number }>(
      'SELECT pg_column_size(search) AS bytes FROM tickets WHERE id = $1',
      [id],
    );
    expect(rows[0]!.bytes).toBeLessThan(1024 * 1024);

    for (const word of ['marker199q', 'marker198q', 'Edited']) {
      const found = await app.inject({
        method: 'GET',
        url: `/api/v1/tickets?q=${word}`,
        headers: agent.auth,
      });
      expect(found.statusCode).toBe(200);
      expect(
        found.json().data.map((t: { id: number }) => t.id),
        word,
      ).toContain(id);
    }
  }, 300_000);
});
