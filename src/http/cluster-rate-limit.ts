import cluster, { type Worker } from 'node:cluster';

/**
 * One rate-limit budget across the HTTP workers of a cluster (WEB_CONCURRENCY > 1) without Redis: the
 * counters live in the primary, the workers ask it over the cluster IPC channel. Each worker's store
 * batches the increments of one event-loop turn into one message, so the channel carries a few messages
 * per loop turn, not one per request. With REDIS_URL set, Redis is the shared store instead (it also spans
 * hosts); with a single process the plugin's own in-memory store is used.
 */

/** The fields of @fastify/rate-limit's route options a store receives (mergeParams output). */
interface StoreParams {
  continueExceeding?: boolean;
  exponentialBackoff?: boolean;
  routeInfo?: { method?: string; url?: string };
}

type Callback = (err: Error | null, result?: { current: number; ttl: number }) => void;

interface Ask {
  id: number;
  op: 'incr' | 'read';
  key: string;
  timeWindow: number;
  max: number;
  continueExceeding: boolean;
  exponentialBackoff: boolean;
}
interface Answer {
  id: number;
  current: number;
  ttl: number;
}

const TAG = 'helpdesk:rate-limit';
interface AskMessage {
  [TAG]: 'ask';
  asks: Ask[];
}
interface AnswerMessage {
  [TAG]: 'answer';
  answers: Answer[];
}
function isAsk(m: unknown): m is AskMessage {
  return typeof m === 'object' && m !== null && (m as Record<string, unknown>)[TAG] === 'ask';
}
function isAnswer(m: unknown): m is AnswerMessage {
  return typeof m === 'object' && m !== null && (m as Record<string, unknown>)[TAG] === 'answer';
}

/** How long a worker waits for the primary; then the request is let through (skipOnError), like Redis down. */
const ANSWER_TIMEOUT_MS = 1000;

// ---------------------------------------------------------------- primary

interface Counter {
  current: number;
  /** When the current window started (ms). */
  startMs: number;
  /** Length of the current window (ms): timeWindow, or longer with exponential backoff. */
  windowMs: number;
}

/**
 * The counters, with the semantics of @fastify/rate-limit's LocalStore (fixed window per key, optional
 * continueExceeding / exponentialBackoff). Bounded: expired keys are swept, and past `maxKeys` the least
 * recently touched key is dropped (its budget starts over, as the plugin's own LRU store does).
 */
export class RateLimitCounters {
  private readonly counters = new Map<string, Counter>();

  constructor(
    private readonly maxKeys = 100_000,
    private readonly now: () => number = Date.now,
  ) {}

  get size(): number {
    return this.counters.size;
  }

  apply(a: Omit<Ask, 'id'>): { current: number; ttl: number } {
    const now = this.now();
    let c = this.counters.get(a.key);
    if (a.op === 'read') {
      if (!c || c.startMs + c.windowMs <= now) return { current: 0, ttl: 0 };
      return { current: c.current, ttl: c.startMs + c.windowMs - now };
    }
    if (!c || c.startMs + c.windowMs <= now) {
      c = { current: 1, startMs: now, windowMs: a.timeWindow };
    } else {
      c.current++;
      if (a.continueExceeding && c.current > a.max) {
        c.startMs = now;
        c.windowMs = a.timeWindow;
      } else if (a.exponentialBackoff && c.current > a.max) {
        const ms = a.timeWindow * 2 ** (c.current - a.max - 1);
        c.startMs = now;
        c.windowMs = Number.isSafeInteger(ms) ? ms : Number.MAX_SAFE_INTEGER;
      }
    }
    // Re-inserted: the Map's order is least recently touched first.
    this.counters.delete(a.key);
    this.counters.set(a.key, c);
    if (this.counters.size > this.maxKeys) {
      const oldest = this.counters.keys().next().value;
      if (oldest !== undefined) this.counters.delete(oldest);
    }
    return { current: c.current, ttl: c.startMs + c.windowMs - now };
  }

  sweep(): void {
    const now = this.now();
    for (const [key, c] of this.counters) if (c.startMs + c.windowMs <= now) this.counters.delete(key);
  }
}

/** In the primary: answers every worker's rate-limit questions from one set of counters. */
export function serveRateLimitCounters(): { counters: RateLimitCounters; stop(): void } {
  const counters = new RateLimitCounters();
  const sweeper = setInterval(() => counters.sweep(), 60_000);
  sweeper.unref();
  const onMessage = (worker: Worker, message: unknown) => {
    if (!isAsk(message)) return;
    const answers = message.asks.map((a) => ({ id: a.id, ...counters.apply(a) }));
    if (worker.isConnected()) worker.send({ [TAG]: 'answer', answers } satisfies AnswerMessage);
  };
  cluster.on('message', onMessage);
  return {
    counters,
    stop: () => {
      clearInterval(sweeper);
      cluster.off('message', onMessage);
    },
  };
}

// ---------------------------------------------------------------- worker

let nextId = 1;
const waiting = new Map<number, { cb: Callback; timer: NodeJS.Timeout }>();
let queued: Ask[] = [];
let flushScheduled = false;
let listening = false;

function flush(): void {
  flushScheduled = false;
  const asks = queued;
  queued = [];
  const fail = (err: Error) => {
    for (const a of asks) settle(a.id, err);
  };
  if (!process.connected || !process.send) {
    fail(new Error('cluster primary not connected'));
    return;
  }
  try {
    process.send({ [TAG]: 'ask', asks } satisfies AskMessage, undefined, undefined, (err) => {
      if (err) fail(err);
    });
  } catch (err) {
    fail(err as Error);
  }
}

function settle(id: number, err: Error | null, result?: { current: number; ttl: number }): void {
  const w = waiting.get(id);
  if (!w) return;
  waiting.delete(id);
  clearTimeout(w.timer);
  w.cb(err, result);
}

function ask(a: Omit<Ask, 'id'>, cb: Callback): void {
  if (!listening) {
    listening = true;
    process.on('message', (m: unknown) => {
      if (!isAnswer(m)) return;
      for (const r of m.answers) settle(r.id, null, { current: r.current, ttl: r.ttl });
    });
  }
  const id = nextId++;
  const timer = setTimeout(
    () => settle(id, new Error('cluster primary did not answer the rate-limit count')),
    ANSWER_TIMEOUT_MS,
  );
  timer.unref();
  waiting.set(id, { cb, timer });
  queued.push({ id, ...a });
  if (!flushScheduled) {
    flushScheduled = true;
    // Every request parsed in this loop turn joins the batch; it is sent right after the poll phase.
    setImmediate(flush);
  }
}

/**
 * The store class for @fastify/rate-limit in a cluster worker (`store:` option). Route-level limits get
 * their own key space (method + url), as the plugin's Redis store does.
 */
export class ClusterRateLimitStore {
  private readonly continueExceeding: boolean;
  private readonly exponentialBackoff: boolean;

  constructor(
    params: object,
    private readonly prefix = '',
  ) {
    this.continueExceeding = (params as StoreParams).continueExceeding === true;
    this.exponentialBackoff = (params as StoreParams).exponentialBackoff === true;
  }

  incr(key: string, cb: Callback, timeWindow: number, max: number): void {
    ask(this.ask('incr', key, timeWindow, max), cb);
  }

  read(key: string, cb: Callback, timeWindow: number, max: number): void {
    ask(this.ask('read', key, timeWindow, max), cb);
  }

  child(routeOptions: object): ClusterRateLimitStore {
    const route = (routeOptions as StoreParams).routeInfo ?? {};
    return new ClusterRateLimitStore(routeOptions, `${this.prefix}${route.method}${route.url}-`);
  }

  private ask(op: Ask['op'], key: string, timeWindow: number, max: number): Omit<Ask, 'id'> {
    return {
      op,
      key: this.prefix + key,
      timeWindow,
      max,
      continueExceeding: this.continueExceeding,
      exponentialBackoff: this.exponentialBackoff,
    };
  }
}
