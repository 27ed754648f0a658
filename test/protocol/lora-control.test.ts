import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { fromHex } from '../../protocol/bytes.ts';
import { isOutpostError } from '../../protocol/errors.ts';
import {
  BEACON_MAX_PENDING,
  decodeBeacon,
  decodeControl,
  decodeHeartbeat,
  encodeBeacon,
  encodeControl,
  encodeHeartbeat,
  type LoraBeacon,
  type LoraControl,
  type LoraHeartbeat,
} from '../../protocol/lora.ts';
import { loadVector, type VectorFile } from './lora-vectors.ts';

function codeOf(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    return isOutpostError(e) ? e.code : `untyped: ${String(e)}`;
  }
  return 'accepted';
}

const optional = <T>(a: fc.Arbitrary<T>) => fc.option(a, { nil: undefined });
const withoutUndefined = <T extends object>(o: T): T =>
  Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T;

describe('heartbeat', () => {
  it('round-trips', () => {
    fc.assert(
      fc.property(
        fc.record({
          uptimeS: fc.maxSafeNat(),
          queuedRecords: fc.nat(),
          batteryMv: optional(fc.nat(20_000)),
          timeS: optional(fc.nat(2 ** 40)),
        }),
        (hb) => {
          const h = withoutUndefined(hb) as LoraHeartbeat;
          assert.deepEqual(decodeHeartbeat(encodeHeartbeat(h)), h);
        },
      ),
    );
  });

  it('rejects reserved flags and trailing bytes', () => {
    assert.equal(
      codeOf(() => decodeHeartbeat(fromHex('04000000'))),
      'LORA_PAYLOAD_MALFORMED',
    );
    assert.equal(
      codeOf(() => decodeHeartbeat(fromHex('00000000'))),
      'LORA_PAYLOAD_MALFORMED',
    );
  });
});

describe('control', () => {
  it('round-trips each kind with any JSON value', () => {
    fc.assert(
      fc.property(
        fc.constantFrom('quorum-policy', 'jwks', 'revoke' as const),
        fc.jsonValue({ maxDepth: 4 }),
        (kind, v) => {
          const c = { kind, value: JSON.parse(JSON.stringify(v)) } as LoraControl;
          assert.deepEqual(decodeControl(encodeControl(c)), c);
        },
      ),
    );
  });

  it('refuses unknown kinds', () => {
    assert.equal(
      codeOf(() => encodeControl({ kind: 'firmware' as LoraControl['kind'], value: null })),
      'LORA_VALUE_UNSUPPORTED',
    );
  });
});

describe('beacon', () => {
  const beaconArb = fc
    .record({
      gatewayShortId: fc.uint8Array({ minLength: 4, maxLength: 4 }),
      seq: fc.nat(2 ** 32 - 1),
      timeS: optional(fc.nat(2 ** 40)),
      pending: fc.array(fc.uint8Array({ minLength: 4, maxLength: 4 }), { maxLength: BEACON_MAX_PENDING }),
    })
    .map((b) => withoutUndefined({ ...b }) as LoraBeacon);

  it('round-trips and always fits a Meshtastic frame', () => {
    fc.assert(
      fc.property(beaconArb, (b) => {
        const frame = encodeBeacon(b);
        assert.ok(frame.length <= 233);
        assert.deepEqual(decodeBeacon(frame), b);
      }),
    );
  });

  it('refuses what a beacon cannot be', () => {
    const b: LoraBeacon = { gatewayShortId: new Uint8Array(4), seq: 1, pending: [] };
    assert.equal(
      codeOf(() => encodeBeacon({ ...b, pending: new Array(49).fill(new Uint8Array(4)) })),
      'LORA_VALUE_UNSUPPORTED',
    );
    assert.equal(
      codeOf(() => encodeBeacon({ ...b, pending: [new Uint8Array(5)] })),
      'LORA_VALUE_UNSUPPORTED',
    );
    const frame = encodeBeacon(b);
    const withListen = frame.slice();
    withListen[1]! |= 0x20;
    assert.equal(
      codeOf(() => decodeBeacon(withListen)),
      'LORA_BAD_FLAGS',
    );
    const withFragment = frame.slice();
    withFragment[1]! |= 0x40;
    assert.equal(
      codeOf(() => decodeBeacon(withFragment)),
      'LORA_BAD_FRAGMENT',
    );
    const asUplink = frame.slice();
    asUplink[1]! &= 0x7f;
    assert.equal(
      codeOf(() => decodeBeacon(asUplink)),
      'LORA_BAD_TYPE',
    );
    const fv = loadVector<VectorFile<{ framesHex: string[] }>>('frames.json');
    assert.equal(
      codeOf(() => decodeBeacon(fromHex(fv.vectors[0]!.framesHex[0]!))),
      'LORA_BAD_TYPE',
    );
  });
});
