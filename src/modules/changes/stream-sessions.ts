import type { Actor } from '../auth/actor.js';
import type { LiveSession } from './changes.repository.js';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
/** Sessions per query (one uuid[] parameter). */
const CHUNK = 1000;

interface Waiter {
  userId: string;
  resolve(actor: Actor | null): void;
  reject(err: unknown): void;
}

/**
 * Whether the sessions behind open streams are still live, asked of the database in batches: every check
 * made while a query runs (or in the same tick) waits for the next one, which asks about all of them at
 * once. So streams opening together, and the periodic re-check of every open stream, cost one query (one
 * pool connection) at a time instead of one or two per stream: requests never queue behind them.
 */
export class StreamSessions {
  private pending = new Map<string, Waiter[]>();
  private running = false;

  constructor(private readonly lookup: (sessionIds: readonly string[]) => Promise<LiveSession[]>) {}

  /** The session's user as an Actor (current role) while the session is live and the user active; else null. */
  check(sessionId: string, userId: string): Promise<Actor | null> {
    if (!UUID.test(sessionId)) return Promise.resolve(null);
    return new Promise((resolve, reject) => {
      const waiters = this.pending.get(sessionId);
      if (waiters) waiters.push({ userId, resolve, reject });
      else this.pending.set(sessionId, [{ userId, resolve, reject }]);
      if (!this.running) {
        this.running = true;
        setImmediate(() => void this.drain());
      }
    });
  }

  private async drain(): Promise<void> {
    try {
      while (this.pending.size > 0) {
        const batch = this.pending;
        this.pending = new Map();
        const ids = [...batch.keys()];
        for (let i = 0; i < ids.length; i += CHUNK) {
          const chunk = ids.slice(i, i + CHUNK);
          let live: Map<string, Actor>;
          try {
            live = new Map((await this.lookup(chunk)).map((s) => [s.sessionId, s.actor]));
          } catch (err) {
            for (const id of chunk) for (const w of batch.get(id)!) w.reject(err);
            continue;
          }
          for (const id of chunk) {
            const actor = live.get(id) ?? null;
            for (const w of batch.get(id)!) w.resolve(actor && actor.id === w.userId ? actor : null);
          }
        }
      }
    } finally {
      this.running = false;
    }
  }
}
