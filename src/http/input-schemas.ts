import type { FastifyInstance } from 'fastify';
import { z } from 'zod';

/**
 * The building blocks every route's params, query and body are made of, so one rule holds everywhere:
 * a string never carries NUL (PostgreSQL refuses it in text, which would surface as a 500), and an integer
 * in a path or query is written in plain decimal digits (no `0x10`, `1e1`, `+1`, ` 1`).
 */

/** A client-supplied string: anything but U+0000. Chain `.trim().min().max()` as usual. */
export function text() {
  return z.string().refine((s) => !s.includes('\u0000'), {
    message: 'must not contain the NUL character (U+0000)',
    abort: true,
  });
}

const DECIMAL = /^[0-9]{1,10}$/;

/**
 * A path or query integer in plain decimal digits, within [min, max]; documented as an integer.
 * Anything else (hex, exponent, sign, spaces, a repeated query parameter) is a 422.
 */
export function decimalInt(min: number, max: number) {
  return z
    .string()
    .refine((s) => DECIMAL.test(s), {
      message: 'must be a whole number in plain decimal digits',
      abort: true,
    })
    .transform(Number)
    .pipe(z.number().int().min(min).max(max))
    .meta({ type: 'integer', minimum: min, maximum: max });
}

/** Ticket numbers: PostgreSQL `integer` ids. */
export const ticketNumber = () => decimalInt(1, 2_147_483_647);

/** `limit` of a keyset-paginated list. */
export const pageLimit = (fallback: number, max = 100) => decimalInt(1, max).default(fallback);

/** `cursor` of a keyset-paginated list: the opaque `nextCursor` of the previous page. */
export const pageCursor = () => text().min(1).max(2048);

/** A route that takes no query parameters still refuses unknown ones (422), like every list does. */
export const noQuery = z.strictObject({});

/**
 * Every documented operation without a query schema of its own gets `noQuery`, so an unknown query
 * parameter is a 422 everywhere, not only on the lists. Must run before the routes are registered.
 */
export function refuseUnknownQueryParameters(app: FastifyInstance) {
  app.addHook('onRoute', (route) => {
    const schema = route.schema as { querystring?: unknown; hide?: boolean } | undefined;
    if (!schema || schema.hide || schema.querystring) return;
    schema.querystring = noQuery;
  });
}
