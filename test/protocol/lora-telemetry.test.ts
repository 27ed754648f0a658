import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { fromHex, toHex } from '../../protocol/bytes.ts';
import { isOutpostError } from '../../protocol/errors.ts';
import {
  decodeTelemetry,
  decodeTelemetryAck,
  encodeTelemetry,
  encodeTelemetryAck,
  LORA_OVERHEAD_BYTES,
  LORA_PROFILES,
  LORA_QUALITY_FLAGS,
  type LoraTelemetryRecord,
  type LoraTelemetryValue,
  normalizeSeqRanges,
  packTelemetry,
  type SeqRange,
} from '../../protocol/lora.ts';
import { TELEMETRY_MANTISSA_MAX, TELEMETRY_SEQ_MAX, TELEMETRY_TS_MAX } from '../../protocol/lora-telemetry.ts';

function codeOf(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    return isOutpostError(e) ? e.code : `untyped: ${String(e)}`;
  }
  return 'accepted';
}

const T0 = 1_767_225_600_000;

const valueArb: fc.Arbitrary<LoraTelemetryValue> = fc.oneof(
  fc.constant(null),
  fc.boolean(),
  fc.integer(),
  fc.maxSafeInteger(),
  fc.double({ noNaN: true, noDefaultInfinity: true }),
  fc
    .tuple(fc.integer({ min: -10_000_000, max: 10_000_000 }), fc.integer({ min: 0, max: 7 }))
    .map(([m, s]) => m / 10 ** s),
  fc.constantFrom(-0, 0.1, 21.37, 1013.25, TELEMETRY_MANTISSA_MAX, -TELEMETRY_MANTISSA_MAX - 1, 2 ** 52),
  fc.string({ unit: 'grapheme', maxLength: 30 }),
  fc.uint8Array({ maxLength: 24 }),
);

const tsArb = fc.oneof(
  fc.integer({ min: 0, max: 2 ** 40 }).map((s) => s * 1000),
  fc.integer({ min: 0, max: TELEMETRY_TS_MAX }),
  fc.integer({ min: 0, max: 100_000 }).map((d) => T0 + d),
);

const recordArb: fc.Arbitrary<LoraTelemetryRecord> = fc
  .record({
    seq: fc.oneof(fc.nat(5000), fc.integer({ min: 0, max: TELEMETRY_SEQ_MAX })),
    stream: fc.oneof(fc.nat(6), fc.nat(0xffff)),
    ts: tsArb,
    value: valueArb,
    quality: fc.option(fc.subarray([...LORA_QUALITY_FLAGS], { minLength: 1 }), { nil: undefined, freq: 4 }),
  })
  .map(({ quality, ...r }) => (quality === undefined ? r : { ...r, quality }));

const recordsArb = fc.uniqueArray(recordArb, { selector: (r) => `${r.stream}:${r.seq}`, minLength: 1, maxLength: 60 });

/** A realistic backlog: a few streams sampled periodically, numbered by one device-wide seq. */
const backlogArb = fc
  .record({
    streams: fc.integer({ min: 1, max: 5 }),
    rounds: fc.integer({ min: 1, max: 120 }),
    periodS: fc.constantFrom(1, 10, 60, 300),
    jitterMs: fc.constantFrom(0, 0, 250),
    firstSeq: fc.nat(1_000_000),
  })
  .map(({ streams, rounds, periodS, jitterMs, firstSeq }) => {
    const out: LoraTelemetryRecord[] = [];
    for (let k = 0; k < rounds; k++) {
      for (let s = 0; s < streams; s++) {
        out.push({
          seq: firstSeq + out.length,
          stream: s,
          ts: T0 + k * periodS * 1000 + (jitterMs ? (k * 37 + s * 11) % jitterMs : 0),
          value:
            s === 0 ? 20 + ((k * 7) % 30) / 10 : s === 1 ? 40 + (k % 5) : s === 2 ? k % 3 === 0 : 1013.25 - k / 100,
        });
      }
    }
    return out;
  });

/** Records as a decoder returns them: plain objects in (stream, seq) order. */
const canonicalOrder = (rs: readonly LoraTelemetryRecord[]) =>
  rs.map((r) => ({ ...r })).sort((a, b) => a.stream - b.stream || a.seq - b.seq);

describe('telemetry payload', () => {
  it('round-trips any records, returned in (stream, seq) order', () => {
    fc.assert(
      fc.property(recordsArb, (records) => {
        const payload = encodeTelemetry(records);
        assert.deepEqual(decodeTelemetry(payload), canonicalOrder(records));
        assert.equal(toHex(encodeTelemetry(decodeTelemetry(payload))), toHex(payload));
      }),
      { numRuns: 500 },
    );
  });

  it('chooses the compact forms of §4.4.3', () => {
    const size = (value: LoraTelemetryValue) =>
      encodeTelemetry([{ seq: 0, stream: 0, ts: 0, value }]).length -
      encodeTelemetry([{ seq: 0, stream: 0, ts: 0, value: null }]).length;
    const table: [LoraTelemetryValue, number][] = [
      [null, 0],
      [true, 0],
      [21, 1],
      [-64, 1],
      [21.5, 2], // decimal, one fraction digit: mantissa 215
      [0.25, 1], // decimal, two digits: mantissa 25
      [1013.25, 3],
      [-0, 4], // f32
      [2 ** -20, 4], // f32
      [Math.PI, 8], // f64
      ['ok', 3],
      [new Uint8Array(5), 6],
    ];
    for (const [value, bytes] of table) assert.equal(size(value), bytes, String(value));
  });

  it('carries quality flags as a one-byte mask, returned in list order', () => {
    const rec = { seq: 1, stream: 0, ts: T0, value: 3, quality: ['substituted', 'estimated'] as const };
    const plain = encodeTelemetry([{ ...rec, quality: undefined }]);
    const flagged = encodeTelemetry([rec]);
    assert.equal(flagged.length, plain.length + 1);
    assert.deepEqual(decodeTelemetry(flagged), [{ ...rec, quality: ['estimated', 'substituted'] }]);
    assert.equal(
      codeOf(() => encodeTelemetry([{ ...rec, quality: [] }])),
      'LORA_VALUE_UNSUPPORTED',
    );
    assert.equal(
      codeOf(() => encodeTelemetry([{ ...rec, quality: ['stale', 'stale'] }])),
      'LORA_VALUE_UNSUPPORTED',
    );
    const unknown = { ...rec, quality: ['great'] } as unknown as LoraTelemetryRecord;
    assert.equal(
      codeOf(() => encodeTelemetry([unknown])),
      'LORA_VALUE_UNSUPPORTED',
    );
    assert.equal(
      codeOf(() => decodeTelemetry(fromHex('0100003b000040' + '06'))),
      'LORA_PAYLOAD_MALFORMED',
    );
  });

  it('codes a reading of the same stream and type as a difference from the previous one', () => {
    const rec = (seq: number, value: number) => ({ seq, stream: 0, ts: T0 + seq * 60_000, value });
    const payload = encodeTelemetry([rec(1, 21.3), rec(2, 21.4), rec(3, 21.4), rec(4, 21.2)]);
    // flags, seq0, ts0 (5 bytes), first record: head, stream, mantissa 213 (2 bytes); then head + 1-byte delta each
    // (the second record also spells out its ts delta of 60 s once).
    assert.equal(payload.length, 1 + 1 + 5 + (1 + 1 + 2) + (1 + 1 + 1) + (1 + 1) + (1 + 1));
    assert.deepEqual(decodeTelemetry(payload), [rec(1, 21.3), rec(2, 21.4), rec(3, 21.4), rec(4, 21.2)]);
  });

  it('refuses records it cannot carry', () => {
    const ok = { seq: 1, stream: 0, ts: T0, value: 1 };
    const cases: [string, unknown][] = [
      ['empty', []],
      ['NaN', [{ ...ok, value: Number.NaN }]],
      ['Infinity', [{ ...ok, value: Number.POSITIVE_INFINITY }]],
      ['object value', [{ ...ok, value: { a: 1 } }]],
      ['negative seq', [{ ...ok, seq: -1 }]],
      ['seq beyond 2^52', [{ ...ok, seq: 2 ** 52 }]],
      ['stream beyond 65535', [{ ...ok, stream: 65536 }]],
      ['fractional ts', [{ ...ok, ts: 1.5 }]],
      ['lone surrogate', [{ ...ok, value: '\udc00' }]],
      ['duplicate (stream, seq)', [ok, { ...ok, value: 2 }]],
      ['string too long', [{ ...ok, value: 'x'.repeat(481) }]],
    ];
    for (const [name, records] of cases) {
      assert.equal(
        codeOf(() => encodeTelemetry(records as LoraTelemetryRecord[])),
        'LORA_VALUE_UNSUPPORTED',
        name,
      );
    }
  });

  it('rejects non-canonical spellings of valid payloads', () => {
    assert.equal(
      toHex(encodeTelemetry([0, 1].map((seq) => ({ seq, stream: 0, ts: 0, value: 0 })))),
      '0100003a00003e00',
    );
    const cases: [string, string][] = [
      ['whole seconds sent in ms', '0000e8073a0000'],
      ['repeated stream spelled out', '0100003a00003a0000'],
      ['repeated seq step spelled out', '0100003a00003602' + '00'],
      ['decimal that is an integer', '0100004a0014'],
      ['base is not the first record', '01010032' + '0a0000'],
      ['records out of order', '0100003a01003a0000'],
    ];
    for (const [name, hex] of cases)
      assert.equal(
        codeOf(() => decodeTelemetry(fromHex(hex))),
        'LORA_NON_CANONICAL',
        name,
      );
    assert.equal(
      codeOf(() => decodeTelemetry(fromHex('0100003600'))),
      'LORA_PAYLOAD_MALFORMED',
      'first record repeats a stream',
    );
    assert.equal(
      codeOf(() => decodeTelemetry(fromHex('010000'))),
      'LORA_PAYLOAD_MALFORMED',
      'no records',
    );
  });
});

describe('telemetry packer', () => {
  const budget = (maxFrameBytes: number) => maxFrameBytes - LORA_OVERHEAD_BYTES;

  function checkPack(records: LoraTelemetryRecord[], maxFrameBytes: number, maxFrames?: number): void {
    const pack = packTelemetry(records, maxFrameBytes, maxFrames === undefined ? {} : { maxFrames });
    const placed = new Set<LoraTelemetryRecord>();
    for (const f of pack.frames) {
      assert.ok(f.payload.length <= budget(maxFrameBytes), 'payload fits the frame');
      assert.deepEqual(decodeTelemetry(f.payload), canonicalOrder(f.records), 'frame holds exactly its records');
      assert.deepEqual(
        f.records.map((r) => ({ ...r })),
        canonicalOrder(f.records),
        'frame records are listed in payload order',
      );
      for (const r of f.records) {
        assert.ok(!placed.has(r), 'each record in one frame only');
        placed.add(r);
      }
    }
    // Records in = records out: placed + leftover + oversize is the input, each once.
    const all = [...placed, ...pack.leftover, ...pack.oversize];
    assert.equal(all.length, records.length);
    assert.equal(new Set(all).size, records.length);
    for (const r of records) assert.ok(all.includes(r));
    // Leftover keeps the caller's order.
    const order = new Map(records.map((r, i) => [r, i]));
    for (let i = 1; i < pack.leftover.length; i++) {
      assert.ok(order.get(pack.leftover[i - 1]!)! < order.get(pack.leftover[i]!)!);
    }
    // Priority: each frame holds the highest-priority record not packed earlier (oversize ones excepted).
    const before = new Set<LoraTelemetryRecord>(pack.oversize);
    for (const f of pack.frames) {
      const first = records.find((r) => !before.has(r));
      assert.ok(first !== undefined && f.records.includes(first), 'frame starts from the highest priority');
      for (const r of f.records) before.add(r);
    }
    for (const r of pack.oversize) {
      assert.ok(
        codeOf(() => encodeTelemetry([r])) !== 'accepted' || encodeTelemetry([r]).length > budget(maxFrameBytes),
      );
    }
    if (maxFrames === undefined) assert.deepEqual(pack.leftover, []);
    else assert.ok(pack.frames.length <= maxFrames);
  }

  it('records in = records out across frames, within the MTU, in priority order (random records)', () => {
    fc.assert(
      fc.property(
        recordsArb,
        fc.oneof(fc.constantFrom(233, 254), fc.integer({ min: 40, max: 508 })),
        fc.option(fc.integer({ min: 0, max: 4 }), { nil: undefined }),
        (records, maxFrameBytes, maxFrames) => checkPack(records, maxFrameBytes, maxFrames),
      ),
      { numRuns: 300 },
    );
  });

  it('records in = records out across frames for realistic backlogs at both MTUs', () => {
    fc.assert(
      fc.property(
        backlogArb,
        fc.constantFrom(LORA_PROFILES.meshtastic, LORA_PROFILES.rnode),
        fc.option(fc.integer({ min: 1, max: 3 }), { nil: undefined }),
        (records, profile, maxFrames) => checkPack(records, profile.maxFrameBytes, maxFrames),
      ),
      { numRuns: 100 },
    );
  });

  it('sets oversize values aside instead of failing the batch', () => {
    const big = { seq: 2, stream: 1, ts: T0, value: 'x'.repeat(300) };
    const huge = { seq: 3, stream: 1, ts: T0, value: new Uint8Array(1000) };
    const small = { seq: 1, stream: 0, ts: T0, value: 1 };
    const pack = packTelemetry([big, small, huge], 233);
    assert.deepEqual(pack.oversize, [big, huge]);
    assert.deepEqual(
      pack.frames.map((f) => f.records),
      [[small]],
    );
    assert.equal(packTelemetry([big], 508).frames.length, 1);
  });

  it('fills a frame densely: 3 periodic streams ≥ 80 readings per Meshtastic frame, 1 stream ≥ 90', () => {
    const three: LoraTelemetryRecord[] = [];
    for (let k = 0; three.length < 300; k++) {
      for (let s = 0; s < 3; s++) {
        three.push({
          seq: 5000 + three.length,
          stream: s,
          ts: T0 + k * 60_000,
          // Readings rounded to the sensor's resolution, as §4.4.3 asks (1013.2 − 0.1 would be an f64).
          value: [(215 + (k % 5)) / 10, 48 + (k % 3), (10132 - (k % 4)) / 10][s]!,
        });
      }
    }
    const one = three.filter((r) => r.stream === 0).map((r, i) => ({ ...r, seq: i }));
    const n3 = packTelemetry(three, 233, { maxFrames: 1 }).frames[0]!.records.length;
    const n1 = packTelemetry(one, 233, { maxFrames: 1 }).frames[0]!.records.length;
    assert.ok(n3 >= 80, `three streams: ${n3}`);
    assert.ok(n1 >= 90, `one stream: ${n1}`);
  });
});

describe('telemetry ack', () => {
  const rangesArb = fc.array(
    fc.tuple(fc.nat(400), fc.nat(20)).map(([from, len]): SeqRange => ({ from, to: from + len })),
    { maxLength: 12 },
  );

  it('round-trips the normalised set of acknowledged seqs', () => {
    fc.assert(
      fc.property(rangesArb, fc.option(fc.nat(2 ** 33), { nil: undefined }), (ranges, timeS) => {
        const ack = timeS === undefined ? { ranges } : { ranges, timeS };
        const back = decodeTelemetryAck(encodeTelemetryAck(ack));
        assert.deepEqual(back.ranges, normalizeSeqRanges(ranges));
        assert.equal(back.timeS, timeS);
        const covered = (rs: readonly SeqRange[]) => {
          const s = new Set<number>();
          for (const r of rs) for (let i = r.from; i <= r.to; i++) s.add(i);
          return [...s].sort((a, b) => a - b);
        };
        assert.deepEqual(covered(back.ranges), covered(ranges));
        for (let i = 1; i < back.ranges.length; i++) assert.ok(back.ranges[i]!.from > back.ranges[i - 1]!.to + 1);
      }),
    );
  });

  it('refuses bad ranges and malformed payloads', () => {
    assert.equal(
      codeOf(() => encodeTelemetryAck({ ranges: [{ from: 5, to: 4 }] })),
      'LORA_VALUE_UNSUPPORTED',
    );
    assert.equal(
      codeOf(() => encodeTelemetryAck({ ranges: [{ from: -1, to: 4 }] })),
      'LORA_VALUE_UNSUPPORTED',
    );
    assert.equal(
      codeOf(() => decodeTelemetryAck(fromHex('0005'))),
      'LORA_PAYLOAD_MALFORMED',
    );
    assert.equal(
      codeOf(() => decodeTelemetryAck(fromHex('02'))),
      'LORA_PAYLOAD_MALFORMED',
    );
    assert.equal(
      codeOf(() => decodeTelemetryAck(fromHex('000000'))),
      'LORA_PAYLOAD_MALFORMED',
    );
  });
});
