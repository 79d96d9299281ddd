import http from 'node:http';
import type { FastifyInstance } from 'fastify';
import pg from 'pg';
import { CHANGE_CHANNEL } from '../../src/modules/changes/change-announcer.js';
import { FEED_HORIZON_SQL } from '../../src/modules/changes/changes.repository.js';

/** One announcement heard on the change feed's channel: its payload (a transaction id) and when it came. */
export interface Announcement {
  payload: string;
  at: number;
}

/**
 * A connection of its own LISTENing on the change feed's channel (notifications are per database): every
 * announcement is pushed to `heard` as it arrives. The caller ends `client`.
 */
export async function listenToAnnouncements(
  url: string,
): Promise<{ client: pg.Client; heard: Announcement[] }> {
  const heard: Announcement[] = [];
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  client.on('notification', (n) => {
    if (n.channel === CHANGE_CHANNEL) heard.push({ payload: n.payload ?? '', at: Date.now() });
  });
  await client.query(`LISTEN ${CHANGE_CHANNEL}`);
  return { client, heard };
}

/**
 * Waits until every transaction that began before now has ended: the feed serves an event only once all
 * older transactions (of any test on this database) are done, so reads right after a write wait for it.
 */
export async function settled(db: FastifyInstance['db']) {
  const { rows } = await db.$client.query<{ x: string }>('SELECT pg_current_xact_id()::text AS x');
  const x = BigInt(rows[0]!.x);
  for (let i = 0; i < 400; i++) {
    const r = await db.$client.query<{ m: string }>(`SELECT ${FEED_HORIZON_SQL}::text AS m`);
    if (BigInt(r.rows[0]!.m) > x) return;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  throw new Error('an older transaction is still open after 10 s');
}

export interface SseFrame {
  id?: string;
  event?: string;
  data?: string;
  retry?: number;
  comment?: string;
}

export interface SseClient {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  frames: SseFrame[];
  /** Resolves with the first frame (already received or to come) that matches. */
  next(match: (f: SseFrame) => boolean, timeoutMs?: number): Promise<SseFrame>;
  /** Resolves when the server ends the response. */
  ended: Promise<void>;
  body: string;
  pause(): void;
  resume(): void;
  close(): void;
}

/**
 * A minimal Server-Sent Events client over a real HTTP connection (Node 20 has no EventSource): parses
 * `id:`, `event:`, `data:`, `retry:` and comment lines into frames.
 */
export function openSse(url: string, headers: Record<string, string> = {}): Promise<SseClient> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { headers: { accept: 'text/event-stream', ...headers } }, (res) => {
      const frames: SseFrame[] = [];
      const waiters: Array<{ match: (f: SseFrame) => boolean; done: (f: SseFrame) => void }> = [];
      let buffer = '';
      let body = '';
      let endedResolve!: () => void;
      const ended = new Promise<void>((r) => {
        endedResolve = r;
      });
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        body += chunk;
        buffer += chunk;
        let cut = buffer.indexOf('\n\n');
        while (cut >= 0) {
          const block = buffer.slice(0, cut);
          buffer = buffer.slice(cut + 2);
          cut = buffer.indexOf('\n\n');
          const frame: SseFrame = {};
          for (const line of block.split('\n')) {
            if (line.startsWith(':')) frame.comment = line.slice(1).trim();
            else {
              const i = line.indexOf(':');
              const field = i < 0 ? line : line.slice(0, i);
              const value = i < 0 ? '' : line.slice(i + 1).replace(/^ /, '');
              if (field === 'id') frame.id = value;
              else if (field === 'event') frame.event = value;
              else if (field === 'data')
                frame.data = frame.data === undefined ? value : `${frame.data}\n${value}`;
              else if (field === 'retry') frame.retry = Number(value);
            }
          }
          frames.push(frame);
          for (const w of [...waiters]) {
            if (w.match(frame)) {
              waiters.splice(waiters.indexOf(w), 1);
              w.done(frame);
            }
          }
        }
      });
      res.on('end', () => endedResolve());
      res.on('close', () => endedResolve());
      resolve({
        status: res.statusCode ?? 0,
        headers: res.headers,
        frames,
        ended,
        get body() {
          return body;
        },
        next(match, timeoutMs = 10_000) {
          const found = frames.find(match);
          if (found) return Promise.resolve(found);
          return new Promise((done, fail) => {
            const timer = setTimeout(
              () => fail(new Error(`no matching SSE frame within ${timeoutMs} ms`)),
              timeoutMs,
            );
            waiters.push({
              match,
              done: (f) => {
                clearTimeout(timer);
                done(f);
              },
            });
          });
        },
        pause: () => res.pause(),
        resume: () => res.resume(),
        close: () => req.destroy(),
      });
    });
    req.on('error', reject);
  });
}
