import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';

/**
 * Single-use stream tokens. The token is 32 random bytes; the database keeps only its SHA-256 (the row's
 * key) and the caller's access token sealed with AES-256-GCM under a key derived from the token itself,
 * so a copy of the table opens nothing without the token.
 */
export function newStreamToken(): string {
  return `hd_sst_${randomBytes(32).toString('base64url')}`;
}

export function streamTokenHash(token: string): string {
  return createHash('sha256').update(`id:${token}`).digest('hex');
}

function keyOf(token: string): Buffer {
  return createHash('sha256').update(`key:${token}`).digest();
}

export function seal(token: string, secret: string): string {
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', keyOf(token), iv);
  const body = Buffer.concat([cipher.update(secret, 'utf8'), cipher.final()]);
  return [iv, cipher.getAuthTag(), body].map((b) => b.toString('base64url')).join('.');
}

/** The sealed secret, or null when it does not open with this token. */
export function unseal(token: string, sealed: string): string | null {
  const [iv, tag, body] = sealed.split('.').map((p) => Buffer.from(p, 'base64url'));
  if (!iv || !tag || !body) return null;
  try {
    const decipher = createDecipheriv('aes-256-gcm', keyOf(token), iv);
    decipher.setAuthTag(tag);
    return Buffer.concat([decipher.update(body), decipher.final()]).toString('utf8');
  } catch {
    return null;
  }
}
