import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { decodeFrameRecord, encodeFrameRecord, type FrameRecord } from '../../gateway/frame-record.ts';
import { assertDecoderTotal, byteInputs, fuzzCases } from '../support/fuzz.ts';

const record = fc.record({
  radio: fc.string({ minLength: 1, maxLength: 16 }).filter((s) => !/[\ud800-\udfff]/.test(s)),
  rssiDbm: fc.oneof(
    fc.constant(Number.NaN),
    fc.integer({ min: -640, max: 160 }).map((q) => q / 4),
  ),
  snrDb: fc.oneof(
    fc.constant(Number.NaN),
    fc.integer({ min: -128, max: 80 }).map((q) => q / 4),
  ),
  rxWallMs: fc.integer({ min: 0, max: 2 ** 48 - 1 }),
  frame: fc.uint8Array({ minLength: 1, maxLength: 508 }),
});

describe('frame record', () => {
  it('round-trips (property)', () => {
    fc.assert(
      fc.property(record, (r: FrameRecord) => {
        const back = decodeFrameRecord(encodeFrameRecord(r));
        assert.equal(back.radio, r.radio);
        assert.ok(Object.is(back.rssiDbm, r.rssiDbm) || back.rssiDbm === r.rssiDbm);
        assert.ok(Object.is(back.snrDb, r.snrDb) || back.snrDb === r.snrDb);
        assert.equal(back.rxWallMs, r.rxWallMs);
        assert.deepEqual(back.frame, r.frame);
      }),
      { numRuns: 2000 },
    );
  });

  it('stores RSSI and SNR to 0.25 dB and rounds the rest', () => {
    const r = decodeFrameRecord(
      encodeFrameRecord({ radio: 'r', rssiDbm: -97.3, snrDb: 6.6, rxWallMs: 5, frame: new Uint8Array([1]) }),
    );
    assert.equal(r.rssiDbm, -97.25);
    assert.equal(r.snrDb, 6.5);
  });

  it('refuses what it cannot store', () => {
    const ok = { radio: 'r', rssiDbm: 0, snrDb: 0, rxWallMs: 0, frame: new Uint8Array([1]) };
    for (const bad of [
      { ...ok, radio: '' },
      { ...ok, radio: 'x'.repeat(65) },
      { ...ok, frame: new Uint8Array(0) },
      { ...ok, frame: new Uint8Array(509) },
      { ...ok, rxWallMs: -1 },
      { ...ok, rxWallMs: 2 ** 48 },
    ]) {
      assert.throws(() => encodeFrameRecord(bad), { code: 'RECORD_MALFORMED' });
    }
  });

  it('decoder is total (fuzz)', () => {
    const seeds = [
      encodeFrameRecord({
        radio: 'rnode0',
        rssiDbm: -80,
        snrDb: 7,
        rxWallMs: 1_800_000_000_000,
        frame: new Uint8Array(40),
      }),
      encodeFrameRecord({
        radio: 'é',
        rssiDbm: Number.NaN,
        snrDb: Number.NaN,
        rxWallMs: 0,
        frame: new Uint8Array(508),
      }),
    ];
    const { accepted, rejected } = assertDecoderTotal(byteInputs(seeds, 600), decodeFrameRecord, {
      cases: fuzzCases(),
    });
    assert.ok(accepted > 0 && rejected > 0);
  });
});
