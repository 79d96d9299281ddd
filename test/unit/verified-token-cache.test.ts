import { describe, expect, it } from 'vitest';
import { VerifiedTokenCache } from '../../src/http/auth.js';

describe('VerifiedTokenCache', () => {
  it('answers a verified token until its exp, never past the TTL', () => {
    let now = 1_000_000;
    const cache = new VerifiedTokenCache(10, 60_000, () => now);
    const payload = { sub: 'u', exp: (now + 30_000) / 1000 };
    cache.set('t', payload);
    expect(cache.get('t')).toBe(payload);
    now += 30_000;
    expect(cache.get('t')).toBe(payload); // exp is inclusive, as in fast-jwt's check
    now += 1;
    expect(cache.get('t')).toBeUndefined();

    const long = { sub: 'u', exp: (now + 3_600_000) / 1000 };
    cache.set('long', long);
    now += 60_001;
    expect(cache.get('long')).toBeUndefined();
  });

  it('does not answer before nbf and keys by the exact token', () => {
    let now = 5_000_000;
    const cache = new VerifiedTokenCache(10, 60_000, () => now);
    cache.set('a', { nbf: (now + 1000) / 1000, exp: (now + 10_000) / 1000 });
    expect(cache.get('a')).toBeUndefined();
    now += 1000;
    expect(cache.get('a')).toBeDefined();
    expect(cache.get('a ')).toBeUndefined();
    expect(cache.get('A')).toBeUndefined();
  });

  it('keeps at most max entries, dropping the oldest', () => {
    const cache = new VerifiedTokenCache(2, 60_000, () => 0);
    cache.set('1', { exp: 100 });
    cache.set('2', { exp: 100 });
    cache.set('3', { exp: 100 });
    expect(cache.get('1')).toBeUndefined();
    expect(cache.get('2')).toBeDefined();
    expect(cache.get('3')).toBeDefined();
  });
});
