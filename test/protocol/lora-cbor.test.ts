import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { fromHex, toHex } from '../../protocol/bytes.ts';
import type { JsonValue } from '../../protocol/canonical-json.ts';
import { isOutpostError } from '../../protocol/errors.ts';
import { CBOR_MAX_DEPTH, decodeCbor, encodeCbor, float16Bits } from '../../protocol/lora-cbor.ts';

function codeOf(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    return isOutpostError(e) ? e.code : `untyped: ${String(e)}`;
  }
  return 'accepted';
}

/** IEEE 754 binary16 → number, written from the standard independently of the codec. */
function halfToNumber(h: number): number {
  const sign = h >> 15 ? -1 : 1;
  const e = (h >> 10) & 31;
  const f = h & 1023;
  if (e === 0) return sign * (f / 1024) * 2 ** -14;
  return sign * (1 + f / 1024) * 2 ** (e - 15);
}

describe('deterministic CBOR', () => {
  it('float16Bits finds every finite binary16 value and only those', () => {
    for (let h = 0; h < 0x10000; h++) {
      if (((h >> 10) & 31) === 31) continue; // infinities and NaNs are not JSON
      assert.equal(float16Bits(halfToNumber(h)), h, `half 0x${h.toString(16)}`);
    }
    for (const v of [1.1, 65520, 2 ** -25, 1 + 2 ** -11, 1e-8, 3.4028234663852886e38]) {
      assert.equal(float16Bits(v), undefined, String(v));
    }
  });

  it('round-trips JSON values, and re-encoding a decoded item gives the same bytes', () => {
    fc.assert(
      fc.property(fc.jsonValue({ maxDepth: 6 }), (v) => {
        const bytes = encodeCbor(v as JsonValue);
        const back = decodeCbor(bytes);
        assert.deepEqual(back, v);
        assert.equal(toHex(encodeCbor(back)), toHex(bytes));
      }),
    );
  });

  it('keeps -0, "__proto__" keys and key order semantics', () => {
    assert.equal(toHex(encodeCbor(-0)), 'f98000');
    assert.ok(Object.is(decodeCbor(fromHex('f98000')), -0));
    const proto = JSON.parse('{"__proto__":{"polluted":true},"a":1}') as JsonValue;
    const back = decodeCbor(encodeCbor(proto)) as Record<string, JsonValue>;
    assert.deepEqual(Object.keys(back), ['a', '__proto__']);
    assert.equal(Object.getPrototypeOf(back), Object.prototype);
    assert.equal(({} as Record<string, unknown>).polluted, undefined);
    assert.equal(toHex(encodeCbor({ b: 1, a: 2 })), toHex(encodeCbor({ a: 2, b: 1 })));
  });

  it('refuses values outside the JSON data model and nesting beyond the limit, both ways', () => {
    for (const v of [Number.NaN, Number.POSITIVE_INFINITY, undefined, () => 1, new Date(0), 10n, Symbol('x')]) {
      assert.equal(
        codeOf(() => encodeCbor(v as unknown as JsonValue)),
        'LORA_VALUE_UNSUPPORTED',
      );
    }
    let deep: JsonValue = 1;
    for (let i = 0; i < CBOR_MAX_DEPTH; i++) deep = [deep];
    assert.deepEqual(decodeCbor(encodeCbor(deep)), deep);
    assert.equal(
      codeOf(() => encodeCbor([deep])),
      'LORA_VALUE_UNSUPPORTED',
    );
    assert.equal(
      codeOf(() => decodeCbor(fromHex(`${'81'.repeat(CBOR_MAX_DEPTH + 1)}01`))),
      'LORA_VALUE_UNSUPPORTED',
    );
  });

  it('never allocates for a declared length the input cannot hold', () => {
    assert.equal(
      codeOf(() => decodeCbor(fromHex('9bffffffffffffffff'))),
      'LORA_VALUE_UNSUPPORTED',
    );
    assert.equal(
      codeOf(() => decodeCbor(fromHex('9a7fffffff01'))),
      'LORA_PAYLOAD_MALFORMED',
    );
    assert.equal(
      codeOf(() => decodeCbor(fromHex('ba7fffffff0101'))),
      'LORA_PAYLOAD_MALFORMED',
    );
    assert.equal(
      codeOf(() => decodeCbor(fromHex('7a7fffffff61'))),
      'LORA_PAYLOAD_MALFORMED',
    );
  });
});
