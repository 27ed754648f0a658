import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { canonicalize } from '../../protocol/canonical-json.ts';
import { didKeyFromEd25519 } from '../../protocol/did-key.ts';
import { ed25519KeyPair, signingInput } from '../../protocol/signing.ts';
import {
  decodeTelemetryUnit,
  encodeTelemetryUnit,
  MAX_UNIT_RECORDS,
  parseTelemetryUnit,
  QUALITY_FLAGS,
  signTelemetryUnit,
  TELEMETRY_UNIT_CONTEXT,
  type TelemetryRecord,
  telemetryUnitSigningBytes,
  valueFitsStream,
  verifyTelemetryUnit,
} from '../../protocol/telemetry.ts';
import { seedFromHex, vectorJson } from '../support/protocol-vectors.ts';

const file = vectorJson<{
  vectors: {
    name: string;
    deviceSeedHex: string;
    device: string;
    records: TelemetryRecord[];
    signingInputHex?: string;
    unitText: string;
  }[];
  rejects: { name: string; unitText: string; error: string }[];
}>('telemetry', 'units.json');
const v = file.vectors[0]!;
const seed = seedFromHex(v.deviceSeedHex);
const wire = v.unitText;

describe('telemetry: vectors', () => {
  for (const c of file.vectors) {
    it(`${c.name}: signs and encodes byte for byte, decodes and verifies`, () => {
      const unit = signTelemetryUnit(seedFromHex(c.deviceSeedHex), c.records);
      assert.equal(unit.device, c.device);
      assert.equal(encodeTelemetryUnit(unit), c.unitText);
      if (c.signingInputHex) {
        assert.deepEqual(
          signingInput(TELEMETRY_UNIT_CONTEXT, telemetryUnitSigningBytes(unit)),
          seedFromHex(c.signingInputHex),
        );
      }
      const back = decodeTelemetryUnit(c.unitText);
      assert.deepEqual(back.records, c.records);
      verifyTelemetryUnit(back, c.device);
      assert.equal(encodeTelemetryUnit(back), c.unitText);
    });
  }

  for (const c of file.rejects) {
    it(`refuses ${c.name}: ${c.error}`, () =>
      assert.throws(() => verifyTelemetryUnit(decodeTelemetryUnit(c.unitText)), { code: c.error }));
  }
});

describe('telemetry: deny', () => {
  const unit = () => JSON.parse(wire);
  const table: [string, () => unknown, string][] = [
    [
      'a gap in seqs',
      () => parseTelemetryUnit({ ...unit(), records: [v.records[0], v.records[2]] }),
      'TELEMETRY_SEQ_GAP',
    ],
    ['seqs out of order', () => signTelemetryUnit(seed, [v.records[1]!, v.records[0]!]), 'TELEMETRY_SEQ_GAP'],
    ['a repeated seq', () => signTelemetryUnit(seed, [v.records[0]!, v.records[0]!]), 'TELEMETRY_SEQ_GAP'],
    ['no records', () => parseTelemetryUnit({ ...unit(), records: [] }), 'TELEMETRY_MALFORMED'],
    [
      'too many records',
      () =>
        signTelemetryUnit(
          seed,
          Array.from({ length: MAX_UNIT_RECORDS + 1 }, (_, i) => ({ ...v.records[0]!, seq: i })),
        ),
      'TELEMETRY_MALFORMED',
    ],
    ['a negative seq', () => signTelemetryUnit(seed, [{ ...v.records[0]!, seq: -1 }]), 'TELEMETRY_MALFORMED'],
    ['an unsafe seq', () => signTelemetryUnit(seed, [{ ...v.records[0]!, seq: 2 ** 53 }]), 'TELEMETRY_MALFORMED'],
    ['a fractional ts', () => signTelemetryUnit(seed, [{ ...v.records[0]!, ts: 1.5 }]), 'TELEMETRY_MALFORMED'],
    [
      'an object value',
      () => signTelemetryUnit(seed, [{ ...v.records[0]!, value: {} as never }]),
      'TELEMETRY_MALFORMED',
    ],
    [
      'a null value',
      () => signTelemetryUnit(seed, [{ ...v.records[0]!, value: null as never }]),
      'TELEMETRY_MALFORMED',
    ],
    [
      'a long string value',
      () => signTelemetryUnit(seed, [{ ...v.records[0]!, value: 'x'.repeat(257) }]),
      'TELEMETRY_MALFORMED',
    ],
    ['a lone surrogate', () => signTelemetryUnit(seed, [{ ...v.records[0]!, value: '\ud800' }]), 'TELEMETRY_MALFORMED'],
    [
      'a bad stream name',
      () => signTelemetryUnit(seed, [{ ...v.records[0]!, stream: 'Soil Moisture' }]),
      'TELEMETRY_MALFORMED',
    ],
    [
      'a duplicate quality flag',
      () => signTelemetryUnit(seed, [{ ...v.records[0]!, quality: ['stale', 'stale'] }]),
      'TELEMETRY_MALFORMED',
    ],
    [
      'an unknown quality flag',
      () => signTelemetryUnit(seed, [{ ...v.records[0]!, quality: ['good' as never] }]),
      'TELEMETRY_MALFORMED',
    ],
    [
      'an empty quality list',
      () => signTelemetryUnit(seed, [{ ...v.records[0]!, quality: [] }]),
      'TELEMETRY_MALFORMED',
    ],
    [
      'an unknown record field',
      () => parseTelemetryUnit({ ...unit(), records: [{ ...v.records[0], unit: 'C' }] }),
      'TELEMETRY_MALFORMED',
    ],
    ['an unknown unit field', () => parseTelemetryUnit({ ...unit(), gateway: 'x' }), 'TELEMETRY_MALFORMED'],
    ['version 2', () => parseTelemetryUnit({ ...unit(), v: 2 }), 'TELEMETRY_MALFORMED'],
    ['more than maxBytes of text', () => decodeTelemetryUnit(wire, { maxBytes: 100 }), 'TELEMETRY_TOO_LARGE'],
    ['not JSON', () => decodeTelemetryUnit('{"v":1'), 'TELEMETRY_MALFORMED'],
    [
      'a record changed after signing',
      () => verifyTelemetryUnit({ ...unit(), records: [{ ...v.records[0], value: 0.43 }, ...v.records.slice(1)] }),
      'TELEMETRY_BAD_SIGNATURE',
    ],
    [
      'a unit re-attributed to another device',
      () =>
        verifyTelemetryUnit({
          ...unit(),
          device: didKeyFromEd25519(ed25519KeyPair(new Uint8Array(32).fill(7)).publicKey),
        }),
      'TELEMETRY_BAD_SIGNATURE',
    ],
    [
      'a unit from a device other than the session’s',
      () => verifyTelemetryUnit(unit(), didKeyFromEd25519(new Uint8Array(32).fill(7))),
      'TELEMETRY_WRONG_DEVICE',
    ],
  ];
  for (const [name, run, code] of table) {
    it(`${name}: ${code}`, () => assert.throws(run, { code }));
  }

  it('a unit of maximal strings stays within MAX_UNIT_BYTES, larger ones are refused', () => {
    const records = Array.from({ length: MAX_UNIT_RECORDS }, (_, i) => ({
      seq: i,
      stream: `s.${'a'.repeat(60)}`,
      ts: 2 ** 50,
      value: '\u{1F600}'.repeat(128),
      quality: [...QUALITY_FLAGS],
    }));
    assert.throws(() => signTelemetryUnit(seed, records), { code: 'TELEMETRY_TOO_LARGE' });
    signTelemetryUnit(seed, records.slice(0, 64));
  });
});

describe('telemetry: values against the manifest stream type', () => {
  const table: [unknown, string, boolean][] = [
    [0.42, 'number', true],
    [18, 'number', true],
    [18, 'integer', true],
    [18.5, 'integer', false],
    [2 ** 53, 'integer', false],
    [true, 'boolean', true],
    [1, 'boolean', false],
    ['3D', 'string', true],
    ['1', 'number', false],
  ];
  for (const [value, type, want] of table) {
    it(`${JSON.stringify(value)} ${want ? 'fits' : 'does not fit'} ${type}`, () =>
      assert.equal(valueFitsStream(value as never, type as never), want));
  }
});

describe('telemetry: round trip', () => {
  const segment = fc
    .tuple(fc.constantFrom(...'abcxyz'), fc.string({ unit: fc.constantFrom(...'az09_'), maxLength: 10 }))
    .map(([a, b]) => a + b);
  const record = (seq: number) =>
    fc.record(
      {
        seq: fc.constant(seq),
        stream: fc.array(segment, { minLength: 2, maxLength: 4 }).map((segs) => segs.join('.')),
        ts: fc.nat({ max: 2 ** 45 }),
        value: fc.oneof(
          fc.double({ noNaN: true, noDefaultInfinity: true }),
          fc.integer(),
          fc.boolean(),
          fc.string({ maxLength: 128, unit: 'binary' }),
        ),
        quality: fc.uniqueArray(fc.constantFrom(...QUALITY_FLAGS), { minLength: 1 }),
      },
      { requiredKeys: ['seq', 'stream', 'ts', 'value'], noNullPrototype: true },
    );

  it('sign → encode → decode → verify returns the same records', () => {
    fc.assert(
      fc.property(
        fc.nat({ max: 2 ** 40 }).chain((start) => fc.tuple(...Array.from({ length: 5 }, (_, i) => record(start + i)))),
        fc.integer({ min: 1, max: 5 }),
        (records, n) => {
          const unit = signTelemetryUnit(seed, records.slice(0, n));
          const back = decodeTelemetryUnit(encodeTelemetryUnit(unit));
          verifyTelemetryUnit(back, v.device);
          // -0 is carried as 0 (RFC 8785); everything else is exact.
          assert.equal(canonicalize(back), canonicalize(unit));
        },
      ),
      { numRuns: 300 },
    );
  });
});
