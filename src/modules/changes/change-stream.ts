import type { ServerResponse } from 'node:http';
import type { Actor } from '../auth/actor.js';
import { comparePositions, type Position } from './changes.repository.js';
import {
  type ChangeEvent,
  type ChangeEventDto,
  type ChangeFilters,
  matchesFilters,
  viewFor,
} from './changes.service.js';

/**
 * The SSE frame of an event, serialized once however many streams send it: every caller who may see an
 * event sees the same entity (visibility decides whether, never what), so only the first stream pays.
 */
const frames = new WeakMap<ChangeEvent, string>();

function frameOf(event: ChangeEvent, view: ChangeEventDto): string {
  let frame = frames.get(event);
  if (frame === undefined) {
    frame = `id: ${view.id}\nevent: ${view.type}\ndata: ${JSON.stringify(view)}\n\n`;
    frames.set(event, frame);
  }
  return frame;
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

  constructor(
    readonly res: ServerResponse,
    /** Replaced by the hub's session re-check: the view follows the user's current role. */
    public actor: Actor,
    readonly session: StreamSession,
    readonly filters: ChangeFilters,
    public cursor: Position,
    private readonly opts: LiveStreamOptions,
  ) {
    res.on('close', () => this.finish('client gone'));
  }

  private write(chunk: string): void {
    if (this.closed) return;
    this.res.write(chunk);
    if (this.res.writableLength > this.opts.bufferBytes) this.close('slow consumer');
  }

  send(event: ChangeEventDto): void {
    this.write(`id: ${event.id}\nevent: ${event.type}\ndata: ${JSON.stringify(event)}\n\n`);
  }

  /**
   * New events from the hub, in feed order: those new to this stream that match its filters and that its
   * caller may see go out as one write (one syscall per stream per batch, not per event).
   */
  offer(batch: readonly { event: ChangeEvent; position: Position }[]): void {
    if (!this.live || this.closed) return;
    let out = '';
    for (const { event, position } of batch) {
      if (comparePositions(position, this.cursor) <= 0) continue;
      this.cursor = position;
      if (!matchesFilters(event, this.filters)) continue;
      const view = viewFor(this.actor, event);
      if (view) out += frameOf(event, view);
    }
    if (out) this.write(out);
  }

  heartbeat(): void {
    this.write(': heartbeat\n\n');
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
