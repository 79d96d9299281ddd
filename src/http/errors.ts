import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { hasZodFastifySchemaValidationErrors } from 'fastify-type-provider-zod';
import { isDatabaseUnavailable } from '../db/errors.js';
import { AppError, type FieldError } from '../lib/errors.js';
import { type Problem, problemType } from './problem.js';

const TITLES: Record<number, [string, string]> = {
  400: ['MALFORMED_REQUEST', 'Malformed request'],
  401: ['UNAUTHENTICATED', 'Unauthenticated'],
  403: ['FORBIDDEN', 'Forbidden'],
  404: ['NOT_FOUND', 'Not found'],
  405: ['METHOD_NOT_ALLOWED', 'Method not allowed'],
  406: ['NOT_ACCEPTABLE', 'Not acceptable'],
  408: ['REQUEST_TIMEOUT', 'Request timeout'],
  409: ['CONFLICT', 'Conflict'],
  413: ['PAYLOAD_TOO_LARGE', 'Payload too large'],
  414: ['URI_TOO_LONG', 'URI too long'],
  415: ['MALFORMED_REQUEST', 'Unsupported content type'],
  422: ['VALIDATION_FAILED', 'Validation failed'],
  429: ['RATE_LIMITED', 'Too many requests'],
  431: ['HEADERS_TOO_LARGE', 'Request header fields too large'],
  503: ['SERVICE_UNAVAILABLE', 'Service unavailable'],
};

interface Mapped {
  status: number;
  code: string;
  title: string;
  detail: string;
  errors?: FieldError[];
  headers?: Record<string, string>;
}

function fieldPath(context: string | undefined, instancePath: string): string {
  const parts = instancePath.split('/').filter(Boolean);
  return [context ?? 'body', ...parts].join('.');
}

// @fastify/multipart's errors (attachment uploads), by code: limits are 413, a broken or non-multipart body is 400.
const MULTIPART_ERRORS: Record<string, [number, string]> = {
  FST_REQ_FILE_TOO_LARGE: [413, 'A file is larger than the server accepts (UPLOAD_MAX_BYTES).'],
  FST_FILES_LIMIT: [413, 'Too many files in one request.'],
  FST_FIELDS_LIMIT: [413, 'Too many form fields in one request.'],
  FST_PARTS_LIMIT: [413, 'Too many parts in one multipart request.'],
  FST_INVALID_MULTIPART_CONTENT_TYPE: [400, 'Send the files as multipart/form-data.'],
  FST_PROTO_VIOLATION: [400, 'A form field name is not allowed.'],
  FST_MP_PREMATURE_CLOSE: [400, 'The request ended before the multipart body was complete.'],
  FST_INVALID_JSON_FIELD_ERROR: [400, 'A form field declared as JSON is not valid JSON.'],
};
// The multipart parser (busboy) raises plain Errors, without a status, for a malformed body.
const MALFORMED_MULTIPART =
  /^(Multipart: Boundary not found|Boundary required|Unexpected end of multipart data|The needle cannot)|terminated early due to unexpected end of multipart data/;

function mapMultipartError(fe: FastifyError): Mapped | undefined {
  let entry = typeof fe?.code === 'string' ? MULTIPART_ERRORS[fe.code] : undefined;
  if (!entry && typeof fe?.statusCode !== 'number' && MALFORMED_MULTIPART.test(String(fe?.message)))
    entry = [400, 'The multipart/form-data body is malformed.'];
  if (!entry) return undefined;
  const [status, detail] = entry;
  const [code, title] = TITLES[status]!;
  return { status, code, title, detail };
}

/** Turns anything thrown during a request into the problem it should be answered with. */
export function mapError(err: unknown): Mapped | undefined {
  if (err instanceof AppError) {
    return {
      status: err.status,
      code: err.code,
      title: err.title,
      detail: err.detail,
      errors: err.extra.errors,
      headers: err.extra.headers,
    };
  }
  const fe = err as FastifyError;
  if (hasZodFastifySchemaValidationErrors(fe)) {
    const context = (fe as FastifyError & { validationContext?: string }).validationContext;
    return {
      status: 422,
      code: 'VALIDATION_FAILED',
      title: 'Validation failed',
      detail: `The request ${context ?? 'body'} did not pass validation.`,
      errors: fe.validation!.map((v) => ({
        path: fieldPath(context, v.instancePath),
        message: v.message ?? 'invalid',
      })),
    };
  }
  if (isDatabaseUnavailable(err)) {
    return {
      status: 503,
      code: 'SERVICE_UNAVAILABLE',
      title: 'Service unavailable',
      detail: 'The database is unavailable or too slow right now; try again shortly.',
      headers: { 'retry-after': '2' },
    };
  }
  const multipart = mapMultipartError(fe);
  if (multipart) return multipart;
  const status = typeof fe?.statusCode === 'number' ? fe.statusCode : 500;
  if (status >= 400 && status < 500) {
    const [code, title] = TITLES[status] ?? ['BAD_REQUEST', 'Bad request'];
    let detail = fe.message;
    if (fe.code === 'FST_ERR_CTP_INVALID_JSON_BODY' || err instanceof SyntaxError)
      detail = 'The body is not valid JSON.';
    if (fe.code === 'FST_ERR_CTP_EMPTY_JSON_BODY') detail = 'The body is empty but the content type is JSON.';
    if (fe.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE')
      detail = 'Unsupported Content-Type; send application/json.';
    if (fe.code === 'FST_ERR_CTP_BODY_TOO_LARGE')
      detail = 'The request body is larger than the server accepts.';
    const headers: Record<string, string> = {};
    const retryAfter = (fe as { headers?: Record<string, unknown> }).headers?.['retry-after'];
    if (retryAfter !== undefined) headers['retry-after'] = String(retryAfter);
    // Wrong content type is a malformed request per the contract (415 is reserved for attachment types).
    return { status: status === 415 ? 400 : status, code, title, detail, headers };
  }
  if (status === 503) {
    return {
      status,
      code: 'SERVICE_UNAVAILABLE',
      title: 'Service unavailable',
      detail: 'The server is overloaded; try again shortly.',
      headers: { 'retry-after': '5' },
    };
  }
  return undefined;
}

export function sendProblem(request: FastifyRequest, reply: FastifyReply, m: Mapped) {
  const body: Problem = {
    type: problemType(m.code),
    title: m.title,
    status: m.status,
    code: m.code,
    detail: m.detail,
    instance: request.url.split('?')[0],
    traceId: request.id,
    ...(m.errors ? { errors: m.errors } : {}),
  };
  if (m.headers) reply.headers(m.headers);
  return reply.code(m.status).header('x-request-id', request.id).type('application/problem+json').send(body);
}

/** One error handler and one not-found handler for the whole application. */
export function registerErrorHandling(app: FastifyInstance) {
  app.setErrorHandler((err, request, reply) => {
    const mapped = mapError(err);
    if (mapped) {
      if (mapped.status >= 500) request.log.warn({ err }, 'request failed: %s', mapped.code);
      return sendProblem(request, reply, mapped);
    }
    // Unknown: log everything, answer nothing internal.
    request.log.error({ err }, 'unhandled error');
    return sendProblem(request, reply, {
      status: 500,
      code: 'INTERNAL_ERROR',
      title: 'Internal server error',
      detail: 'An unexpected error occurred. Quote the traceId when reporting it.',
    });
  });

  app.setNotFoundHandler((request, reply) =>
    sendProblem(request, reply, {
      status: 404,
      code: 'NOT_FOUND',
      title: 'Not found',
      detail: `No route ${request.method} ${request.url.split('?')[0]}.`,
    }),
  );
}
