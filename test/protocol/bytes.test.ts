import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import {
  bytesEqual,
  concatBytes,
  fromBase58btc,
  fromBase64Url,
  fromHex,
  fromUtf8,
  toBase58btc,
  toBase64Url,
  toHex,
  utf8,
} from '../../protocol/bytes.ts';
import { isOutpostError } from '../../protocol/errors.ts';
import { vectorJson } from '../support/protocol-vectors.ts';

interface Encodings {
  base64url: { bytesHex: string; text: string }[];
  base64urlRejects: { name: string; text: string }[];
  base58btc: { bytesHex: string; text: string }[];
  base58btcRejects: { name: string; text: string }[];
}
const enc = vectorJson<Encodings>('canonical-signing', 'encodings.json');

const badEncoding = (e: unknown) => isOutpostError(e, 'BAD_ENCODING');

describe('byte encodings', () => {
  describe('base64url (RFC 4648 §5, unpadded)', () => {
    for (const v of enc.base64url) {
      it(`${JSON.stringify(v.text)} ⇄ ${v.bytesHex || '(empty)'}`, () => {
        assert.equal(toBase64Url(fromHex(v.bytesHex)), v.text);
        assert.equal(toHex(fromBase64Url(v.text)), v.bytesHex);
      });
    }
    for (const v of enc.base64urlRejects) {
      it(`refuses ${v.name}`, () => assert.throws(() => fromBase64Url(v.text), badEncoding));
    }

    it('encodes a subarray view, not its whole buffer', () => {
      const whole = Uint8Array.of(1, 2, 3, 4, 5);
      assert.equal(toBase64Url(whole.subarray(1, 3)), toBase64Url(Uint8Array.of(2, 3)));
    });

    it('round-trips any bytes, and its alphabet never needs escaping in a URL', () => {
      fc.assert(
        fc.property(fc.uint8Array({ maxLength: 200 }), (b) => {
          const t = toBase64Url(b);
          assert.match(t, /^[A-Za-z0-9_-]*$/);
          assert.deepEqual(fromBase64Url(t), b);
        }),
      );
    });
  });

  describe('base58btc (Bitcoin alphabet)', () => {
    for (const v of enc.base58btc) {
      it(`${JSON.stringify(v.text)} ⇄ ${v.bytesHex || '(empty)'}`, () => {
        assert.equal(toBase58btc(fromHex(v.bytesHex)), v.text);
        assert.equal(toHex(fromBase58btc(v.text)), v.bytesHex);
      });
    }
    for (const v of enc.base58btcRejects) {
      it(`refuses ${v.name}`, () => assert.throws(() => fromBase58btc(v.text), badEncoding));
    }

    it('round-trips any bytes; each leading zero byte is one leading "1"', () => {
      fc.assert(
        fc.property(fc.nat(4), fc.uint8Array({ maxLength: 64 }), (zeros, rest) => {
          const b = concatBytes(new Uint8Array(zeros), rest);
          const t = toBase58btc(b);
          assert.deepEqual(fromBase58btc(t), b);
          const leadingZeroBytes = b.findIndex((x) => x !== 0);
          const leadingOnes = t.length - t.replace(/^1+/, '').length;
          assert.equal(leadingOnes, leadingZeroBytes === -1 ? b.length : leadingZeroBytes);
        }),
      );
    });
  });

  describe('hex', () => {
    it('round-trips any bytes in lowercase', () => {
      fc.assert(
        fc.property(fc.uint8Array({ maxLength: 100 }), (b) => {
          const t = toHex(b);
          assert.match(t, /^[0-9a-f]*$/);
          assert.deepEqual(fromHex(t), b);
        }),
      );
    });

    for (const bad of ['0', 'abc', '0g', ' 00', '0x00']) {
      it(`refuses ${JSON.stringify(bad)}`, () => assert.throws(() => fromHex(bad), badEncoding));
    }
  });

  describe('UTF-8', () => {
    const invalid: [string, number[]][] = [
      ['lone continuation byte', [0x80]],
      ['overlong NUL', [0xc0, 0x80]],
      ['encoded surrogate', [0xed, 0xa0, 0x80]],
      ['truncated sequence', [0xe2, 0x82]],
      ['above U+10FFFF', [0xf4, 0x90, 0x80, 0x80]],
    ];
    for (const [name, bytes] of invalid) {
      it(`refuses ${name} instead of substituting U+FFFD`, () =>
        assert.throws(() => fromUtf8(Uint8Array.from(bytes)), badEncoding));
    }

    it('round-trips every well-formed string', () => {
      fc.assert(fc.property(fc.string({ unit: 'binary' }), (s) => assert.equal(fromUtf8(utf8(s)), s)));
    });
  });

  describe('concatBytes and bytesEqual', () => {
    it('concatenates in order', () => {
      assert.deepEqual(concatBytes(Uint8Array.of(1), new Uint8Array(0), Uint8Array.of(2, 3)), Uint8Array.of(1, 2, 3));
      assert.deepEqual(concatBytes(), new Uint8Array(0));
    });

    it('bytesEqual agrees with a byte-by-byte comparison', () => {
      fc.assert(
        fc.property(fc.uint8Array({ maxLength: 8 }), fc.uint8Array({ maxLength: 8 }), (a, b) => {
          assert.equal(bytesEqual(a, b), Buffer.compare(a, b) === 0);
          assert.equal(bytesEqual(a, Uint8Array.from(a)), true);
        }),
      );
    });
  });
});
