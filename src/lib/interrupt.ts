import closeWithGrace from 'close-with-grace';

/**
 * Ctrl-C, taken once. Started with `npm start`, one Ctrl-C reaches the server several times within
 * milliseconds: from the terminal (which signals the whole foreground process group) and again as npm and
 * tsx relay it. close-with-grace would take the second as "force quit" and exit at once, in the middle of
 * the graceful shutdown. So SIGINT is left out of close-with-grace (`skip: ['SIGINT']`) and handled here:
 * the first starts `close()`, those within `sameWithinMs` of it are the same Ctrl-C, and a later one (a
 * person pressing Ctrl-C again) still exits at once. A Ctrl-C while a shutdown begun otherwise (SIGTERM, an
 * error) is under way (`closing()`) is such a second signal too, as close-with-grace has it.
 */
export function onInterrupt(
  close: () => unknown,
  forceExit: () => void,
  opts: { closing?: () => boolean; sameWithinMs?: number } = {},
): () => void {
  const sameWithinMs = opts.sameWithinMs ?? 1000;
  let firstAt: number | undefined;
  const handler = () => {
    const now = Date.now();
    if (firstAt === undefined) {
      firstAt = now;
      if (opts.closing?.()) forceExit();
      else void close();
    } else if (now - firstAt >= sameWithinMs) {
      forceExit();
    }
  };
  process.on('SIGINT', handler);
  return () => process.off('SIGINT', handler);
}

/**
 * close-with-grace for a process that owns its shutdown (the server, the cluster primary, the worker): `fn`
 * runs once, on SIGTERM, an uncaught error, or Ctrl-C taken once (onInterrupt; `signal` is then 'SIGINT'); a
 * Ctrl-C pressed again, or during a shutdown begun otherwise, exits at once. Past `delay` the process exits
 * anyway.
 */
export function closeOnSignals(
  opts: { delay: number; log: { warn(msg: string): void } },
  fn: (how: { signal?: NodeJS.Signals; err?: Error }) => Promise<void>,
): void {
  let closing = false;
  const grace = closeWithGrace({ delay: opts.delay, skip: ['SIGINT'] }, async ({ signal, err }) => {
    closing = true;
    await fn({ signal: signal ?? (err ? undefined : 'SIGINT'), err });
  });
  onInterrupt(
    grace.close,
    () => {
      opts.log.warn('SIGINT again: exiting now');
      process.exit(1);
    },
    { closing: () => closing },
  );
}
