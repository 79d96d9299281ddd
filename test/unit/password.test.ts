import { describe, expect, it } from 'vitest';
import {
  ARGON2_PARAMS,
  createPasswordHasher,
  loadCommonPasswords,
  normalizePassword,
  PASSWORD_MAX_LENGTH,
  passwordLength,
  passwordProblem,
} from '../../src/modules/auth/password.js';

describe('password policy', () => {
  const ok = 'violet tractor sings at dawn';

  it('accepts a long passphrase without composition rules', () => {
    expect(passwordProblem(ok, 12)).toBeNull();
    expect(passwordProblem('alllowercaseletters', 12)).toBeNull();
  });

  it('enforces the minimum length in characters (code points), not UTF-16 units', () => {
    expect(passwordProblem('elevenchars', 12)).toMatch(/at least 12/);
    expect(passwordProblem('twelve chars', 12)).toBeNull();
    const emoji11 = '🔑🔒🚪🗝🏠🌙🌟🍀🎲🎯🧩';
    expect(emoji11.length).toBe(22);
    expect(passwordLength(emoji11)).toBe(11);
    expect(passwordProblem(emoji11, 12)).toMatch(/at least 12/);
    expect(passwordProblem(`${emoji11}🎉`, 12)).toBeNull();
  });

  it('honours a configured minimum', () => {
    expect(passwordProblem('eight ch', 8)).toBeNull();
    expect(passwordProblem('a rather long pass', 20)).toMatch(/at least 20/);
  });

  it(`refuses more than ${PASSWORD_MAX_LENGTH} characters`, () => {
    expect(passwordProblem('ab'.repeat(128), 12)).toBeNull();
    expect(passwordProblem(`${'ab'.repeat(128)}c`, 12)).toMatch(/at most 256/);
  });

  it('refuses common passwords from the bundled list, in any case', () => {
    const list = loadCommonPasswords();
    expect(list.size).toBeGreaterThan(1000);
    for (const p of [
      'password1234',
      'Password1234',
      'QWERTYUIOPASDFGHJKL'.slice(0, 12),
      '123456789012',
      'iloveyou2024',
      'Welcome2025!',
    ]) {
      expect(passwordProblem(p, 12), p).toMatch(/too common/);
    }
  });

  it('refuses one repeated character and the account’s own email, local part or name', () => {
    expect(passwordProblem('##############', 12)).toMatch(/repeated/);
    expect(passwordProblem('ééééééééééééé', 12)).toMatch(/repeated/);
    expect(
      passwordProblem('Alice.Longname@example.com', 12, { email: 'alice.longname@example.com' }),
    ).toMatch(/email/);
    expect(passwordProblem('alice.longname', 12, { email: 'alice.longname@example.com' })).toMatch(/email/);
    expect(passwordProblem('Bartholomew Jones', 12, { name: 'bartholomew jones' })).toMatch(/name/);
  });

  it('normalizes Unicode (NFKC) so equivalent input is the same password', () => {
    const composed = 'caf\u00e9 au lait tous les jours';
    const decomposed = 'cafe\u0301 au lait tous les jours';
    expect(normalizePassword(composed)).toBe(normalizePassword(decomposed));
  });
});

describe('password hasher (argon2id)', () => {
  const hasher = createPasswordHasher();

  it('hashes with argon2id and the chosen parameters, and verifies', async () => {
    const hash = await hasher.hash('correct horse battery staple');
    expect(hash).toMatch(
      new RegExp(
        `^\\$argon2id\\$v=19\\$m=${ARGON2_PARAMS.memoryCost},t=${ARGON2_PARAMS.timeCost},p=${ARGON2_PARAMS.parallelism}\\$`,
      ),
    );
    expect(ARGON2_PARAMS.memoryCost).toBeGreaterThanOrEqual(19_456);
    expect(ARGON2_PARAMS.timeCost).toBeGreaterThanOrEqual(2);
    expect(await hasher.verify(hash, 'correct horse battery staple')).toBe(true);
    expect(await hasher.verify(hash, 'correct horse battery stapl')).toBe(false);
    expect(hasher.needsRehash(hash)).toBe(false);
  });

  it('verifies the NFC and NFD forms of one password alike', async () => {
    const hash = await hasher.hash('caf\u00e9 au lait tous les jours');
    expect(await hasher.verify(hash, 'cafe\u0301 au lait tous les jours')).toBe(true);
  });

  it('never truncates: a 256-character password differs from its 255-character prefix', async () => {
    const long = `${'x'.repeat(255)}y`;
    const hash = await hasher.hash(long);
    expect(await hasher.verify(hash, long)).toBe(true);
    expect(await hasher.verify(hash, long.slice(0, 255))).toBe(false);
  });

  it('refuses over-long input and malformed hashes without throwing', async () => {
    const hash = await hasher.hash('a'.repeat(12));
    expect(await hasher.verify(hash, 'a'.repeat(PASSWORD_MAX_LENGTH + 1))).toBe(false);
    expect(await hasher.verify('not-a-hash', 'whatever it is')).toBe(false);
    await expect(hasher.verifyDummy('anything at all')).resolves.toBeUndefined();
  });

  it('flags hashes made with weaker parameters for rehashing', async () => {
    const weak = createPasswordHasher({ ...ARGON2_PARAMS, memoryCost: 8192, timeCost: 1 });
    expect(hasher.needsRehash(await weak.hash('some password here'))).toBe(true);
  });
});
