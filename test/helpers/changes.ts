import type { FastifyInstance } from 'fastify';

/**
 * Waits until every transaction that began before now has ended: the feed serves an event only once all
 * older transactions (of any test, on the whole server) are done, so reads right after a write wait for it.
 */
export async function settled(db: FastifyInstance['db']) {
  const { rows } = await db.$client.query<{ x: string }>('SELECT pg_current_xact_id()::text AS x');
  const x = BigInt(rows[0]!.x);
  for (let i = 0; i < 400; i++) {
    const r = await db.$client.query<{ m: string }>(
      'SELECT pg_snapshot_xmin(pg_current_snapshot())::text AS m',
    );
    if (BigInt(r.rows[0]!.m) > x) return;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  throw new Error('an older transaction is still open after 10 s');
}
