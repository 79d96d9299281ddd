/**
 * The `err` serializer of every logger: an error becomes its type, code and a message that cannot carry
 * data. A failed query's SQL text and parameters (password hashes, emails, ticket text) and PostgreSQL's
 * `detail` ("Key (email)=(…) already exists") never reach a log line; quoted values in a PostgreSQL
 * message are masked; the SQLSTATE plus the constraint, table and column names say what went wrong.
 */

const MAX_DEPTH = 5;
/** Fields that name schema objects, never row data. */
const PG_NAME_FIELDS = ['schema', 'table', 'column', 'constraint', 'dataType', 'routine'] as const;

type Obj = Record<string, unknown>;

function isPostgresError(e: Obj): boolean {
  return typeof e.code === 'string' && /^[0-9A-Z]{5}$/.test(e.code) && typeof e.severity === 'string';
}

/** Drizzle's wrapper ("Failed query: <sql>\nparams: <values>") and anything else that holds SQL. */
function carriesQuery(e: Obj): boolean {
  return (
    'query' in e ||
    'params' in e ||
    (typeof e.message === 'string' && /^Failed query:|\bparams:/m.test(e.message))
  );
}

function maskQuoted(message: string): string {
  return message.replace(/"[^"]*"/g, '"…"').replace(/'[^']*'/g, "'…'");
}

function describe(err: unknown, depth: number): Obj {
  if (!err || typeof err !== 'object') return { type: typeof err, message: String(err) };
  const e = err as Obj;
  const type = (e.constructor as { name?: string } | undefined)?.name || 'Error';
  const out: Obj = { type };
  if (typeof e.code === 'string' || typeof e.code === 'number') out.code = e.code;
  if (typeof e.statusCode === 'number') out.statusCode = e.statusCode;
  const original = typeof e.message === 'string' ? e.message : '';
  let message = original;
  if (isPostgresError(e)) {
    message = `PostgreSQL ${String(e.severity)} ${String(e.code)}: ${maskQuoted(original)}`;
    for (const f of PG_NAME_FIELDS) if (typeof e[f] === 'string') out[f] = e[f];
  } else if (carriesQuery(e)) {
    message = 'database query failed (SQL and parameters withheld)';
  }
  out.message = message;
  if (typeof e.stack === 'string') {
    // The stack's head repeats the message: keep only the frames when the message was rewritten.
    const frames = e.stack.split('\n').filter((line) => /^\s+at /.test(line));
    out.stack = message === original ? e.stack : [`${type}: ${message}`, ...frames].join('\n');
  }
  if (e.cause !== undefined && depth < MAX_DEPTH) out.cause = describe(e.cause, depth + 1);
  if (Array.isArray(e.errors) && depth < MAX_DEPTH)
    out.errors = e.errors.slice(0, 5).map((inner) => describe(inner, depth + 1));
  return out;
}

export interface SerializedError {
  [key: string]: unknown;
  type: string;
  message: string;
  stack: string;
}

export function serializeError(err: unknown): SerializedError {
  const out = describe(err, 0);
  return { ...out, type: String(out.type), message: String(out.message), stack: String(out.stack ?? '') };
}
