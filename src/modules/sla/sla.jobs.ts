import type { JobDefinition, JobSchedule } from '../jobs/job-definition.js';
import { SLA_NOTIFY_JOB, type SlaService } from './sla.service.js';

/**
 * The breach check as a recurring job, registered by the composition root (jobs.register). Every 15 s
 * keeps each mark within 60 s of its due time with room for a slow run or a worker restart.
 */
export const SLA_BREACH_JOB = 'sla.detect_breaches';
export const SLA_BREACH_EVERY_SECONDS = 15;

export function slaJobDefinitions(sla: SlaService): JobDefinition[] {
  return [
    {
      kind: SLA_BREACH_JOB,
      // A failed pass is simply redone by the next scheduled one: no retries piling up behind the schedule.
      maxAttempts: 1,
      async handler() {
        return sla.detectBreaches();
      },
    },
    {
      kind: SLA_NOTIFY_JOB,
      // Retried: the pass that enqueued it has already committed its marks and events.
      maxAttempts: 10,
      async handler(payload: { events: number[] }) {
        return sla.notifyBreaches(payload.events);
      },
    },
  ];
}

export const slaSchedules: JobSchedule[] = [{ kind: SLA_BREACH_JOB, everySeconds: SLA_BREACH_EVERY_SECONDS }];
