import type { SlaService } from './sla.service.js';

/**
 * The breach check as a recurring job. Shapes follow the jobs module's contract (JobDefinition and a
 * schedule entry); the composition root hands them to the runner. Every 15 s keeps each mark within
 * 60 s of its due time with room for a slow run or a restart.
 */
export const SLA_BREACH_JOB = 'sla.detect_breaches';
export const SLA_BREACH_EVERY_SECONDS = 15;

export function slaJobDefinitions(sla: SlaService) {
  return [
    {
      kind: SLA_BREACH_JOB,
      // A missed run is simply the next one: no retries piling up behind the schedule.
      maxAttempts: 1,
      async handler(_payload: Record<string, never>, _ctx: unknown) {
        return sla.detectBreaches();
      },
    },
  ];
}

export const slaSchedules = [{ kind: SLA_BREACH_JOB, everySeconds: SLA_BREACH_EVERY_SECONDS }];
