import { createHash, randomBytes } from 'node:crypto';

/** Recognizable prefix so secret scanners can spot a leaked refresh token. */
const PREFIX = 'hdr_';

/** A new opaque refresh token: 256 random bits. Only its hash is ever stored. */
export function newRefreshToken(): string {
  return `${PREFIX}${randomBytes(32).toString('base64url')}`;
}

/** SHA-256 is enough for a 256-bit random secret (no dictionary to attack); a lookup key, not a password. */
export function hashRefreshToken(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}
