import v8 from 'node:v8';

/**
 * V8 settings of a server process (the single process, the cluster primary and each HTTP worker), set as
 * it starts. An option given to node itself wins (`node --heap-growing-percent=100 …`).
 *
 * `--heap-growing-percent=50`: V8 lets the old generation grow to several times its live size between full
 * collections: under load an API process (about 50 MB live) reached 230 MB RSS, mostly garbage. Growing by at
 * most 50 % between collections keeps it near 180 MB for a few percent more GC time.
 *
 * `--no-allocation-site-pretenuring`: after a burst of writes, V8 had learnt that objects made by some code
 * live long (they did, while many requests were in flight) and went on allocating that code's objects in
 * the old generation. Reads make short-lived objects with the same code. Every minor GC then kept alive the
 * young objects those dead old ones pointed to and promoted them: about 1 MB per scavenge, pauses of 3–10 ms
 * instead of under 1 ms, and a paced list's p99 above 10 ms for a minute after a create burst (README
 * "Using every core"). A request's objects die young and a server's lasting state is made once, at start-up:
 * allocating young is right for this workload.
 */
export const SERVER_V8_FLAGS: readonly string[] = [
  '--heap-growing-percent=50',
  '--no-allocation-site-pretenuring',
];

/** `--no-foo_bar=1` → `foo-bar`: V8 takes either spelling, with or without `no-`. */
function optionName(arg: string): string {
  return arg
    .replace(/^--(no-)?/, '')
    .replace(/=.*$/, '')
    .replaceAll('_', '-');
}

/** The flags of SERVER_V8_FLAGS that node's own options (`execArgv`) leave to us. */
export function serverV8Flags(execArgv: readonly string[]): string[] {
  const given = new Set(execArgv.filter((a) => a.startsWith('--')).map(optionName));
  return SERVER_V8_FLAGS.filter((f) => !given.has(optionName(f)));
}

/** Sets them: first thing in the process, before the code they change runs hot. */
export function tuneV8(execArgv: readonly string[] = process.execArgv): void {
  for (const flag of serverV8Flags(execArgv)) v8.setFlagsFromString(flag);
}
