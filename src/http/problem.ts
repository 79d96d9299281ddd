import { z } from 'zod';

/** RFC 9457 problem details with the helpdesk's machine `code` and the request's `traceId`. */
export const problemSchema = z
  .object({
    type: z.string().describe('URI reference naming the problem type, e.g. /problems/ticket-not-found'),
    title: z.string(),
    status: z.number().int(),
    code: z.string().describe('Stable machine-readable code, e.g. TICKET_NOT_FOUND'),
    detail: z.string().optional(),
    instance: z.string().optional(),
    traceId: z.string().describe('The request id (X-Request-Id) to quote when reporting a problem'),
    errors: z
      .array(z.object({ path: z.string(), message: z.string() }))
      .optional()
      .describe('Field errors, only for validation failures'),
  })
  .meta({ id: 'Problem' });

export type Problem = z.infer<typeof problemSchema>;

const DESCRIPTIONS: Record<number, string> = {
  400: 'Malformed request (unparseable JSON or wrong content type)',
  401: 'Missing, invalid or expired credentials',
  403: 'Authenticated but not allowed',
  404: 'Not found, or not visible to the caller',
  409: 'Conflict with the current state',
  412: 'If-Match does not match the current version',
  413: 'Body or upload too large',
  415: 'Unsupported media type',
  422: 'Validation failed',
  429: 'Rate limited (see Retry-After)',
  500: 'Unexpected server error',
  503: 'Database unavailable or server overloaded (see Retry-After)',
};

/** Response schemas for the problem statuses a route can answer, for validation-free docs and serialization. */
export function problemResponses<const S extends readonly number[]>(...statuses: S) {
  const out: Record<number, typeof problemSchema> = {};
  for (const s of statuses) out[s] = problemSchema.describe(DESCRIPTIONS[s] ?? 'Problem');
  return out as { [K in S[number]]: typeof problemSchema };
}

/** Problems every route can return: bad input, throttling and database outage. */
export const COMMON_PROBLEMS = [400, 422, 429, 500, 503] as const;
export const AUTHED_PROBLEMS = [...COMMON_PROBLEMS, 401] as const;

export function problemType(code: string): string {
  return `/problems/${code.toLowerCase().replace(/_/g, '-')}`;
}
