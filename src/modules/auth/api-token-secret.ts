import { createHash, randomBytes } from 'node:crypto';

/** Recognizable prefix: secret scanners can spot a leaked token, and the auth hook tells it from a JWT. */
export const API_TOKEN_PREFIX = 'hd_pat_';

/** A new personal API token: 256 random bits. Shown once; only its hash is stored. */
export function newApiToken(): string {
  return `${API_TOKEN_PREFIX}${randomBytes(32).toString('base64url')}`;
}

/** SHA-256 suffices for a 256-bit random secret (nothing to guess from a dictionary); a lookup key. */
export function hashApiToken(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}
