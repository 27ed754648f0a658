import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import {
  createDutyCycleAccountant,
  DUTY_CYCLE_WINDOW_MS,
  EU868_SUB_BANDS,
  eu868SubBand,
} from '../../firmware-bridge/duty-cycle.ts';
import { FakeClock } from '../../protocol/clock.ts';
import { isOutpostError } from '../../protocol/errors.ts';

const L_FREQ = 867_200_000; // Reticulum's example channel, sub-band L (1 %)
const BW = 125_000;

describe('duty-cycle: EU868 sub-bands (RADIO_PROTOCOLS §3.3)', () => {
  it('table holds K/L/M/N/P/Q with their limits', () => {
    assert.deepEqual(
      EU868_SUB_BANDS.map((b) => `${b.name} ${b.lowHz / 1e6}-${b.highHz / 1e6} ${b.dutyCycle * 100}%`),
      [
        'K 863-865 0.1%',
        'L 865-868 1%',
        'M 868-868.6 1%',
        'N 868.7-869.2 0.1%',
        'P 869.4-869.65 10%',
        'Q 869.7-870 1%',
      ],
    );
  });

  const rows: [string, number, number, string | undefined][] = [
    ['Reticulum example 867.2 MHz / 125 kHz', 867_200_000, 125_000, 'L'],
    ['LoRaWAN default 868.1 MHz', 868_100_000, 125_000, 'M'],
    ['LoRaWAN default 868.5 MHz', 868_500_000, 125_000, 'M'],
    ['Meshtastic EU_868 869.525 MHz / 250 kHz', 869_525_000, 250_000, 'P'],
    ['869.525 MHz / 500 kHz spills out of P', 869_525_000, 500_000, undefined],
    ['868.0 MHz / 125 kHz straddles L and M', 868_000_000, 125_000, undefined],
    ['gap 868.65 MHz', 868_650_000, 0, undefined],
    ['863.0 MHz / 125 kHz starts below the band', 863_000_000, 125_000, undefined],
    ['864.0 MHz', 864_000_000, 125_000, 'K'],
    ['869.0 MHz', 869_000_000, 125_000, 'N'],
    ['869.85 MHz', 869_850_000, 125_000, 'Q'],
    ['915 MHz is not EU', 915_000_000, 125_000, undefined],
  ];
  for (const [name, f, bw, band] of rows) {
    it(`${name} → ${band ?? 'no sub-band'}`, () => assert.equal(eu868SubBand(f, bw)?.name, band));
  }
});

describe('duty-cycle: sliding one-hour accountant', () => {
  it('1 % of an hour is 36 s: the 37th one-second frame waits until the first leaves the window', () => {
    const clock = new FakeClock();
    const acc = createDutyCycleAccountant({ region: 'EU868' });
    assert.equal(acc.budgetMs(L_FREQ, BW), 36_000);
    const t0 = clock.monotonicMs();
    for (let i = 0; i < 36; i++) {
      const d = acc.canTransmit(L_FREQ, 1_000, clock.monotonicMs(), BW);
      assert.equal(d.allowed, true, `frame ${i}`);
      acc.record(L_FREQ, 1_000, clock.monotonicMs(), BW);
      clock.advance(10_000);
    }
    const now = clock.monotonicMs();
    const refused = acc.canTransmit(L_FREQ, 1_000, now, BW);
    assert.equal(refused.allowed, false);
    assert.ok(!refused.allowed && refused.reason === 'duty-cycle');
    // The window ending when the new frame ends must have lost the first frame entirely: t0 + 1 s + 1 h − 1 s.
    const next = acc.nextAllowedAtMs(L_FREQ, 1_000, now, BW);
    assert.equal(next, t0 + DUTY_CYCLE_WINDOW_MS);
    assert.ok(!refused.allowed && refused.retryAfterMs === next! - now);
    clock.advance(next! - now - 1);
    assert.equal(acc.canTransmit(L_FREQ, 1_000, clock.monotonicMs(), BW).allowed, false, '1 ms early');
    clock.advance(1);
    assert.equal(acc.canTransmit(L_FREQ, 1_000, clock.monotonicMs(), BW).allowed, true);
    assert.equal(acc.usedMs(L_FREQ, clock.monotonicMs(), BW), 36_000, 'the window ending now still holds frame 1');
    assert.equal(acc.usedMs(L_FREQ, clock.monotonicMs() + 1_000, BW), 35_000);
  });

  it('partial overlap counts: the budget frees up as old frames slide out, not all at once', () => {
    const acc = createDutyCycleAccountant({ region: 'EU868' });
    acc.record(L_FREQ, 18_000, 0, BW);
    acc.record(L_FREQ, 18_000, 1_000_000, BW); // budget full
    assert.equal(acc.canTransmit(L_FREQ, 1_000, 3_590_000, BW).allowed, false);
    assert.equal(acc.nextAllowedAtMs(L_FREQ, 5_000, 3_590_000, BW), 3_600_000);
    // At 1 h the first frame leaves the window at the rate a new one fills it: 18 s fit, 18.001 s do not,
    // and the longer one must wait until the second old frame starts leaving.
    assert.equal(acc.canTransmit(L_FREQ, 18_000, 3_600_000, BW).allowed, true);
    assert.equal(acc.canTransmit(L_FREQ, 18_001, 3_600_000, BW).allowed, false);
    assert.equal(acc.nextAllowedAtMs(L_FREQ, 18_001, 3_600_000, BW), 4_582_000);
  });

  it('a frame longer than the whole budget is never allowed (no retry time)', () => {
    const acc = createDutyCycleAccountant({ region: 'EU868' });
    const d = acc.canTransmit(864_000_000, 3_601, 0, BW); // K: 0.1 % = 3.6 s
    assert.ok(!d.allowed && d.reason === 'duty-cycle' && d.retryAfterMs === undefined);
    assert.equal(acc.nextAllowedAtMs(864_000_000, 3_601, 0, BW), undefined);
  });

  it('sub-bands are accounted separately; P allows 10 %', () => {
    const acc = createDutyCycleAccountant({ region: 'EU868' });
    acc.record(L_FREQ, 36_000, 0, BW);
    assert.equal(acc.canTransmit(L_FREQ, 10, 36_000, BW).allowed, false);
    assert.equal(acc.canTransmit(868_100_000, 10, 36_000, BW).allowed, true, 'M is untouched');
    assert.equal(acc.budgetMs(869_525_000, 250_000), 360_000);
    const u = acc.usage(36_000);
    assert.equal(u.windowMs, 36_000);
    assert.equal(u.budgetUsed, 1);
    assert.equal(u.totalMs, 36_000);
  });

  it('out-of-band channels are refused with reason out-of-band', () => {
    const acc = createDutyCycleAccountant({ region: 'EU868' });
    const d = acc.canTransmit(915_000_000, 10, 0, BW);
    assert.ok(!d.allowed && d.reason === 'out-of-band' && d.retryAfterMs === undefined);
  });

  it('property: sending whenever allowed never puts more than the budget into any one-hour window', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.record({ gapMs: fc.integer({ min: 0, max: 400_000 }), airMs: fc.integer({ min: 1, max: 9_000 }) }),
          {
            minLength: 1,
            maxLength: 60,
          },
        ),
        (plan) => {
          const acc = createDutyCycleAccountant({ region: 'EU868' });
          const sent: [number, number][] = [];
          let now = 0;
          for (const { gapMs, airMs } of plan) {
            now += gapMs;
            const at = acc.nextAllowedAtMs(L_FREQ, airMs, now, BW);
            if (at === undefined) continue;
            assert.ok(at >= now);
            assert.equal(acc.canTransmit(L_FREQ, airMs, at, BW).allowed, true);
            if (at > now) assert.equal(acc.canTransmit(L_FREQ, airMs, at - 1, BW).allowed, false, 'not minimal');
            acc.record(L_FREQ, airMs, at, BW);
            sent.push([at, at + airMs]);
            now = at + airMs;
          }
          // Brute force: the busiest window ends at some transmission's end.
          for (const [, end] of sent) {
            let sum = 0;
            for (const [s, e] of sent) sum += Math.max(0, Math.min(e, end) - Math.max(s, end - DUTY_CYCLE_WINDOW_MS));
            assert.ok(sum <= 36_000 + 1e-6, `window ending ${end} holds ${sum} ms`);
          }
        },
      ),
      { numRuns: 300 },
    );
  });
});

describe('duty-cycle: US915 dwell time and region ANY', () => {
  it('125 kHz channels: at most 400 ms per transmission, and never retried', () => {
    const acc = createDutyCycleAccountant({ region: 'US915' });
    assert.equal(acc.canTransmit(903_900_000, 400, 0, 125_000).allowed, true);
    const d = acc.canTransmit(903_900_000, 400.1, 0, 125_000);
    assert.ok(!d.allowed && d.reason === 'dwell-time' && d.retryAfterMs === undefined);
    assert.equal(acc.canTransmit(903_900_000, 401, 0).allowed, false, 'unknown width counts as narrow');
  });

  it('500 kHz channels are exempt; no duty cycle in US915', () => {
    const acc = createDutyCycleAccountant({ region: 'US915' });
    assert.equal(acc.canTransmit(904_600_000, 2_000, 0, 500_000).allowed, true);
    for (let i = 0; i < 100; i++) acc.record(904_600_000, 2_000, i * 2_000, 500_000);
    assert.equal(acc.canTransmit(904_600_000, 2_000, 200_000, 500_000).allowed, true);
    assert.equal(acc.budgetMs(904_600_000, 500_000), Number.POSITIVE_INFINITY);
    assert.equal(acc.usage(200_000).budgetUsed, 0);
    assert.equal(acc.usage(200_000).windowMs, 200_000);
  });

  it('outside 902–928 MHz is out of band', () => {
    const acc = createDutyCycleAccountant({ region: 'US915' });
    const d = acc.canTransmit(868_100_000, 10, 0, 125_000);
    assert.ok(!d.allowed && d.reason === 'out-of-band');
  });

  it('region ANY applies no rule', () => {
    const acc = createDutyCycleAccountant({ region: 'ANY' });
    for (let i = 0; i < 10; i++) acc.record(433_000_000, 60_000, i * 60_000);
    assert.deepEqual(acc.canTransmit(433_000_000, 60_000, 600_000), { allowed: true, rule: 'none' });
  });

  it('rejects non-finite or negative numbers with AIRTIME_INVALID', () => {
    const acc = createDutyCycleAccountant({ region: 'EU868' });
    for (const args of [
      [Number.NaN, 1, 0],
      [L_FREQ, -1, 0],
      [L_FREQ, 1, Number.POSITIVE_INFINITY],
      [0, 1, 0],
    ] as const) {
      assert.throws(
        () => acc.canTransmit(args[0], args[1], args[2]),
        (e: unknown) => isOutpostError(e, 'AIRTIME_INVALID'),
      );
    }
    assert.throws(
      () => createDutyCycleAccountant({ region: 'EU868', windowMs: 0 }),
      (e: unknown) => isOutpostError(e, 'AIRTIME_INVALID'),
    );
  });
});
