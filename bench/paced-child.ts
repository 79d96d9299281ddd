/**
 * A paced run in a process of its own (forked by pacedInFreshProcess in bench/paced.ts): the load generator's
 * timing is then not disturbed by the bench process's own state (the heaps of the earlier load runs,
 * autocannon's leftovers, the RSS sampler). It gets the scenario as data (its paths and bodies drawn up front),
 * runs paced(), sends the result back and exits.
 */
import { type PacedJob, paced } from './paced.js';

process.once('message', (job: PacedJob) => {
  let i = 0;
  let j = 0;
  const scenario = {
    ...job.scenario,
    path: () => job.paths[i++ % job.paths.length]!,
    body: job.bodies ? () => job.bodies![j++ % job.bodies!.length]! : undefined,
  };
  paced(job.baseUrl, scenario, job.opts).then(
    (result) => process.send!(result, () => process.exit(0)),
    (err: unknown) => {
      console.error(err);
      process.exit(1);
    },
  );
});
