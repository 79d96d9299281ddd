import { sql } from 'drizzle-orm';
import type { Database } from '../../db/client.js';

/** The channel every instance's change hub listens on (src/modules/changes/change-hub.ts). */
export const CHANGE_CHANNEL = 'change_events';

/**
 * How long after a change is written its announcement waits, gathering the changes written meanwhile. The
 * writing transaction usually commits within it; one that commits later is found by the hub's retry
 * (it keeps looking until the announced transaction id is behind it).
 */
const GATHER_MS = 3;

/**
 * Wakes the live streams of every instance after changes are written: one `NOTIFY change_events` with the
 * newest transaction id this process wrote, sent on its own, after the write, for all the changes written
 * within GATHER_MS.
 *
 * Why not NOTIFY inside the writing transaction (a trigger on change_events): PostgreSQL serializes the
 * commits of notifying transactions on one lock held through the commit's WAL flush, so concurrent writes
 * lost group commit, and every write paid a notification (measured: a fifth of add-comment throughput).
 * An announcement outside the transaction takes that lock only for a statement that writes no WAL.
 *
 * What it gives up: a notification may arrive before the commit (the hub retries until the transaction is
 * behind it) or for a change that then rolls back (the hub finds nothing new). A process that dies between
 * a commit and its announcement leaves it to the hubs' fallback poll (2 s while streams are open).
 */
export class ChangeAnnouncer {
  private newest = 0n;
  private timer: NodeJS.Timeout | null = null;

  constructor(
    private readonly db: Database,
    private readonly onError: (err: unknown) => void,
  ) {}

  /** A change was written by transaction `xid` (decimal text), or by a statement whose id is unknown. */
  announce(xid?: string): void {
    if (xid) {
      const x = BigInt(xid);
      if (x > this.newest) this.newest = x;
    }
    if (this.timer) return;
    this.timer = setTimeout(() => this.flush(), GATHER_MS);
    this.timer.unref();
  }

  private flush(): void {
    this.timer = null;
    const payload = this.newest > 0n ? this.newest.toString() : '';
    this.newest = 0n;
    // Shutting down: this process's hub is gone, and the others poll while their streams are open.
    if ((this.db.$client as { ending?: boolean }).ending) return;
    this.db.execute(sql`SELECT pg_notify(${CHANGE_CHANNEL}, ${payload})`).catch(this.onError);
  }
}
