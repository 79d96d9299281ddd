import type { ServerResponse } from 'node:http';
import type { Actor } from '../auth/actor.js';
import { comparePositions, type Position } from './changes.repository.js';
import {
  audienceOf,
  type ChangeEvent,
  type ChangeEventDto,
  type ChangeFilters,
  matchesFilters,
  toDto,
  visibleTo,
} from './changes.service.js';

/**
 * The SSE frame of an event, serialized once however many streams send it: every caller who may see an
 * event sees the same entity (visibility decides whether, never what), so only the first stream pays.
 */
const frames = new WeakMap<ChangeEvent, string>();

function frameOf(event: ChangeEvent): string {
  let frame = frames.get(event);
  if (frame === undefined) {
    frame = `id: ${event.id}\nevent: ${event.type}\ndata: ${JSON.stringify(toDto(event))}\n\n`;
    frames.set(event, frame);
  }
  return frame;
}

const HEARTBEAT = Buffer.from(': heartbeat\n\n');

/** One batch of new events from the hub, in feed order. */
export interface Batch {
  events: readonly { event: ChangeEvent; position: Position }[];
  /**
   * What each audience (same visibility, same filters) receives of the whole batch, encoded once and
   * written as the same bytes to every stream of that audience; null when nothing. Filled by the first
   * stream of each audience.
   */
  rendered: Map<string, Buffer | null>;
}

/** A batch for the hub to offer to its streams. */
export function batchOf(events: Batch['events']): Batch {
  return { events, rendered: new Map() };
}

export type CloseReason = 'session ended' | 'slow consumer' | 'server shutting down' | 'error';

/** The credentials behind a stream: its access token's session and user, and when the token expires. */
export interface StreamSession {
  sessionId: string;
  userId: string;
  /** The access token's `exp`, in ms since the epoch. */
  expiresAtMs: number;
}

export interface LiveStreamOptions {
  /** Bytes that may wait for the client; past it the stream is closed ('slow consumer'). */
  bufferBytes: number;
  onClose(stream: LiveStream, reason: CloseReason | 'client gone'): void;
}

/**
 * One open SSE response. It first catches up from its cursor through the feed (the caller's view), then
 * goes live: the hub hands it every new event in feed order and it keeps those after its cursor that
 * its caller may see. Writes are bounded: a client that stops reading is cut off instead of growing
 * server memory.
 */
export class LiveStream {
  live = false;
  closed = false;
  private _actor: Actor;
  /** Streams with the same audience receive the same frames of a batch (see Batch.rendered). */
  private audience: string;
  private readonly filterKey: string;

  constructor(
    readonly res: ServerResponse,
    actor: Actor,
    readonly session: StreamSession,
    readonly filters: ChangeFilters,
    public cursor: Position,
    private readonly opts: LiveStreamOptions,
  ) {
    this._actor = actor;
    this.filterKey = `${filters.types?.join(',') ?? ''}|${filters.ticketId ?? ''}`;
    this.audience = `${audienceOf(actor)}|${this.filterKey}`;
    res.on('close', () => this.finish('client gone'));
  }

  /** Replaced by the hub's session re-check: the view follows the user's current role. */
  get actor(): Actor {
    return this._actor;
  }

  set actor(actor: Actor) {
    this._actor = actor;
    this.audience = `${audienceOf(actor)}|${this.filterKey}`;
  }

  private write(chunk: string | Buffer): void {
    if (this.closed) return;
    this.res.write(chunk);
    if (this.res.writableLength > this.opts.bufferBytes) this.close('slow consumer');
  }

  send(event: ChangeEventDto): void {
    this.write(`id: ${event.id}\nevent: ${event.type}\ndata: ${JSON.stringify(event)}\n\n`);
  }

  /**
   * New events from the hub, in feed order: those new to this stream that match its filters and that its
   * caller may see go out as one write (one syscall per stream per batch, not per event). A live stream is
   * level with the hub, so the whole batch is new to it: its bytes are those of every stream of its audience,
   * rendered and encoded once. Only a stream whose cursor lies inside the batch (it caught up past part of
   * it) picks its frames itself.
   */
  offer(batch: Batch): void {
    if (!this.live || this.closed || batch.events.length === 0) return;
    const events = batch.events;
    if (comparePositions(events[0]!.position, this.cursor) > 0) {
      let out = batch.rendered.get(this.audience);
      if (out === undefined) {
        const text = this.render(events);
        out = text ? Buffer.from(text) : null;
        batch.rendered.set(this.audience, out);
      }
      this.cursor = events.at(-1)!.position;
      if (out) this.write(out);
      return;
    }
    const text = this.render(events.filter(({ position }) => comparePositions(position, this.cursor) > 0));
    if (comparePositions(events.at(-1)!.position, this.cursor) > 0) this.cursor = events.at(-1)!.position;
    if (text) this.write(text);
  }

  /** The frames of these events that match this stream's filters and that its caller may see. */
  private render(events: Batch['events']): string {
    let out = '';
    for (const { event } of events) {
      if (matchesFilters(event, this.filters) && visibleTo(this._actor, event)) out += frameOf(event);
    }
    return out;
  }

  heartbeat(): void {
    this.write(HEARTBEAT);
  }

  /** Ends the stream with a last `close` event naming the reason (EventSource clients see it before the end). */
  close(reason: CloseReason): void {
    if (this.closed) return;
    this.closed = true;
    try {
      this.res.end(`event: close\ndata: ${JSON.stringify({ reason })}\n\n`);
    } catch {
      // the socket is already gone
    }
    // A client that reads nothing would keep the socket (and its buffer) forever.
    setTimeout(() => this.res.destroy(), 1000).unref();
    this.finish(reason);
  }

  private finished = false;

  private finish(reason: CloseReason | 'client gone'): void {
    this.closed = true;
    if (this.finished) return;
    this.finished = true;
    this.opts.onClose(this, reason);
  }
}
