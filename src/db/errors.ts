/** What a PostgreSQL error means to the caller, looking through drizzle's wrapping (`cause`). */

const UNAVAILABLE_SQLSTATES = new Set([
  '57P01',
  '57P02',
  '57P03',
  '53300',
  '57014',
  '25P03',
  '40001',
  '40P01',
]);
const UNAVAILABLE_NODE_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  'ENOTFOUND',
  'EAI_AGAIN',
]);
const UNAVAILABLE_MESSAGES = [
  'Connection terminated',
  'timeout exceeded when trying to connect',
  'Client has encountered a connection error',
  'Connection ended unexpectedly',
  'terminating connection',
];

/**
 * True when an error (or one of its causes — drizzle wraps pg errors) means the database is
 * unreachable, restarting, overloaded or timed out: the client should retry later (503), not fix its request.
 * A socket error counts only when it is PostgreSQL's: inside a failed query, or a connection attempt
 * (any syscall: DbClient marks errors raised while connecting).
 * The client's own socket (a request aborted mid-body is an ECONNRESET too) is not a database outage.
 */
export function isDatabaseUnavailable(err: unknown): boolean {
  let inQuery = false;
  for (
    let e = err, depth = 0;
    e && typeof e === 'object' && depth < 5;
    e = (e as { cause?: unknown }).cause, depth++
  ) {
    const o = e as {
      code?: unknown;
      message?: unknown;
      query?: unknown;
      syscall?: unknown;
      databaseConnection?: unknown;
    };
    if (typeof o.query === 'string') inQuery = true;
    const code = o.code;
    if (typeof code === 'string') {
      if (code.startsWith('08') || UNAVAILABLE_SQLSTATES.has(code)) return true;
      const connecting =
        o.syscall === 'connect' || o.syscall === 'getaddrinfo' || o.databaseConnection === true;
      if (UNAVAILABLE_NODE_CODES.has(code) && (inQuery || connecting)) return true;
    }
    const message = o.message;
    if (typeof message === 'string' && UNAVAILABLE_MESSAGES.some((m) => message.includes(m))) return true;
  }
  return false;
}

/** True when a (drizzle-wrapped) pg error is a unique violation, optionally of one constraint. */
export function isUniqueViolation(err: unknown, constraint?: string): boolean {
  for (let e = err, i = 0; e && typeof e === 'object' && i < 5; e = (e as { cause?: unknown }).cause, i++) {
    const pgErr = e as { code?: unknown; constraint?: unknown };
    if (pgErr.code === '23505') return constraint === undefined || pgErr.constraint === constraint;
  }
  return false;
}
