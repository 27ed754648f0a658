import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import {
  bitrateBps,
  isLowDataRateOptimizeRequired,
  type LoraModulation,
  payloadSymbols,
  rnodeAirtimeMs,
  rnodeFrameSizes,
  rnodePhyTimings,
  rnodePreambleSymbols,
  symbolTimeMs,
  timeOnAirMs,
} from '../../firmware-bridge/airtime.ts';
import { isOutpostError } from '../../protocol/errors.ts';

const SFS = [7, 8, 9, 12] as const;

function lora(sf: number, preambleSymbols: number, bandwidthHz = 125_000): LoraModulation {
  return { spreadingFactor: sf, bandwidthHz, codingRate: 5, preambleSymbols };
}

/** Asserts `actual` equals a table cell printed with `decimals` decimals. */
function assertCell(actual: number, cell: number, decimals: number, label: string): void {
  const tolerance = 0.5 * 10 ** -decimals + 1e-9;
  assert.ok(Math.abs(actual - cell) <= tolerance, `${label}: computed ${actual.toFixed(3)} ms, table says ${cell}`);
}

describe('airtime: Semtech time-on-air formula (RADIO_PROTOCOLS §3.2)', () => {
  // PHY payload → [ms, payload symbols] at SF7/8/9/12, BW 125 kHz, CR 4/5, preamble 8, explicit header, CRC on.
  const table: Record<number, [number, number][]> = {
    16: [
      [51.5, 38],
      [92.7, 33],
      [164.9, 28],
      [1318.9, 28],
    ],
    64: [
      [118.0, 103],
      [215.6, 93],
      [390.1, 83],
      [2793.5, 73],
    ],
    200: [
      [317.7, 298],
      [563.7, 263],
      [1004.5, 233],
      [7217.2, 208],
    ],
    255: [
      [399.6, 378],
      [707.1, 333],
      [1250.3, 293],
      [9019.4, 263],
    ],
  };
  for (const [payload, cells] of Object.entries(table)) {
    SFS.forEach((sf, i) => {
      const [ms, symbols] = cells[i]!;
      it(`${payload} B at SF${sf}, preamble 8 → ${ms} ms (${symbols} symbols)`, () => {
        assertCell(timeOnAirMs(Number(payload), lora(sf, 8)), ms, 1, `${payload} B SF${sf}`);
        assert.equal(payloadSymbols(Number(payload), lora(sf, 8)), symbols);
      });
    });
  }

  const meshtastic16: Record<number, number[]> = {
    16: [59.6, 109.1, 197.6, 1581.1],
    255: [407.8, 723.5, 1283.1, 9281.5],
  };
  for (const [payload, cells] of Object.entries(meshtastic16)) {
    SFS.forEach((sf, i) => {
      it(`Meshtastic 16-symbol preamble: ${payload} B at SF${sf} → ${cells[i]} ms`, () => {
        assertCell(timeOnAirMs(Number(payload), lora(sf, 16)), cells[i]!, 1, `${payload} B SF${sf} pre16`);
      });
    });
  }

  for (const [payload, ms] of [
    [16, 354],
    [64, 723],
    [200, 1747],
    [255, 2157],
  ] as const) {
    it(`Meshtastic LONG_FAST (SF11, 250 kHz, CR 4/5, preamble 16): ${payload} B → ${ms} ms`, () => {
      assertCell(timeOnAirMs(payload, lora(11, 16, 250_000)), ms, 0, `LONG_FAST ${payload} B`);
    });
  }

  const rnode: Record<number, number[]> = {
    16: [68, 113, 206, 1647],
    200: [334, 584, 1046, 7709],
    500: [822, 1435, 2562, 18530],
  };
  for (const [packet, cells] of Object.entries(rnode)) {
    SFS.forEach((sf, i) => {
      it(`RNode framing: ${packet} B Reticulum packet at SF${sf} → ${cells[i]} ms`, () => {
        const ms = rnodeAirtimeMs(Number(packet), { spreadingFactor: sf, bandwidthHz: 125_000, codingRate: 5 });
        assertCell(ms, cells[i]!, 0, `RNode ${packet} B SF${sf}`);
      });
    });
  }

  it('cross-check: 64 B at SF12 is the 2.793 s LoRaMac-node computes', () => {
    assert.equal(Math.round(timeOnAirMs(64, lora(12, 8))), 2793);
  });

  it('US915 400 ms dwell: largest PHY payload per SF matches §3.3 (255/138/66/24 B, nothing at SF11+)', () => {
    const largest = (m: LoraModulation) => {
      let best = -1;
      for (let pl = 0; pl <= 255; pl++) if (timeOnAirMs(pl, m) <= 400) best = pl;
      return best;
    };
    assert.deepEqual(
      [7, 8, 9, 10].map((sf) => largest(lora(sf, 8))),
      [255, 138, 66, 24],
    );
    assert.ok(largest(lora(11, 8)) <= 0);
    assert.equal(largest(lora(12, 8)), -1);
    assert.equal(largest(lora(11, 16, 250_000)), 22, 'LONG_FAST exceeds 400 ms above 22 PHY bytes');
  });
});

describe('airtime: symbol time, LDRO rule, bitrate', () => {
  it('symbol times at 125 kHz', () => {
    assert.deepEqual(
      [7, 8, 9, 10, 11, 12].map((sf) => symbolTimeMs(sf, 125_000)),
      [1.024, 2.048, 4.096, 8.192, 16.384, 32.768],
    );
  });

  it('LDRO is required exactly when a symbol lasts more than 16 ms', () => {
    const on: string[] = [];
    for (const bw of [62_500, 125_000, 250_000, 500_000]) {
      for (let sf = 5; sf <= 12; sf++) if (isLowDataRateOptimizeRequired(sf, bw)) on.push(`SF${sf}/${bw / 1000}`);
    }
    assert.deepEqual(on, ['SF10/62.5', 'SF11/62.5', 'SF12/62.5', 'SF11/125', 'SF12/125', 'SF12/250']);
  });

  it('LDRO lengthens SF12 frames and can be forced off', () => {
    const withLdro = timeOnAirMs(64, lora(12, 8));
    const without = timeOnAirMs(64, { ...lora(12, 8), lowDataRateOptimize: false });
    assert.ok(withLdro > without);
  });

  it('implicit header and no CRC shorten a frame', () => {
    const base = timeOnAirMs(14, lora(9, 8));
    assert.ok(timeOnAirMs(14, { ...lora(9, 8), explicitHeader: false }) < base);
    assert.ok(timeOnAirMs(14, { ...lora(9, 8), crc: false }) < base);
  });

  it('SF5/SF6 use the SX126x formula (6.25 preamble extra symbols)', () => {
    const m = lora(5, 8, 500_000);
    assert.equal(timeOnAirMs(10, m), (8 + 6.25 + payloadSymbols(10, m)) * symbolTimeMs(5, 500_000));
    assert.equal(payloadSymbols(10, m), 8 + Math.ceil((80 + 16 - 20 + 20) / 20) * 5);
  });

  it('bitrate is 3.125 kbit/s for SF8/125 kHz/CR5, as Reticulum displays', () => {
    assert.equal(Math.round(bitrateBps(8, 125_000, 5)), 3125);
    assert.equal(Math.round(bitrateBps(7, 125_000, 5)), 5469);
  });

  it('time on air never decreases with payload and is positive', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 5, max: 12 }),
        fc.constantFrom(7_800, 62_500, 125_000, 250_000, 500_000),
        fc.integer({ min: 5, max: 8 }),
        fc.integer({ min: 6, max: 64 }),
        fc.integer({ min: 0, max: 254 }),
        (sf, bw, cr, pre, pl) => {
          const m = { spreadingFactor: sf, bandwidthHz: bw, codingRate: cr, preambleSymbols: pre };
          const a = timeOnAirMs(pl, m);
          return a > 0 && timeOnAirMs(pl + 1, m) >= a;
        },
      ),
    );
  });

  it('rejects impossible inputs with AIRTIME_INVALID', () => {
    const bad: [string, () => unknown][] = [
      ['SF 4', () => symbolTimeMs(4, 125_000)],
      ['SF 13', () => symbolTimeMs(13, 125_000)],
      ['BW 0', () => symbolTimeMs(7, 0)],
      ['BW NaN', () => symbolTimeMs(7, Number.NaN)],
      ['CR 4', () => timeOnAirMs(10, { ...lora(7, 8), codingRate: 4 })],
      ['preamble -1', () => timeOnAirMs(10, lora(7, -1))],
      ['payload 256', () => timeOnAirMs(256, lora(7, 8))],
      ['payload 1.5', () => timeOnAirMs(1.5, lora(7, 8))],
      ['RNode packet 0', () => rnodeFrameSizes(0)],
      ['RNode packet 509', () => rnodeFrameSizes(509)],
    ];
    for (const [label, f] of bad) {
      assert.throws(f, (e: unknown) => isOutpostError(e, 'AIRTIME_INVALID'), label);
    }
  });
});

describe('airtime: RNode framing (RADIO_PROTOCOLS §1.4)', () => {
  it('packets up to 254 B are one frame with a 1-byte header; larger ones split 255 + rest', () => {
    assert.deepEqual(rnodeFrameSizes(1), [2]);
    assert.deepEqual(rnodeFrameSizes(254), [255]);
    assert.deepEqual(rnodeFrameSizes(255), [255, 2]);
    assert.deepEqual(rnodeFrameSizes(500), [255, 247]);
    assert.deepEqual(rnodeFrameSizes(508), [255, 255]);
  });

  it('preamble = max(18, ceil(24 ms / T_sym)): 24 symbols at SF7/125k, 18 at SF8 and slower', () => {
    const pre = (sf: number, bw = 125_000, cr = 5) =>
      rnodePreambleSymbols({ spreadingFactor: sf, bandwidthHz: bw, codingRate: cr });
    assert.deepEqual(
      [7, 8, 9, 10, 11, 12].map((sf) => pre(sf)),
      [24, 18, 18, 18, 18, 18],
    );
    assert.equal(pre(7, 250_000), 47, '24 ms / 0.512 ms = 46.9 → 47');
    assert.equal(pre(7, 500_000), 94, '21.9 kbit/s keeps the 24 ms target: 24 / 0.256 = 93.75 → 94');
    assert.equal(pre(6, 500_000), 47, 'above 30 kbit/s the target is 6 ms: 6 / 0.128 = 46.9 → 47');
  });

  it('PHY timings match the firmware: CSMA slot 12 symbols clamped 24..100 ms, DIFS 2 slots', () => {
    const t8 = rnodePhyTimings({ spreadingFactor: 8, bandwidthHz: 125_000, codingRate: 5 });
    assert.deepEqual(
      { slot: t8.csmaSlotMs, difs: t8.difsMs, pre: t8.preambleSymbols, preMs: t8.preambleTimeMs },
      { slot: 24.576, difs: 49.152, pre: 18, preMs: 37 },
    );
    assert.equal(rnodePhyTimings({ spreadingFactor: 7, bandwidthHz: 125_000, codingRate: 5 }).csmaSlotMs, 24);
    assert.equal(rnodePhyTimings({ spreadingFactor: 12, bandwidthHz: 125_000, codingRate: 5 }).csmaSlotMs, 100);
    assert.equal(rnodePhyTimings({ spreadingFactor: 6, bandwidthHz: 500_000, codingRate: 5 }).csmaSlotMs, 6);
  });

  it('a two-frame packet costs the sum of both frames', () => {
    const m = { spreadingFactor: 9, bandwidthHz: 125_000, codingRate: 5 };
    const lm = { ...m, preambleSymbols: 18 };
    assert.equal(rnodeAirtimeMs(500, m), timeOnAirMs(255, lm) + timeOnAirMs(247, lm));
  });
});
