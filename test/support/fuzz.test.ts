import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { parseJson } from '../../protocol/canonical-json.ts';
import { OutpostError } from '../../protocol/errors.ts';
import { assertDecoderTotal, byteInputs, jsonTextInputs, mutateBytes, mutateJson } from './fuzz.ts';

describe('fuzz harness', () => {
  it('mutateBytes applies each operation', () => {
    const b = Uint8Array.from([1, 2, 3, 4]);
    assert.deepEqual([...mutateBytes(b, [{ op: 'truncate', at: 2 }])], [1, 2]);
    assert.deepEqual([...mutateBytes(b, [{ op: 'flip', at: 0, bit: 1 }])], [3, 2, 3, 4]);
    assert.deepEqual([...mutateBytes(b, [{ op: 'delete', at: 1, count: 2 }])], [1, 4]);
    assert.deepEqual([...mutateBytes(b, [{ op: 'insert', at: 4, bytes: Uint8Array.of(9) }])], [1, 2, 3, 4, 9]);
  });

  it('mutateJson never alters its input', () => {
    const seed = { a: [1, { b: 2 }] };
    mutateJson(seed, [{ path: 3, op: 'delete', value: null, key: 'x' }]);
    assert.deepEqual(seed, { a: [1, { b: 2 }] });
  });

  it('fails a decoder that throws an untyped error', () => {
    assert.throws(() =>
      assertDecoderTotal(
        byteInputs([Uint8Array.of(1)]),
        (b) => {
          if (b.length > 3) throw new TypeError('boom');
        },
        { cases: 500 },
      ),
    );
  });

  it('passes a decoder that throws only OutpostErrors, and counts both outcomes', () => {
    const r = assertDecoderTotal(
      jsonTextInputs([{ a: 1 }]),
      (t) => {
        const v = parseJson(t, 1024);
        if (typeof v !== 'object') throw new OutpostError('NOT_OBJECT', 'not an object');
      },
      { cases: 2000 },
    );
    assert.ok(r.accepted > 0 && r.rejected > 0);
  });

  it('byteInputs yields both random and mutated inputs', () => {
    const samples = fc.sample(byteInputs([Uint8Array.of(0xaa, 0xbb)]), 200);
    assert.ok(samples.some((s) => s.length > 8));
    assert.ok(samples.some((s) => s.includes(0xaa)));
  });
});
