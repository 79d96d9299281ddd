import type { FastifyBaseLogger } from 'fastify';
import type { ChangesService } from './changes.service.js';

/** The job runner's definition shape (src/modules/jobs): a kind, its retry policy and its handler. */
export interface ChangesJobDefinition<P> {
  kind: string;
  maxAttempts?: number;
  handler(payload: P, ctx: { log: FastifyBaseLogger }): Promise<unknown>;
}

export const PRUNE_CHANGES_JOB = 'changes.prune';

/**
 * Retention: events older than CHANGES_RETENTION_DAYS (≥ 7) are deleted, with expired stream tokens, by a
 * recurring job. Idempotent — a retried or doubled run deletes what is still due and nothing else — so
 * it needs no lock of its own.
 */
export function changesJobs(changes: Pick<ChangesService, 'prune'>) {
  const prune: ChangesJobDefinition<Record<string, never>> = {
    kind: PRUNE_CHANGES_JOB,
    maxAttempts: 3,
    async handler(_payload, ctx) {
      const deleted = await changes.prune();
      if (deleted > 0) ctx.log.info({ deleted }, 'change events past retention pruned');
      return { deleted };
    },
  };
  return {
    definitions: [prune],
    schedules: [{ kind: PRUNE_CHANGES_JOB, everySeconds: 3600 }],
  };
}
