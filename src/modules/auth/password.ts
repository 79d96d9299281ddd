import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import argon2 from 'argon2';
import pLimit from 'p-limit';
import { isClusterWorker } from '../../lib/cluster-worker.js';

/**
 * argon2id parameters. OWASP's Password Storage Cheat Sheet baseline is m=19 MiB, t=2, p=1; we keep its
 * memory and raise the passes to 3 (measured with `npx tsx scripts/measure-argon2.ts`). Stored hashes carry
 * their own parameters, so changing these only affects new hashes; login rehashes old ones (needsRehash).
 */
export const ARGON2_PARAMS = {
  type: argon2.argon2id,
  memoryCost: 19_456, // KiB
  timeCost: 3,
  parallelism: 1,
} as const;

/**
 * Hashes (and verifications) running at once in this process. Each holds memoryCost (19 MiB) for its whole run,
 * and libuv would run up to 4 at once (its thread pool): a burst of logins took the process from ~160 to 247 MB.
 * The parameters stay as they are; an excess login waits its turn. Two at a time in a single process (a hash is
 * CPU-bound: more would not finish sooner on two cores); one per HTTP worker in cluster mode, where the workers
 * (one per core) hash side by side. It also leaves the rest of the pool to file and DNS work. (The memory a
 * finished hash leaves in glibc's per-thread arenas is bounded separately: MALLOC_ARENA_MAX, src/cluster.ts.)
 */
export const ARGON2_MAX_CONCURRENT = isClusterWorker() ? 1 : 2;
const argon2Slots = pLimit(ARGON2_MAX_CONCURRENT);

/** The contract's hard ceiling, in Unicode code points. Longer input is refused before any hashing. */
export const PASSWORD_MAX_LENGTH = 256;

/**
 * NIST SP 800-63B: accept any Unicode, compare in a normalized form so the same password typed on
 * another keyboard or OS still matches. Never truncated.
 */
export function normalizePassword(password: string): string {
  return password.normalize('NFKC');
}

/** Length in code points (what a person counts), not UTF-16 units. */
export function passwordLength(password: string): number {
  return [...normalizePassword(password)].length;
}

function findCommonPasswordsFile(): string {
  // Next to this module in src/ (tsx) and in dist/ (copied by `npm run build`).
  const here = fileURLToPath(new URL('./common-passwords.txt', import.meta.url));
  if (existsSync(here)) return here;
  const fromDist = fileURLToPath(
    new URL('../../../../src/modules/auth/common-passwords.txt', import.meta.url),
  );
  if (existsSync(fromDist)) return fromDist;
  throw new Error('common-passwords.txt not found next to password module');
}

let commonPasswords: Set<string> | undefined;

/** The bundled list of common passwords (lowercased), loaded once. */
export function loadCommonPasswords(): Set<string> {
  if (!commonPasswords) {
    const lines = readFileSync(findCommonPasswordsFile(), 'utf8').split('\n');
    commonPasswords = new Set(lines.map((l) => l.trim()).filter((l) => l.length > 0 && !l.startsWith('#')));
  }
  return commonPasswords;
}

export interface PasswordContext {
  email?: string;
  name?: string;
}

/**
 * Why a password is refused, or null when it is acceptable. The contract's policy: minLength..256 code
 * points, any characters, no composition rules; refuse common passwords and the obvious context-specific
 * ones (the account's own email, its local part or the user's name), and a single repeated character.
 */
export function passwordProblem(
  password: string,
  minLength: number,
  context: PasswordContext = {},
): string | null {
  const normalized = normalizePassword(password);
  const length = [...normalized].length;
  if (length < minLength) return `The password must be at least ${minLength} characters long.`;
  if (length > PASSWORD_MAX_LENGTH)
    return `The password must be at most ${PASSWORD_MAX_LENGTH} characters long.`;
  const lower = normalized.toLowerCase();
  if (loadCommonPasswords().has(lower)) return 'This password is too common; choose another one.';
  if (new Set(lower).size === 1) return 'The password must not be one character repeated.';
  const email = context.email?.trim().toLowerCase();
  const local = email?.split('@')[0];
  const name = context.name?.trim().toLowerCase();
  if ((email && lower === email) || (local && lower === local) || (name && lower === name)) {
    return 'The password must not be your email address or name.';
  }
  return null;
}

/**
 * The stored "hash" of an account that has no password yet (a requester created from an email): no
 * password verifies against it, and it can only be replaced through a password reset.
 */
export const NO_PASSWORD = '!none';

export interface PasswordHasher {
  hash(password: string): Promise<string>;
  /** Constant-work verification: a malformed stored hash simply fails. */
  verify(hash: string, password: string): Promise<boolean>;
  /** Runs a verification against a fixed dummy hash so an unknown account costs the same as a known one. */
  verifyDummy(password: string): Promise<void>;
  needsRehash(hash: string): boolean;
}

export interface Argon2Params {
  type: typeof argon2.argon2id;
  memoryCost: number;
  timeCost: number;
  parallelism: number;
}

export function createPasswordHasher(params: Argon2Params = ARGON2_PARAMS): PasswordHasher {
  let dummy: Promise<string> | undefined;
  const hash = (password: string) => argon2Slots(() => argon2.hash(normalizePassword(password), params));
  const verify = async (stored: string, password: string): Promise<boolean> => {
    if (passwordLength(password) > PASSWORD_MAX_LENGTH) return false;
    // An account without a password costs the same argon2 work as one with a wrong password.
    if (stored === NO_PASSWORD) {
      dummy ??= hash(randomBytes(24).toString('base64url'));
      await verify(await dummy, password);
      return false;
    }
    try {
      return await argon2Slots(() => argon2.verify(stored, normalizePassword(password)));
    } catch {
      return false;
    }
  };
  return {
    hash,
    verify,
    async verifyDummy(password) {
      dummy ??= hash(randomBytes(24).toString('base64url'));
      await verify(await dummy, password);
    },
    needsRehash(stored) {
      try {
        return argon2.needsRehash(stored, params);
      } catch {
        return false;
      }
    },
  };
}
