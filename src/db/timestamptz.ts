import pg from 'pg';

const DEFAULT_TIMESTAMPTZ = pg.types.getTypeParser(pg.types.builtins.TIMESTAMPTZ, 'text') as (
  text: string,
) => Date | number | null;

const digit = (s: string, i: number) => s.charCodeAt(i) - 48;
const two = (s: string, i: number) => digit(s, i) * 10 + digit(s, i + 1);

/**
 * timestamptz text → Date, as node-postgres's own parser (postgres-date) returns it, several times cheaper
 * on the form PostgreSQL sends in a UTC session, `YYYY-MM-DD HH:MM:SS[.f…]+00`: digits are read by position
 * instead of through three regular expressions. The fraction is cut to milliseconds (what Date holds), as
 * postgres-date does. Anything else (another session time zone, years outside 100-9999, BC, ±infinity) goes to
 * the default parser.
 */
export function parseTimestamptz(text: string): Date | number | null {
  const n = text.length;
  // 'YYYY-MM-DD HH:MM:SS+00' is 22 characters; a fraction adds '.' and 1-6 digits.
  if (
    n < 22 ||
    n > 29 ||
    n === 23 ||
    text.charCodeAt(4) !== 45 || // -
    text.charCodeAt(7) !== 45 ||
    text.charCodeAt(10) !== 32 || // space
    text.charCodeAt(13) !== 58 || // :
    text.charCodeAt(16) !== 58 ||
    text.charCodeAt(n - 3) !== 43 || // +
    text.charCodeAt(n - 2) !== 48 || // 0
    text.charCodeAt(n - 1) !== 48 ||
    (n > 22 && text.charCodeAt(19) !== 46) // .
  ) {
    return DEFAULT_TIMESTAMPTZ(text);
  }
  const year = two(text, 0) * 100 + two(text, 2);
  if (year < 100) return DEFAULT_TIMESTAMPTZ(text); // Date.UTC would read 0-99 as 1900-1999
  let ms = 0;
  if (n > 22) {
    const end = n - 3; // first character after the fraction
    ms = digit(text, 20) * 100;
    if (end > 21) ms += digit(text, 21) * 10;
    if (end > 22) ms += digit(text, 22);
  }
  return new Date(
    Date.UTC(year, two(text, 5) - 1, two(text, 8), two(text, 11), two(text, 14), two(text, 17), ms),
  );
}

/**
 * pg's `types` for a query (the `types` field of its query config): timestamptz through parseTimestamptz, every
 * other type through the process-wide parsers (int8 as number, see client.ts).
 */
export const fastTimestampTypes = {
  getTypeParser(oid: number, format?: 'text' | 'binary') {
    return oid === pg.types.builtins.TIMESTAMPTZ && format !== 'binary'
      ? parseTimestamptz
      : pg.types.getTypeParser(oid, format);
  },
};
