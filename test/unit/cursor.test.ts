import { describe, expect, it } from 'vitest';
import { createCursorCodec, InvalidCursorError } from '../../src/lib/cursor.js';

const SECRET = 'x'.repeat(48);

describe('signed keyset cursor', () => {
  const codec = createCursorCodec(SECRET, 'tickets');

  it('round-trips a payload and is opaque (no readable values, URL-safe)', () => {
    const payload = { s: '-updatedAt', v: '2026-11-22T10:00:00.123Z', i: 1042 };
    const token = codec.encode(payload);
    expect(token).toMatch(/^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/);
    expect(codec.decode(token)).toEqual(payload);
  });

  it('refuses a token whose payload was changed (forged)', () => {
    const token = codec.encode({ s: '-updatedAt', v: 'a', i: 1 });
    const [, mac] = token.split('.');
    const forged = `${Buffer.from(JSON.stringify({ s: '-updatedAt', v: 'a', i: 2 })).toString('base64url')}.${mac}`;
    expect(() => codec.decode(forged)).toThrow(InvalidCursorError);
  });

  it('refuses every single-character change of the signature', () => {
    const token = codec.encode({ i: 1 });
    const dot = token.indexOf('.');
    for (let p = dot + 1; p < token.length; p++) {
      const c = token[p] === 'A' ? 'B' : 'A';
      const mangled = token.slice(0, p) + c + token.slice(p + 1);
      expect(() => codec.decode(mangled), `position ${p}`).toThrow(InvalidCursorError);
    }
  });

  it('refuses garbage, truncation and tokens of another purpose or secret', () => {
    const token = codec.encode({ i: 1 });
    for (const bad of ['', 'abc', '.', 'a.b.c', token.slice(0, -1), `${token}x`, token.replace('.', '')]) {
      expect(() => codec.decode(bad), bad).toThrow(InvalidCursorError);
    }
    expect(() => createCursorCodec(SECRET, 'audit').decode(token)).toThrow(InvalidCursorError);
    expect(() => createCursorCodec('y'.repeat(48), 'tickets').decode(token)).toThrow(InvalidCursorError);
  });

  it('answers 422 VALIDATION_FAILED pointing at querystring.cursor', () => {
    try {
      codec.decode('nope');
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(InvalidCursorError);
      const e = err as InvalidCursorError;
      expect(e.status).toBe(422);
      expect(e.code).toBe('VALIDATION_FAILED');
      expect(e.extra.errors?.[0]?.path).toBe('querystring.cursor');
    }
  });
});
