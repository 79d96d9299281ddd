import { describe, expect, it } from 'vitest';
import {
  addBusinessMinutes,
  type BusinessHours,
  businessMinutesBetween,
  isIanaTimezone,
  isIsoDate,
  isLocalTime,
  type Schedule,
  ScheduleExhaustedError,
} from '../../src/lib/business-time.js';

const weekdays = (intervals: Array<[string, string]>) => ({
  mon: intervals,
  tue: intervals,
  wed: intervals,
  thu: intervals,
  fri: intervals,
});
const everyDay = (intervals: Array<[string, string]>) => ({
  ...weekdays(intervals),
  sat: intervals,
  sun: intervals,
});

const BERLIN: BusinessHours = {
  timezone: 'Europe/Berlin',
  days: weekdays([['09:00', '17:00']]),
  holidays: ['2026-12-25', '2026-12-26'],
};
const BERLIN_LUNCH: BusinessHours = {
  timezone: 'Europe/Berlin',
  days: weekdays([
    ['09:00', '12:00'],
    ['13:00', '17:00'],
  ]),
  holidays: [],
};
/** Local midnight to midnight every day: business time equals elapsed time, so DST days are 23 h / 25 h. */
const BERLIN_ALL_DAY: BusinessHours = {
  timezone: 'Europe/Berlin',
  days: everyDay([['00:00', '24:00']]),
  holidays: [],
};
/** Opening hours that contain the DST switch itself (02:00–03:00 local). */
const BERLIN_NIGHT: BusinessHours = {
  timezone: 'Europe/Berlin',
  days: everyDay([['01:00', '04:00']]),
  holidays: [],
};
/** Opening hours that begin inside the spring gap / autumn overlap. */
const BERLIN_FROM_0230: BusinessHours = {
  timezone: 'Europe/Berlin',
  days: everyDay([['02:30', '05:00']]),
  holidays: [],
};
/** Saturday evening runs on into Sunday's small hours. */
const BERLIN_WEEKEND_NIGHT: BusinessHours = {
  timezone: 'Europe/Berlin',
  days: { sat: [['22:00', '24:00']], sun: [['00:00', '02:00']] },
  holidays: [],
};
const NEW_YORK: BusinessHours = {
  timezone: 'America/New_York',
  days: weekdays([['09:00', '17:00']]),
  holidays: [],
};
const KOLKATA: BusinessHours = {
  timezone: 'Asia/Kolkata',
  days: weekdays([['09:30', '18:00']]),
  holidays: [],
};
const TWENTY_FOUR_SEVEN: Schedule = null;

const at = (iso: string) => new Date(iso);

describe('addBusinessMinutes', () => {
  // [case, schedule, start (UTC), minutes, expected due (UTC)]
  const cases: Array<[string, Schedule, string, number, string]> = [
    // Berlin, Monday–Friday 09:00–17:00 (CET = UTC+1 in winter, CEST = UTC+2 in summer)
    ['within one day', BERLIN, '2026-11-30T09:00:00Z', 60, '2026-11-30T10:00:00.000Z'],
    ['zero minutes is the start itself', BERLIN, '2026-11-28T12:00:00Z', 0, '2026-11-28T12:00:00.000Z'],
    ['ends exactly at closing', BERLIN, '2026-11-30T08:00:00Z', 480, '2026-11-30T16:00:00.000Z'],
    ['across the night', BERLIN, '2026-11-30T15:30:00Z', 60, '2026-12-01T08:30:00.000Z'],
    ['start before opening waits for it', BERLIN, '2026-11-30T05:00:00Z', 30, '2026-11-30T08:30:00.000Z'],
    [
      'start after closing waits for the next day',
      BERLIN,
      '2026-11-30T19:00:00Z',
      30,
      '2026-12-01T08:30:00.000Z',
    ],
    ['across the weekend', BERLIN, '2026-12-04T15:00:00Z', 120, '2026-12-07T09:00:00.000Z'],
    ['start on a Saturday', BERLIN, '2026-12-05T11:00:00Z', 60, '2026-12-07T09:00:00.000Z'],
    ['a whole working week', BERLIN, '2026-11-30T08:00:00Z', 2400, '2026-12-04T16:00:00.000Z'],
    ['over two holidays and a weekend', BERLIN, '2026-12-24T15:00:00Z', 120, '2026-12-28T09:00:00.000Z'],
    ['start on a holiday', BERLIN, '2026-12-25T09:00:00Z', 30, '2026-12-28T08:30:00.000Z'],
    ['a lunch break does not count', BERLIN_LUNCH, '2026-11-30T10:30:00Z', 60, '2026-11-30T12:30:00.000Z'],
    // Berlin spring forward: Sunday 2026-03-29 02:00 CET → 03:00 CEST
    ['weekend with the spring DST change', BERLIN, '2026-03-27T15:00:00Z', 120, '2026-03-30T08:00:00.000Z'],
    ['spring day counts 23 hours', BERLIN_ALL_DAY, '2026-03-28T23:00:00Z', 1380, '2026-03-29T22:00:00.000Z'],
    [
      'through the spring gap in real minutes',
      BERLIN_ALL_DAY,
      '2026-03-28T22:00:00Z',
      180,
      '2026-03-29T01:00:00.000Z',
    ],
    [
      'night shift on the spring day is 2 h',
      BERLIN_NIGHT,
      '2026-03-29T00:00:00Z',
      120,
      '2026-03-29T02:00:00.000Z',
    ],
    [
      '… so a 3 h target runs into the next night',
      BERLIN_NIGHT,
      '2026-03-29T00:00:00Z',
      180,
      '2026-03-30T00:00:00.000Z',
    ],
    [
      'opening inside the spring gap moves to 03:30',
      BERLIN_FROM_0230,
      '2026-03-28T23:00:00Z',
      1,
      '2026-03-29T01:31:00.000Z',
    ],
    // Berlin fall back: Sunday 2026-10-25 03:00 CEST → 02:00 CET
    ['weekend with the autumn DST change', BERLIN, '2026-10-23T14:00:00Z', 120, '2026-10-26T09:00:00.000Z'],
    ['autumn day counts 25 hours', BERLIN_ALL_DAY, '2026-10-24T22:00:00Z', 1500, '2026-10-25T23:00:00.000Z'],
    [
      'night shift on the autumn day is 4 h',
      BERLIN_NIGHT,
      '2026-10-24T23:00:00Z',
      240,
      '2026-10-25T03:00:00.000Z',
    ],
    [
      'opening inside the overlap takes the earlier 02:30',
      BERLIN_FROM_0230,
      '2026-10-24T22:00:00Z',
      1,
      '2026-10-25T00:31:00.000Z',
    ],
    [
      'Saturday evening runs on past midnight',
      BERLIN_WEEKEND_NIGHT,
      '2026-12-05T22:30:00Z',
      60,
      '2026-12-05T23:30:00.000Z',
    ],
    // New York, Monday–Friday 09:00–17:00 (EST = UTC−5, EDT = UTC−4)
    ['New York within a day', NEW_YORK, '2026-11-30T14:00:00Z', 90, '2026-11-30T15:30:00.000Z'],
    ['New York weekend with spring DST', NEW_YORK, '2026-03-06T21:00:00Z', 120, '2026-03-09T14:00:00.000Z'],
    ['New York weekend with autumn DST', NEW_YORK, '2026-10-30T20:00:00Z', 120, '2026-11-02T15:00:00.000Z'],
    // Kolkata, Monday–Friday 09:30–18:00 (IST = UTC+05:30, no DST)
    ['Kolkata half-hour offset', KOLKATA, '2026-11-30T04:00:00Z', 510, '2026-11-30T12:30:00.000Z'],
    ['Kolkata across the night', KOLKATA, '2026-11-30T11:30:00Z', 90, '2026-12-01T04:30:00.000Z'],
    ['Kolkata across the weekend', KOLKATA, '2026-12-04T12:00:00Z', 60, '2026-12-07T04:30:00.000Z'],
    // 24/7: every minute counts, DST is irrelevant
    ['24/7 adds elapsed minutes', TWENTY_FOUR_SEVEN, '2026-03-29T00:30:00Z', 120, '2026-03-29T02:30:00.000Z'],
    ['24/7 over a weekend', TWENTY_FOUR_SEVEN, '2026-12-04T15:00:00Z', 4320, '2026-12-07T15:00:00.000Z'],
  ];

  it.each(cases)('%s', (_name, schedule, start, minutes, due) => {
    expect(addBusinessMinutes(at(start), minutes, schedule).toISOString()).toBe(due);
  });

  it('refuses negative business time', () => {
    expect(() => addBusinessMinutes(at('2026-11-30T09:00:00Z'), -1, BERLIN)).toThrow(RangeError);
  });

  it('a schedule that never opens ends the search with an error, not a hang', () => {
    const closed: BusinessHours = { timezone: 'UTC', days: {}, holidays: [] };
    expect(() => addBusinessMinutes(at('2026-11-30T09:00:00Z'), 1, closed)).toThrow(ScheduleExhaustedError);
  });
});

describe('businessMinutesBetween', () => {
  const cases: Array<[string, Schedule, string, string, number]> = [
    ['within one day', BERLIN, '2026-11-30T09:00:00Z', '2026-11-30T10:30:00Z', 90],
    ['nothing when to is before from', BERLIN, '2026-11-30T10:00:00Z', '2026-11-30T09:00:00Z', 0],
    ['nothing outside business hours', BERLIN, '2026-11-30T17:00:00Z', '2026-12-01T07:00:00Z', 0],
    ['across the night', BERLIN, '2026-11-30T15:00:00Z', '2026-12-01T09:00:00Z', 120],
    ['Friday afternoon to Monday morning', BERLIN, '2026-12-04T15:00:00Z', '2026-12-07T09:00:00Z', 120],
    ['a whole week', BERLIN, '2026-11-30T00:00:00Z', '2026-12-07T00:00:00Z', 2400],
    ['holidays do not count', BERLIN, '2026-12-24T00:00:00Z', '2026-12-29T00:00:00Z', 960],
    ['lunch does not count', BERLIN_LUNCH, '2026-11-30T08:00:00Z', '2026-11-30T16:00:00Z', 420],
    ['fractional minutes', BERLIN, '2026-11-30T09:00:00Z', '2026-11-30T09:00:30Z', 0.5],
    ['spring DST day is 23 hours', BERLIN_ALL_DAY, '2026-03-28T23:00:00Z', '2026-03-29T22:00:00Z', 1380],
    ['autumn DST day is 25 hours', BERLIN_ALL_DAY, '2026-10-24T22:00:00Z', '2026-10-25T23:00:00Z', 1500],
    ['night shift over the spring gap', BERLIN_NIGHT, '2026-03-28T12:00:00Z', '2026-03-29T12:00:00Z', 120],
    [
      'night shift over the autumn overlap',
      BERLIN_NIGHT,
      '2026-10-24T12:00:00Z',
      '2026-10-25T12:00:00Z',
      240,
    ],
    ['interval spanning spring DST, weekdays', BERLIN, '2026-03-27T11:00:00Z', '2026-03-30T09:00:00Z', 420],
    ['interval spanning autumn DST, weekdays', BERLIN, '2026-10-23T10:00:00Z', '2026-10-26T10:00:00Z', 420],
    ['New York over spring DST', NEW_YORK, '2026-03-06T17:00:00Z', '2026-03-09T16:00:00Z', 480],
    ['New York over autumn DST', NEW_YORK, '2026-10-30T16:00:00Z', '2026-11-02T16:00:00Z', 420],
    ['Kolkata one business day', KOLKATA, '2026-11-30T04:00:00Z', '2026-12-01T04:00:00Z', 510],
    ['Kolkata half hours at the edges', KOLKATA, '2026-11-30T03:30:00Z', '2026-11-30T05:00:00Z', 60],
    [
      '24/7 counts elapsed minutes over DST',
      TWENTY_FOUR_SEVEN,
      '2026-03-29T00:00:00Z',
      '2026-03-29T03:00:00Z',
      180,
    ],
  ];

  it.each(cases)('%s', (_name, schedule, from, to, minutes) => {
    expect(businessMinutesBetween(at(from), at(to), schedule)).toBe(minutes);
  });
});

describe('add and between agree', () => {
  const schedules: Array<[string, Schedule]> = [
    ['Berlin', BERLIN],
    ['Berlin night', BERLIN_NIGHT],
    ['Berlin 02:30', BERLIN_FROM_0230],
    ['New York', NEW_YORK],
    ['Kolkata', KOLKATA],
    ['24/7', TWENTY_FOUR_SEVEN],
  ];
  // Starts every 7 h 13 min across both DST weekends of 2026 (Europe and US), several target sizes.
  const starts: Date[] = [];
  for (const base of [
    '2026-03-05T00:00:00Z',
    '2026-03-26T00:00:00Z',
    '2026-10-22T00:00:00Z',
    '2026-10-29T00:00:00Z',
  ]) {
    for (let i = 0; i < 20; i++) starts.push(new Date(Date.parse(base) + i * 433 * 60_000));
  }
  it.each(schedules)(
    '%s: between(start, add(start, m)) = m, and due is never before start',
    (_n, schedule) => {
      for (const start of starts) {
        for (const m of [1, 59, 240, 1000]) {
          const due = addBusinessMinutes(start, m, schedule);
          expect(due.getTime()).toBeGreaterThanOrEqual(start.getTime() + 60_000);
          expect(businessMinutesBetween(start, due, schedule)).toBe(m);
        }
      }
    },
  );
});

describe('policy value checks', () => {
  it.each([
    ['09:00', false, true],
    ['23:59', false, true],
    ['24:00', false, false],
    ['24:00', true, true],
    ['9:00', false, false],
    ['09:60', false, false],
    ['25:00', true, false],
  ] as const)('isLocalTime(%s, asEnd=%s) = %s', (s, asEnd, ok) => {
    expect(isLocalTime(s, asEnd)).toBe(ok);
  });

  it.each([
    ['Europe/Berlin', true],
    ['America/New_York', true],
    ['Asia/Kolkata', true],
    ['UTC', true],
    ['Mars/Olympus_Mons', false],
    ['+02:00', false],
    ['', false],
  ] as const)('isIanaTimezone(%s) = %s', (tz, ok) => {
    expect(isIanaTimezone(tz)).toBe(ok);
  });

  it.each([
    ['2026-12-25', true],
    ['2028-02-29', true],
    ['2026-02-29', false],
    ['2026-13-01', false],
    ['2026-1-01', false],
    ['25.12.2026', false],
  ] as const)('isIsoDate(%s) = %s', (s, ok) => {
    expect(isIsoDate(s)).toBe(ok);
  });
});
