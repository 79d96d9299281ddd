import { Temporal } from 'temporal-polyfill';

/**
 * Business time: minutes that count towards a service target. Pure (no database, no clock of its own).
 *
 * A schedule is a weekly set of opening intervals in local wall-clock time of an IANA timezone, plus
 * holiday dates (local) on which nothing counts; `null` means around the clock (24/7). Wall-clock times
 * become instants through the timezone rules of the runtime's ICU data (via Temporal), so a DST change
 * shortens or lengthens a business day by exactly the hour the clock jumps: a minute of business time is
 * always a real elapsed minute. A local time inside a spring-forward gap moves forward by the gap's length,
 * one inside an autumn overlap takes the earlier of its two instants (Temporal's "compatible" rule, as
 * calendars do).
 */

export const WEEKDAYS = ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'] as const;
export type Weekday = (typeof WEEKDAYS)[number];

/** `["09:00", "17:30"]`: start inclusive, end exclusive; `"24:00"` is allowed as an end (midnight after). */
export type LocalInterval = readonly [string, string];

export interface BusinessHours {
  timezone: string;
  days: Partial<Record<Weekday, readonly LocalInterval[]>>;
  /** Local dates `YYYY-MM-DD` with no business time. */
  holidays: readonly string[];
}

/** null: every minute counts (24/7). */
export type Schedule = BusinessHours | null;

const MINUTE = 60_000;
/** A schedule with almost no opening time still ends a search: about 20 years of calendar days. */
const MAX_DAYS = 7_400;

export class ScheduleExhaustedError extends Error {
  constructor() {
    super('The schedule has no business time within the search horizon.');
  }
}

interface Prepared {
  tz: string;
  days: Map<number, Array<{ start: Temporal.PlainTime; end: Temporal.PlainTime | null }>>;
  holidays: Set<string>;
}

const cache = new WeakMap<BusinessHours, Prepared>();

function prepare(hours: BusinessHours): Prepared {
  let p = cache.get(hours);
  if (p) return p;
  const days = new Map<number, Array<{ start: Temporal.PlainTime; end: Temporal.PlainTime | null }>>();
  WEEKDAYS.forEach((day, i) => {
    const list = (hours.days[day] ?? []).map(([s, e]) => ({
      start: Temporal.PlainTime.from(s),
      end: e === '24:00' ? null : Temporal.PlainTime.from(e),
    }));
    if (list.length > 0) days.set(i + 1, list);
  });
  p = { tz: hours.timezone, days, holidays: new Set(hours.holidays) };
  cache.set(hours, p);
  return p;
}

function localDate(ms: number, tz: string): Temporal.PlainDate {
  return Temporal.Instant.fromEpochMilliseconds(ms).toZonedDateTimeISO(tz).toPlainDate();
}

function instantOf(date: Temporal.PlainDate, time: Temporal.PlainTime | null, tz: string): number {
  // 24:00 is the start of the next day (which some zones begin at 01:00 on a DST day).
  if (time === null) return date.add({ days: 1 }).toZonedDateTime(tz).epochMilliseconds;
  return date.toPlainDateTime(time).toZonedDateTime(tz, { disambiguation: 'compatible' }).epochMilliseconds;
}

/** The opening intervals of one local date as [startMs, endMs) instants; empty on a holiday or closed day. */
function intervalsOn(p: Prepared, date: Temporal.PlainDate): Array<[number, number]> {
  if (p.holidays.has(date.toString())) return [];
  const list = p.days.get(date.dayOfWeek);
  if (!list) return [];
  const out: Array<[number, number]> = [];
  for (const { start, end } of list) {
    const s = instantOf(date, start, p.tz);
    const e = instantOf(date, end, p.tz);
    if (e > s) out.push([s, e]);
  }
  return out;
}

/**
 * The instant at which `ms` milliseconds of business time have passed since `start`.
 * Zero returns `start` itself, even outside business hours.
 */
export function addBusinessMs(start: Date, ms: number, schedule: Schedule): Date {
  if (!Number.isFinite(ms) || ms < 0) throw new RangeError(`business time must be ≥ 0, got ${ms}`);
  const from = start.getTime();
  if (schedule === null || ms === 0) return new Date(from + ms);
  const p = prepare(schedule);
  let remaining = ms;
  let date = localDate(from, p.tz);
  for (let i = 0; i < MAX_DAYS; i++, date = date.add({ days: 1 })) {
    for (const [s, e] of intervalsOn(p, date)) {
      if (e <= from) continue;
      const begin = Math.max(s, from);
      const available = e - begin;
      if (remaining <= available) return new Date(begin + remaining);
      remaining -= available;
    }
  }
  throw new ScheduleExhaustedError();
}

/** addBusinessMs in whole minutes. */
export function addBusinessMinutes(start: Date, minutes: number, schedule: Schedule): Date {
  return addBusinessMs(start, minutes * MINUTE, schedule);
}

/** Milliseconds of business time in [from, to); 0 when `to` is not after `from`. */
export function businessMsBetween(from: Date, to: Date, schedule: Schedule): number {
  const a = from.getTime();
  const b = to.getTime();
  if (b <= a) return 0;
  if (schedule === null) return b - a;
  const p = prepare(schedule);
  let total = 0;
  const last = localDate(b, p.tz);
  let date = localDate(a, p.tz);
  for (let i = 0; i < MAX_DAYS + 2 && Temporal.PlainDate.compare(date, last) <= 0; i++) {
    for (const [s, e] of intervalsOn(p, date)) {
      const lo = Math.max(s, a);
      const hi = Math.min(e, b);
      if (hi > lo) total += hi - lo;
    }
    date = date.add({ days: 1 });
  }
  return total;
}

/** businessMsBetween in minutes (fractional when the instants are not on whole minutes). */
export function businessMinutesBetween(from: Date, to: Date, schedule: Schedule): number {
  return businessMsBetween(from, to, schedule) / MINUTE;
}

// ---- validation helpers (used by the policy schemas; kept here so the rules live with the arithmetic) ----

const HHMM = /^(?:[01]\d|2[0-3]):[0-5]\d$/;

/** `HH:MM` 00:00..23:59, or `24:00` when `asEnd`. */
export function isLocalTime(s: string, asEnd = false): boolean {
  return HHMM.test(s) || (asEnd && s === '24:00');
}

/** Minutes after local midnight of `HH:MM` (24:00 → 1440). */
export function minutesOfDay(s: string): number {
  const [h, m] = s.split(':').map(Number);
  return h! * 60 + m!;
}

/** An IANA timezone name the runtime knows (canonical or link, e.g. `Asia/Calcutta`); not an offset. */
export function isIanaTimezone(tz: string): boolean {
  if (!/^[A-Za-z][A-Za-z0-9_+-]*(?:\/[A-Za-z0-9_+-]+)*$/.test(tz) && tz !== 'UTC') return false;
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: tz });
    return true;
  } catch {
    return false;
  }
}

/** A real calendar date written `YYYY-MM-DD`. */
export function isIsoDate(s: string): boolean {
  if (!/^\d{4}-\d{2}-\d{2}$/.test(s)) return false;
  try {
    return Temporal.PlainDate.from(s, { overflow: 'reject' }).toString() === s;
  } catch {
    return false;
  }
}
