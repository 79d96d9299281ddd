/**
 * Polls `what` every 5 ms until it gives something other than `undefined` or `false`, and returns that;
 * throws after `ms`. For state a test cannot await directly (a notification heard, a stream let go).
 */
export async function until<T>(what: () => T | undefined | false, ms = 5000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = what();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > end) throw new Error(`condition not reached within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 5));
  }
}
