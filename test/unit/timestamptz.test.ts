import fc from 'fast-check';
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { fastTimestampTypes, parseTimestamptz } from '../../src/db/timestamptz.js';

const pgParse = pg.types.getTypeParser(pg.types.builtins.TIMESTAMPTZ, 'text') as (t: string) => unknown;

/** The text PostgreSQL sends for a timestamptz in a UTC session: trailing zeros of the fraction dropped. */
function pgText(year: number, month: number, day: number, h: number, m: number, s: number, micros: number) {
  const p = (n: number, w = 2) => String(n).padStart(w, '0');
  const fraction = micros === 0 ? '' : `.${p(micros, 6).replace(/0+$/, '')}`;
  return `${p(year, 4)}-${p(month)}-${p(day)} ${p(h)}:${p(m)}:${p(s)}${fraction}+00`;
}

const same = (text: string) => {
  const fast = parseTimestamptz(text);
  const slow = pgParse(text);
  if (fast instanceof Date && slow instanceof Date) expect(fast.getTime()).toBe(slow.getTime());
  else expect(fast).toEqual(slow);
};

describe('parseTimestamptz', () => {
  it('reads what PostgreSQL sends exactly as node-postgres does, fraction cut to milliseconds', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 100, max: 9999 }),
        fc.integer({ min: 1, max: 12 }),
        fc.integer({ min: 1, max: 28 }),
        fc.integer({ min: 0, max: 23 }),
        fc.integer({ min: 0, max: 59 }),
        fc.integer({ min: 0, max: 59 }),
        fc.oneof(
          fc.constant(0),
          fc.integer({ min: 0, max: 999_999 }),
          fc.integer({ min: 0, max: 999 }).map((ms) => ms * 1000),
        ),
        (y, mo, d, h, mi, s, us) => same(pgText(y, mo, d, h, mi, s, us)),
      ),
      { numRuns: 5000 },
    );
  });

  it('leaves every other form to the default parser', () => {
    for (const text of [
      '2026-11-30 08:03:30.21+00',
      '2026-11-30 08:03:30+00',
      '2026-11-30 08:03:30.123456+00',
      '2026-11-30 09:03:30.5+01', // another session time zone
      '2026-11-30 03:33:30.5-04:30',
      '0050-01-01 00:00:00+00', // Date.UTC would read year 50 as 1950
      '0001-01-01 00:00:00+00 BC',
      '12345-01-01 00:00:00+00',
      'infinity',
      '-infinity',
    ]) {
      same(text);
    }
  });

  it('is what a query with fastTimestampTypes gets for timestamptz, and pg’s own parser for other types', () => {
    expect(fastTimestampTypes.getTypeParser(pg.types.builtins.TIMESTAMPTZ, 'text')).toBe(parseTimestamptz);
    expect(fastTimestampTypes.getTypeParser(pg.types.builtins.INT8, 'text')).toBe(
      pg.types.getTypeParser(pg.types.builtins.INT8, 'text'),
    );
  });
});
