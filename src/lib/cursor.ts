import { createHmac, createSecretKey, timingSafeEqual } from 'node:crypto';
import { ValidationError } from './errors.js';

/**
 * Opaque, tamper-evident keyset cursors: `base64url(JSON payload) . base64url(HMAC-SHA256)`.
 * The HMAC key is derived from the server secret (JWT_SECRET) and a per-use `purpose`, so a cursor
 * minted for one list cannot be replayed on another, and a forged or mangled one is refused with 422.
 * Any list endpoint can reuse it: encode whatever keyset values identify the last row of a page.
 */
export interface CursorCodec {
  encode(payload: Record<string, unknown>): string;
  /** Verifies and parses; throws InvalidCursorError (422 VALIDATION_FAILED, path querystring.cursor). */
  decode(token: string): Record<string, unknown>;
}

const MAC_BYTES = 16;

export class InvalidCursorError extends ValidationError {
  constructor(reason = 'The cursor is invalid, expired or was made for another query.') {
    super([{ path: 'querystring.cursor', message: reason }], reason);
  }
}

/** Derives a purpose-bound key from the server secret; never use the JWT secret itself as the MAC key. */
export function deriveKey(secret: string, purpose: string): Buffer {
  return createHmac('sha256', secret).update(`helpdesk/cursor/v1/${purpose}`).digest();
}

export function createCursorCodec(secret: string, purpose: string): CursorCodec {
  // A KeyObject made once: createHmac with a raw Buffer key imports the key again on every call.
  const key = createSecretKey(deriveKey(secret, purpose));
  const mac = (body: string) => createHmac('sha256', key).update(body).digest().subarray(0, MAC_BYTES);

  return {
    encode(payload) {
      const body = Buffer.from(JSON.stringify(payload), 'utf8').toString('base64url');
      return `${body}.${mac(body).toString('base64url')}`;
    },
    decode(token) {
      if (typeof token !== 'string' || token.length > 2048) throw new InvalidCursorError();
      const dot = token.indexOf('.');
      if (dot <= 0 || dot !== token.lastIndexOf('.')) throw new InvalidCursorError();
      const body = token.slice(0, dot);
      // Compare the text, not decoded bytes: base64 decoding ignores stray bits and characters.
      const given = Buffer.from(token.slice(dot + 1), 'utf8');
      const expected = Buffer.from(mac(body).toString('base64url'), 'utf8');
      if (given.length !== expected.length || !timingSafeEqual(given, expected))
        throw new InvalidCursorError();
      let parsed: unknown;
      try {
        parsed = JSON.parse(Buffer.from(body, 'base64url').toString('utf8'));
      } catch {
        throw new InvalidCursorError();
      }
      if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) throw new InvalidCursorError();
      return parsed as Record<string, unknown>;
    },
  };
}
