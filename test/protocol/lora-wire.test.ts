import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { fromHex, toHex } from '../../protocol/bytes.ts';
import { didKeyFromEd25519 } from '../../protocol/did-key.ts';
import { isOutpostError } from '../../protocol/errors.ts';
import {
  ByteReader,
  ByteWriter,
  readCompactString,
  VARINT_MAX,
  varintSize,
  writeCompactString,
  ZIGZAG_MAX,
} from '../../protocol/lora-wire.ts';

function codeOf(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    return isOutpostError(e) ? e.code : `untyped: ${String(e)}`;
  }
  return 'accepted';
}

describe('varints', () => {
  it('round-trip every value 0..2^53−1 in the shortest form', () => {
    fc.assert(
      fc.property(fc.oneof(fc.nat(), fc.maxSafeNat(), fc.constantFrom(0, 127, 128, 16383, 16384, VARINT_MAX)), (n) => {
        const b = new ByteWriter().varint(n).finish();
        assert.equal(b.length, varintSize(n));
        assert.equal(b.length, n === 0 ? 1 : Math.ceil(Math.log2(n + 1) / 7) || 1);
        const r = new ByteReader(b);
        assert.equal(r.varint(), n);
        r.end('varint');
      }),
    );
  });

  it('round-trip signed values within ±2^52 via zigzag', () => {
    fc.assert(
      fc.property(
        fc.oneof(fc.integer({ min: -ZIGZAG_MAX, max: ZIGZAG_MAX - 1 }), fc.constantFrom(-ZIGZAG_MAX, ZIGZAG_MAX - 1)),
        (n) => {
          assert.equal(new ByteReader(new ByteWriter().svarint(n).finish()).svarint(), n);
        },
      ),
    );
    assert.equal(toHex(new ByteWriter().svarint(-1).svarint(1).svarint(-64).svarint(64).finish()), '01027f8001');
  });

  it('reject redundant zero groups, overlong and out-of-range encodings', () => {
    assert.equal(
      codeOf(() => new ByteReader(fromHex('8000')).varint()),
      'LORA_NON_CANONICAL',
    );
    assert.equal(
      codeOf(() => new ByteReader(fromHex('ff00')).varint()),
      'LORA_NON_CANONICAL',
    );
    assert.equal(
      codeOf(() => new ByteReader(fromHex('ffffffffffffffff01')).varint()),
      'LORA_PAYLOAD_MALFORMED',
    );
    assert.equal(
      codeOf(() => new ByteReader(fromHex('8080808080808010')).varint()),
      'LORA_PAYLOAD_MALFORMED',
    );
    assert.equal(
      codeOf(() => new ByteReader(fromHex('80')).varint()),
      'LORA_PAYLOAD_MALFORMED',
    );
    assert.equal(
      codeOf(() => new ByteWriter().varint(-1)),
      'LORA_VALUE_UNSUPPORTED',
    );
    assert.equal(
      codeOf(() => new ByteWriter().varint(2 ** 53)),
      'LORA_VALUE_UNSUPPORTED',
    );
    assert.equal(
      codeOf(() => new ByteWriter().svarint(ZIGZAG_MAX)),
      'LORA_VALUE_UNSUPPORTED',
    );
  });
});

describe('compact strings', () => {
  const didKey = didKeyFromEd25519(new Uint8Array(32).fill(5));
  const table: [string, string, number][] = [
    ['uuid', '0b7c6a52-8f1e-4c55-9a0e-2f1f4f0e8b11', 17],
    ['did:key', didKey, 33],
    ['lowercase hex', 'deadbeef', 6],
    ['base64url', 'q2sN8mD1xC4zT0bW5yVh3A', 18],
    ['uppercase hex travels as base64url', 'DEADBEEF', 8],
    ['UTF-8', 'relay.set', 11],
    ['empty', '', 2],
    ['odd-length hex travels as base64url', 'abc', 4],
    ['text that is neither', 'a b', 5],
    ['non-canonical base64url is text', 'AB', 4],
  ];
  for (const [name, s, size] of table) {
    it(`${name}: ${JSON.stringify(s).slice(0, 30)} takes ${size} bytes`, () => {
      const w = new ByteWriter();
      writeCompactString(w, s);
      const b = w.finish();
      assert.equal(b.length, size);
      const r = new ByteReader(b);
      assert.equal(readCompactString(r, 's'), s);
      r.end('s');
    });
  }

  it('round-trip any well-formed string', () => {
    const strings = fc.oneof(
      fc.string({ unit: 'grapheme', maxLength: 40 }),
      fc.uuid(),
      fc.uint8Array({ minLength: 1, maxLength: 40 }).map((b) => toHex(b)),
      fc.base64String({ maxLength: 40 }).map((s) => s.replace(/=+$/, '').replaceAll('+', '-').replaceAll('/', '_')),
    );
    fc.assert(
      fc.property(strings, (s) => {
        const w = new ByteWriter();
        writeCompactString(w, s);
        assert.equal(readCompactString(new ByteReader(w.finish()), 's'), s);
      }),
    );
  });

  it('reject a string carried in a form the encoder would not choose', () => {
    // A UUID spelled as UTF-8 text, and hex carried as raw bytes in the base64url form.
    const asText = new ByteWriter()
      .u8(0)
      .varint(36)
      .bytes(new TextEncoder().encode('0b7c6a52-8f1e-4c55-9a0e-2f1f4f0e8b11'));
    assert.equal(
      codeOf(() => readCompactString(new ByteReader(asText.finish()), 's')),
      'LORA_NON_CANONICAL',
    );
    assert.equal(
      codeOf(() => readCompactString(new ByteReader(fromHex('010369b71d')), 's')),
      'LORA_NON_CANONICAL',
    );
    assert.equal(
      codeOf(() => readCompactString(new ByteReader(fromHex('0200')), 's')),
      'LORA_NON_CANONICAL',
    );
    assert.equal(
      codeOf(() => readCompactString(new ByteReader(fromHex('0501')), 's')),
      'LORA_PAYLOAD_MALFORMED',
    );
    assert.equal(
      codeOf(() => writeCompactString(new ByteWriter(), '\ud800')),
      'LORA_VALUE_UNSUPPORTED',
    );
  });
});
