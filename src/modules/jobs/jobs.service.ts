import type { Database, Executor } from '../../db/client.js';
import { NotFoundError } from '../../lib/errors.js';
import type { Actor } from '../auth/actor.js';
import {
  DEFAULT_MAX_ATTEMPTS,
  type EnqueueOptions,
  type JobDefinition,
  type JobSchedule,
} from './job-definition.js';
import type { JobsRepository, JobView } from './jobs.repository.js';

const KIND = /^[a-z][a-z0-9_.:-]{0,99}$/;

function jobNotFound(): NotFoundError {
  return new NotFoundError('JOB_NOT_FOUND', 'Job not found', 'No job with this id is visible to you.');
}

/**
 * Durable jobs: enqueue() in the caller's transaction, and the job view for GET /jobs/{id}.
 * Job kinds are registered by the composition root (register()) before anything is enqueued; enqueueing
 * an unknown kind is a programming error and throws.
 */
export function createJobsService({ db, jobs }: { db: Database; jobs: JobsRepository }) {
  const definitions = new Map<string, JobDefinition>();
  const schedules: JobSchedule[] = [];

  return {
    /**
     * Adds a module's job kinds and its recurring schedules (the composition root calls it once per
     * module, before the runner starts). A kind registered twice is a wiring error.
     */
    register(defs: readonly JobDefinition[], recurring: readonly JobSchedule[] = []): void {
      for (const def of defs) {
        if (!KIND.test(def.kind)) throw new Error(`job kind "${def.kind}" is not a valid name`);
        if (definitions.has(def.kind)) throw new Error(`job kind "${def.kind}" is registered twice`);
        definitions.set(def.kind, def);
      }
      schedules.push(...recurring);
    },

    definitions(): JobDefinition[] {
      return [...definitions.values()];
    },

    schedules(): JobSchedule[] {
      return [...schedules];
    },

    /**
     * Enqueues a job on `ex`: pass the transaction of the change that causes the job, so the job exists
     * if and only if that change commits (it starts within milliseconds of the commit, via NOTIFY).
     * Returns the job id.
     */
    async enqueue(ex: Executor, kind: string, payload: object, opts: EnqueueOptions = {}): Promise<string> {
      const def = definitions.get(kind);
      if (!def) throw new Error(`unknown job kind "${kind}" (register its definition first)`);
      return jobs.add(ex, {
        kind,
        payload,
        runAt: opts.runAt ?? null,
        maxAttempts: opts.maxAttempts ?? def.maxAttempts ?? DEFAULT_MAX_ATTEMPTS,
        jobKey: opts.jobKey ?? null,
        track: opts.track === true || opts.createdBy !== undefined,
        createdBy: opts.createdBy ?? null,
        queue: opts.queue ?? null,
      });
    },

    /** GET /jobs/{id}: its creator or an admin; anyone else gets the same 404 as for a missing job. */
    async get(actor: Actor, id: string): Promise<Omit<JobView, 'createdBy'>> {
      const job = await jobs.find(db, id);
      if (!job) throw jobNotFound();
      if (actor.role !== 'admin' && job.createdBy !== actor.id) throw jobNotFound();
      const { createdBy: _createdBy, ...view } = job;
      return view;
    },
  };
}

export type JobsService = ReturnType<typeof createJobsService>;
