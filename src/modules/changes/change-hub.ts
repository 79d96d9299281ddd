import type { FastifyBaseLogger } from 'fastify';
import pg from 'pg';
import type { Database } from '../../db/client.js';
import { CHANGE_CHANNEL } from './change-announcer.js';
import { batchOf, type LiveStream } from './change-stream.js';
import { type ChangesRepository, comparePositions, type Position, positionOf } from './changes.repository.js';
import { type ChangeEvent, toChangeEvent } from './changes.service.js';
import { StreamSessions } from './stream-sessions.js';

const BATCH = 1000;
const FAN_OUT_SLICE = 200;
/**
 * Polls (and so fan-outs) start at most this often: a notification within it waits for the rest of it. With a
 * thousand streams every fan-out costs a write per stream, so changes arriving one by one at 50/s made
 * 50,000 writes a second; gathered, a burst costs one write per stream. At most this much delay is added.
 */
const POLL_INTERVAL_MS = 50;

export interface ChangeHubOptions {
  db: Database;
  changes: ChangesRepository;
  /** For the dedicated LISTEN connection (outside the pool: a pooled client would be handed to others). */
  databaseUrl: string;
  log: FastifyBaseLogger;
  heartbeatMs: number;
  authCheckMs: number;
  streamsPerUser: number;
  /** Safety net while streams are open: a poll even without a notification (lost during a reconnect). */
  fallbackPollMs?: number;
}

/**
 * One per process: fans committed change events out to this instance's open streams. Commits on any
 * instance reach it through PostgreSQL LISTEN/NOTIFY (the writer announces its transaction id once the
 * change is written, see change-announcer.ts); it then reads the feed once for all streams and offers
 * each event to each live stream, which applies its caller's view. Started with the first stream; while
 * it has none it reads nothing. The listener reconnects and re-subscribes after a lost connection, then
 * polls so nothing committed meanwhile is missed.
 */
export class ChangeHub {
  readonly streams = new Set<LiveStream>();
  private readonly perUser = new Map<string, number>();
  private position: Position | null = null;
  private client: pg.Client | null = null;
  private starting: Promise<void> | null = null;
  private stopped = false;
  private polling = false;
  private pollAgain = false;
  /** Changes were announced while there were no streams to read them for. */
  stale = false;
  /** The newest transaction id a notification announced; polls retry until it has been served. */
  private announced = 0n;
  private retryMs = 0;
  private retryTimer: NodeJS.Timeout | null = null;
  private lastPollAt = Number.NEGATIVE_INFINITY;
  private throttleTimer: NodeJS.Timeout | null = null;
  private timers: NodeJS.Timeout[] = [];
  private reconnectDelay = 100;
  private rechecking = false;
  /** Session checks of opening and open streams, batched: one query at a time for all of them. */
  readonly sessions: StreamSessions;

  constructor(private readonly opts: ChangeHubOptions) {
    this.sessions = new StreamSessions((ids) => opts.changes.liveSessions(opts.db, ids));
  }

  /** Where live delivery stands (null before the first start). */
  get current(): Position | null {
    return this.position;
  }

  /**
   * Where a stream opened now without a cursor starts: the hub's position, moved to the feed's head first
   * when changes were announced while it had no streams (it does not read the feed for nobody).
   */
  async livePosition(): Promise<Position> {
    if (this.stale && this.streams.size === 0) {
      this.stale = false;
      const head = await this.opts.changes.head(this.opts.db);
      if (!this.position || comparePositions(head, this.position) > 0) this.position = head;
    }
    return this.position ?? this.opts.changes.head(this.opts.db);
  }

  /** Connects the listener and learns the feed's head; idempotent. */
  start(): Promise<void> {
    if (!this.starting) {
      this.starting = (async () => {
        await this.listen();
        this.position = await this.opts.changes.head(this.opts.db);
        const fallback = this.opts.fallbackPollMs ?? 2000;
        this.timers.push(
          setInterval(() => {
            for (const s of this.streams) if (s.live) s.heartbeat();
          }, this.opts.heartbeatMs),
          setInterval(() => void this.recheckAll(), this.opts.authCheckMs),
          setInterval(() => {
            if (this.streams.size > 0) this.poll();
          }, fallback),
        );
        for (const t of this.timers) t.unref();
      })().catch((err) => {
        this.starting = null;
        throw err;
      });
    }
    return this.starting;
  }

  private async listen(): Promise<void> {
    const client = new pg.Client({
      connectionString: this.opts.databaseUrl,
      application_name: 'helpdesk-changes-listener',
      keepAlive: true,
    });
    client.on('notification', (msg) => {
      if (msg.channel !== CHANGE_CHANNEL) return;
      if (msg.payload && /^\d+$/.test(msg.payload)) {
        const xid = BigInt(msg.payload);
        if (xid > this.announced) this.announced = xid;
      }
      // Nobody to deliver to: no read. The next stream starts from the feed's head (livePosition()).
      if (this.streams.size === 0) this.stale = true;
      else this.poll();
    });
    client.on('error', (err) => {
      this.opts.log.warn({ err }, 'change listener connection lost; reconnecting');
      this.reconnect(client);
    });
    client.on('end', () => this.reconnect(client));
    await client.connect();
    await client.query(`LISTEN ${CHANGE_CHANNEL}`);
    this.client = client;
    this.reconnectDelay = 100;
  }

  private reconnect(dead: pg.Client): void {
    if (this.stopped || this.client !== dead) return;
    this.client = null;
    dead.removeAllListeners('end');
    dead.end().catch(() => {});
    const attempt = () => {
      if (this.stopped) return;
      this.listen()
        .then(() => {
          this.opts.log.info('change listener re-subscribed');
          this.poll(); // whatever committed while we were away
        })
        .catch((err) => {
          this.opts.log.warn({ err }, 'change listener reconnect failed');
          this.reconnectDelay = Math.min(this.reconnectDelay * 2, 5000);
          setTimeout(attempt, this.reconnectDelay).unref();
        });
    };
    setTimeout(attempt, this.reconnectDelay).unref();
  }

  /** Reads what committed since the last poll (one query for all streams) and offers it to them. */
  poll(): void {
    if (this.polling) {
      this.pollAgain = true;
      return;
    }
    if (!this.position || this.stopped) return;
    const wait = this.lastPollAt + POLL_INTERVAL_MS - performance.now();
    if (wait > 0) {
      if (!this.throttleTimer) {
        this.throttleTimer = setTimeout(() => {
          this.throttleTimer = null;
          this.poll();
        }, wait);
        this.throttleTimer.unref();
      }
      return;
    }
    this.lastPollAt = performance.now();
    this.polling = true;
    this.pollOnce()
      .catch((err) => this.opts.log.warn({ err }, 'change fan-out poll failed'))
      .finally(() => {
        this.polling = false;
        if (this.pollAgain) {
          this.pollAgain = false;
          this.poll();
        } else if (this.position && BigInt(this.position.xid) <= this.announced) {
          // An announced transaction is still behind the horizon (an older one is running): look again soon.
          this.retryMs = Math.min(this.retryMs ? this.retryMs * 2 : 20, 500);
          if (!this.retryTimer) {
            this.retryTimer = setTimeout(() => {
              this.retryTimer = null;
              this.poll();
            }, this.retryMs);
            this.retryTimer.unref();
          }
        } else {
          this.retryMs = 0;
        }
      });
  }

  private async pollOnce(): Promise<void> {
    for (;;) {
      const { rows, horizon } = await this.opts.changes.listAfter(this.opts.db, {
        after: this.position!,
        limit: BATCH,
      });
      if (rows.length > 0) {
        const batch = rows.map((row) => ({ event: toChangeEvent(row), position: positionOf(row) }));
        this.position = batch.at(-1)!.position;
        await this.fanOut(batch);
      }
      if (rows.length < BATCH) {
        if (comparePositions(horizon, this.position!) > 0) this.position = horizon;
        return;
      }
    }
  }

  /**
   * Offers a batch to every stream, FAN_OUT_SLICE streams per turn of the event loop: with thousands of
   * streams one synchronous pass would hold the loop long enough for request transactions (which keep
   * their pool connection across awaits) to pile up behind it.
   */
  private async fanOut(events: { event: ChangeEvent; position: Position }[]): Promise<void> {
    const batch = batchOf(events);
    const streams = [...this.streams];
    for (let i = 0; i < streams.length; i += FAN_OUT_SLICE) {
      if (i > 0) await new Promise((resolve) => setImmediate(resolve));
      for (let j = i; j < Math.min(i + FAN_OUT_SLICE, streams.length); j++) streams[j]!.offer(batch);
    }
  }

  /**
   * Re-checks every open stream's credentials at once: token expiry locally, then one query for all their
   * sessions (revoked by logout, expired, user deactivated → 'session ended'); a role change applies to the
   * stream's view. A failed query leaves the streams open until the next round.
   */
  private async recheckAll(): Promise<void> {
    if (this.rechecking || this.streams.size === 0) return;
    this.rechecking = true;
    try {
      const now = Date.now();
      const open: LiveStream[] = [];
      for (const s of this.streams) {
        if (s.closed) continue;
        if (s.session.expiresAtMs <= now) s.close('session ended');
        else open.push(s);
      }
      const actors = await Promise.all(
        open.map((s) => this.sessions.check(s.session.sessionId, s.session.userId)),
      );
      open.forEach((s, i) => {
        const actor = actors[i];
        if (!actor) s.close('session ended');
        else s.actor = actor;
      });
    } catch (err) {
      this.opts.log.warn({ err }, 'change stream session re-check failed; retried next round');
    } finally {
      this.rechecking = false;
    }
  }

  /** Counts a stream against its user's limit; false when the user already has the maximum open. */
  reserve(userId: string): boolean {
    const n = this.perUser.get(userId) ?? 0;
    if (n >= this.opts.streamsPerUser) return false;
    this.perUser.set(userId, n + 1);
    return true;
  }

  release(userId: string): void {
    const n = (this.perUser.get(userId) ?? 1) - 1;
    if (n <= 0) this.perUser.delete(userId);
    else this.perUser.set(userId, n);
  }

  add(stream: LiveStream): void {
    this.streams.add(stream);
    // Announced while the hub had no streams (after livePosition() looked): read it now.
    if (this.stale) {
      this.stale = false;
      this.poll();
    }
  }

  remove(stream: LiveStream): void {
    this.streams.delete(stream);
  }

  /** Closes every stream (with a reason) and the listener. */
  async stop(): Promise<void> {
    this.stopped = true;
    for (const t of this.timers) clearInterval(t);
    if (this.retryTimer) clearTimeout(this.retryTimer);
    if (this.throttleTimer) clearTimeout(this.throttleTimer);
    for (const s of [...this.streams]) s.close('server shutting down');
    const client = this.client;
    this.client = null;
    if (client) {
      client.removeAllListeners('end');
      await client.end().catch(() => {});
    }
  }
}
