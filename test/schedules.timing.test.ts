import { describe, expect, it } from 'vitest';
import { ticksToFire } from '../src/schedules/missedTicks.js';
import { checkTiming, latestTicksBetween, tickAfter, ticksFrom } from '../src/schedules/timing.js';

const iso = (dates: Date[]) => dates.map((date) => date.toISOString());
const paris = checkTiming({ cron: '30 2 * * *', timeZone: 'Europe/Paris' });

describe('schedule timing', () => {
  it('runs a daily 02:30 Paris job at 03:30 CEST on the spring-forward day, when 02:30 does not exist', () => {
    // 2026-03-29: clocks go from 02:00 CET to 03:00 CEST. cron-parser (Luxon) moves the missing
    // local time forward by the gap, as it documents.
    expect(iso(ticksFrom(paris, new Date('2026-03-28T00:00:00Z'), 3))).toEqual([
      '2026-03-28T01:30:00.000Z', // 02:30 CET
      '2026-03-29T01:30:00.000Z', // 03:30 CEST: 02:30 was skipped by the clocks
      '2026-03-30T00:30:00.000Z', // 02:30 CEST
    ]);
  });

  it('runs a daily 02:30 Paris job once on the fall-back day, at the first of the two 02:30s', () => {
    // 2026-10-25: clocks go from 03:00 CEST back to 02:00 CET, so 02:30 happens twice.
    expect(iso(ticksFrom(paris, new Date('2026-10-24T00:00:00Z'), 3))).toEqual([
      '2026-10-24T00:30:00.000Z', // 02:30 CEST
      '2026-10-25T00:30:00.000Z', // 02:30 CEST, the first one; not again at 01:30Z (02:30 CET)
      '2026-10-26T01:30:00.000Z', // 02:30 CET
    ]);
  });

  it('keeps local wall-clock time: a daily 03:00 job comes 23 h after the one before on spring-forward day, 25 h on fall-back day', () => {
    const three = checkTiming({ cron: '0 3 * * *', timeZone: 'Europe/Paris' });
    const hoursBetween = ([a, b]: Date[]) => (b!.getTime() - a!.getTime()) / 3_600_000;
    expect(hoursBetween(ticksFrom(three, new Date('2026-03-28T00:00:00Z'), 2))).toBe(23);
    expect(hoursBetween(ticksFrom(three, new Date('2026-10-24T00:00:00Z'), 2))).toBe(25);
    expect(hoursBetween(ticksFrom(three, new Date('2026-06-01T00:00:00Z'), 2))).toBe(24);
  });

  it('aligns intervals to the Unix epoch, so every process computes the same ticks', () => {
    const everyTenMinutes = checkTiming({ intervalMs: 600_000 });
    expect(tickAfter(everyTenMinutes, new Date('2026-01-01T00:04:59.999Z')).toISOString()).toBe('2026-01-01T00:10:00.000Z');
    expect(tickAfter(everyTenMinutes, new Date('2026-01-01T00:10:00.000Z')).toISOString()).toBe('2026-01-01T00:20:00.000Z');
  });

  it('reads cron expressions with seconds', () => {
    const everyTwoSeconds = checkTiming({ cron: '*/2 * * * * *' });
    expect(iso(ticksFrom(everyTwoSeconds, new Date('2026-01-01T00:00:01.500Z'), 2))).toEqual([
      '2026-01-01T00:00:02.000Z',
      '2026-01-01T00:00:04.000Z',
    ]);
  });

  it('finds the latest ticks of a year-long gap without walking every tick', () => {
    const everyMinute = checkTiming({ cron: '* * * * *' });
    const started = performance.now();
    const ticks = latestTicksBetween(everyMinute, new Date('2025-01-01T00:00:00Z'), new Date('2026-01-01T00:00:30Z'), 3);
    expect(iso(ticks)).toEqual(['2025-12-31T23:58:00.000Z', '2025-12-31T23:59:00.000Z', '2026-01-01T00:00:00.000Z']);
    expect(performance.now() - started).toBeLessThan(500);
  });

  it('fires through the day after the clocks jump forward over a tick (Santiago at midnight, Lord Howe at 02:00)', () => {
    // 2026-09-06 in Chile: 00:00 becomes 01:00, so the midnight tick comes at 01:00 (04:00Z). For the
    // 23 hours after it, cron-parser's prev() threw "loop limit exceeded" and no schedule fired.
    const santiago = checkTiming({ cron: '0 0 * * *', timeZone: 'America/Santiago' });
    const nextTickAt = new Date('2026-09-06T04:00:00Z');
    expect(tickAfter(santiago, new Date('2026-09-05T12:00:00Z'))).toEqual(nextTickAt);
    const fire = (now: string, missedTicks: 'SKIP' | 'RUN_LAST' | 'RUN_EACH') =>
      iso(ticksToFire({ timing: santiago, missedTicks, maxCatchUp: 10, nextTickAt }, new Date(now)));
    expect(fire('2026-09-06T04:00:00.500Z', 'SKIP')).toEqual(['2026-09-06T04:00:00.000Z']);
    expect(fire('2026-09-06T20:00:00Z', 'SKIP')).toEqual([]); // missed, and no longer on time
    expect(fire('2026-09-06T20:00:00Z', 'RUN_LAST')).toEqual(['2026-09-06T04:00:00.000Z']);
    expect(fire('2026-09-08T03:30:00Z', 'RUN_EACH')).toEqual([
      '2026-09-06T04:00:00.000Z',
      '2026-09-07T03:00:00.000Z',
      '2026-09-08T03:00:00.000Z',
    ]);
    // 2026-10-04 at Lord Howe: 02:00 becomes 02:30 (15:30Z the day before). Every hour of that day
    // finds the ticks that next() steps through (which passes over the one in the gap).
    const lordHowe = checkTiming({ cron: '0 2 * * *', timeZone: 'Australia/Lord_Howe' });
    const from = new Date('2026-10-02T00:00:00Z');
    const forwards = ticksFrom(lordHowe, from, 4);
    for (let hour = 0; hour < 36; hour++) {
      const to = new Date(Date.UTC(2026, 9, 3, 12 + hour));
      expect(latestTicksBetween(lordHowe, from, to, 5), to.toISOString()).toEqual(forwards.filter((tick) => tick <= to));
    }
  });

  it.each([
    [{ cron: '61 * * * *' }, /Invalid cron expression/],
    [{ cron: '   ' }, /cron must be/],
    [{ cron: '0 9 * * *', timeZone: 'Mars/Olympus_Mons' }, /Unknown time zone/],
    [{ intervalMs: 999 }, /intervalMs must be/],
    [{ intervalMs: 1500.5 }, /intervalMs must be/],
    [{ intervalMs: 60_000, timeZone: 'UTC' }, /timeZone applies to cron/],
    [{ cron: '* * * * *', intervalMs: 60_000 }, /exactly one/],
    [{}, /exactly one/],
  ])('refuses %j', (input, message) => {
    expect(() => checkTiming(input)).toThrow(message);
  });
});

describe('missed tick policies', () => {
  const tenMinutes = checkTiming({ intervalMs: 600_000 });
  const nextTickAt = new Date('2026-01-01T00:10:00Z');
  // An hour and five minutes of nothing running: ticks 00:10 … 01:10 (7) were all due.
  const now = new Date('2026-01-01T01:15:00Z');
  const fire = (missedTicks: 'SKIP' | 'RUN_LAST' | 'RUN_EACH', at = now, maxCatchUp = 3) =>
    iso(ticksToFire({ timing: tenMinutes, missedTicks, maxCatchUp, nextTickAt }, at));

  it('SKIP makes no job for ticks missed, only for a tick less than a minute late', () => {
    expect(fire('SKIP')).toEqual([]);
    expect(fire('SKIP', new Date('2026-01-01T01:10:30Z'))).toEqual(['2026-01-01T01:10:00.000Z']);
  });

  it('RUN_LAST makes one job, for the latest missed tick', () => {
    expect(fire('RUN_LAST')).toEqual(['2026-01-01T01:10:00.000Z']);
  });

  it('RUN_EACH makes one job per missed tick, the latest maxCatchUp of them', () => {
    expect(fire('RUN_EACH')).toEqual(['2026-01-01T00:50:00.000Z', '2026-01-01T01:00:00.000Z', '2026-01-01T01:10:00.000Z']);
    expect(fire('RUN_EACH', now, 100)).toHaveLength(7);
  });

  it('every policy fires the one tick due when none was missed', () => {
    const onTime = new Date('2026-01-01T00:10:00.400Z');
    for (const policy of ['SKIP', 'RUN_LAST', 'RUN_EACH'] as const) expect(fire(policy, onTime)).toEqual(['2026-01-01T00:10:00.000Z']);
  });
});
