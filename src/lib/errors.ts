/**
 * Typed application errors. Services throw these; src/http/errors.ts turns them into
 * RFC 9457 problem+json. No Fastify import here so services and unit tests stay framework-free.
 */
export interface FieldError {
  path: string;
  message: string;
}

export class AppError extends Error {
  constructor(
    public readonly status: number,
    public readonly code: string,
    public readonly title: string,
    detail?: string,
    public readonly extra: { headers?: Record<string, string>; errors?: FieldError[] } = {},
  ) {
    super(detail ?? title);
    this.name = new.target.name;
  }

  get detail(): string {
    return this.message;
  }
}

export class UnauthenticatedError extends AppError {
  constructor(detail = 'Authentication is required.', code = 'UNAUTHENTICATED') {
    super(401, code, code === 'TOKEN_EXPIRED' ? 'Token expired' : 'Unauthenticated', detail, {
      headers: { 'www-authenticate': 'Bearer' },
    });
  }
}

export class InvalidCredentialsError extends AppError {
  constructor() {
    super(401, 'INVALID_CREDENTIALS', 'Invalid credentials', 'The email or password is incorrect.');
  }
}

export class ForbiddenError extends AppError {
  constructor(detail = 'You are not allowed to do this.', code = 'FORBIDDEN') {
    super(403, code, 'Forbidden', detail);
  }
}

export class NotFoundError extends AppError {
  constructor(code: string, title: string, detail: string) {
    super(404, code, title, detail);
  }
}

export class ConflictError extends AppError {
  constructor(code: string, detail: string, title = 'Conflict') {
    super(409, code, title, detail);
  }
}

export class PreconditionFailedError extends AppError {
  constructor(detail: string, code = 'VERSION_MISMATCH') {
    super(412, code, 'Precondition failed', detail);
  }
}

export class PayloadTooLargeError extends AppError {
  constructor(detail = 'The request body is too large.') {
    super(413, 'PAYLOAD_TOO_LARGE', 'Payload too large', detail);
  }
}

export class UnsupportedMediaTypeError extends AppError {
  constructor(detail: string) {
    super(415, 'UNSUPPORTED_MEDIA_TYPE', 'Unsupported media type', detail);
  }
}

export class ValidationError extends AppError {
  constructor(
    errors: FieldError[],
    detail = 'The request did not pass validation.',
    code = 'VALIDATION_FAILED',
  ) {
    super(422, code, 'Validation failed', detail, { errors });
  }
}

/** 422 with a business code (WEAK_PASSWORD, IDEMPOTENCY_KEY_REUSED, …) and optional field errors. */
export class UnprocessableError extends AppError {
  constructor(code: string, detail: string, errors?: FieldError[]) {
    super(422, code, 'Unprocessable request', detail, errors ? { errors } : {});
  }
}

export class RateLimitedError extends AppError {
  constructor(retryAfterSeconds: number, detail = 'Too many requests; slow down.') {
    super(429, 'RATE_LIMITED', 'Too many requests', detail, {
      headers: { 'retry-after': String(Math.max(1, Math.ceil(retryAfterSeconds))) },
    });
  }
}

export class ServiceUnavailableError extends AppError {
  constructor(detail = 'The service is temporarily unavailable; try again shortly.', retryAfterSeconds = 5) {
    super(503, 'SERVICE_UNAVAILABLE', 'Service unavailable', detail, {
      headers: { 'retry-after': String(retryAfterSeconds) },
    });
  }
}
