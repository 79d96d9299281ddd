import type { FastifyBaseLogger } from 'fastify';
import type { Executor } from '../../db/client.js';

// The job queue's interface as the brief defines it (owner: src/modules/jobs); replaced by the real
// module's types when it lands.

export interface JobContext {
  jobId: string;
  attempt: number;
  maxAttempts: number;
  log: FastifyBaseLogger;
  progress(done: number, total: number): Promise<void>;
}

export interface JobDefinition<P = unknown> {
  kind: string;
  maxAttempts?: number;
  handler(payload: P, ctx: JobContext): Promise<unknown>;
}

export class PermanentJobError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'PermanentJobError';
  }
}

export interface JobEnqueuer {
  enqueue(
    ex: Executor,
    kind: string,
    payload: object,
    opts?: { runAt?: Date; maxAttempts?: number; jobKey?: string; createdBy?: string; track?: boolean },
  ): Promise<string>;
}
