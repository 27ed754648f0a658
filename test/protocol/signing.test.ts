import assert from 'node:assert/strict';
import { createPrivateKey, createPublicKey, sign as rawSign, verify as rawVerify } from 'node:crypto';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { concatBytes, fromHex, toHex, utf8 } from '../../protocol/bytes.ts';
import { isOutpostError } from '../../protocol/errors.ts';
import {
  ED25519_SIGNATURE_BYTES,
  ed25519KeyPair,
  HYBRID_PUBLIC_KEY_BYTES,
  HYBRID_SIGNATURE_BYTES,
  hybridKeyPair,
  isSmallOrderEd25519,
  signEd25519,
  signHybrid,
  signingInput,
  verifyEd25519,
  verifyHybrid,
} from '../../protocol/signing.ts';
import { vectorJson } from '../support/protocol-vectors.ts';

interface SigningInputVectors {
  vectors: { name: string; context: string; messageHex: string; signingInputHex: string }[];
  rejects: { name: string; context: string; error: string }[];
}
interface Ed25519Vector {
  name: string;
  seedHex: string;
  publicKeyHex: string;
  context: string | null;
  messageHex: string;
  signatureHex: string;
}
interface HybridVector {
  name: string;
  ed25519SeedHex: string;
  mldsaSeedHex: string;
  publicKeyHex: string;
  context: string;
  messageHex: string;
  signatureHex: string;
}

const siv = vectorJson<SigningInputVectors>('canonical-signing', 'signing-input.json');
const edv = vectorJson<{ vectors: Ed25519Vector[] }>('canonical-signing', 'ed25519.json').vectors;
const hyv = vectorJson<{ vectors: HybridVector[] }>('canonical-signing', 'hybrid.json').vectors;

const TEST_CONTEXT = 'outpost/test-vector/v1';

// node:crypto used directly, as an oracle independent of protocol/signing.ts.
const PKCS8_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex');
const SPKI_PREFIX = Buffer.from('302a300506032b6570032100', 'hex');
function oracleSign(seed: Uint8Array, bytes: Uint8Array): string {
  const key = createPrivateKey({ key: Buffer.concat([PKCS8_PREFIX, seed]), format: 'der', type: 'pkcs8' });
  return rawSign(null, bytes, key).toString('hex');
}
function oracleVerify(pub: Uint8Array, bytes: Uint8Array, sig: Uint8Array): boolean {
  const key = createPublicKey({ key: Buffer.concat([SPKI_PREFIX, pub]), format: 'der', type: 'spki' });
  return rawVerify(null, bytes, key, sig);
}

function flip(bytes: Uint8Array, at: number): Uint8Array {
  const out = Uint8Array.from(bytes);
  out[at % out.length]! ^= 0x01;
  return out;
}

const contextLabel = fc.stringMatching(/^outpost\/[a-z-]{1,20}\/v[1-9]$/);

describe('domain-separated signing', () => {
  describe('signingInput', () => {
    for (const v of siv.vectors) {
      it(v.name, () => {
        const got = signingInput(v.context, fromHex(v.messageHex));
        assert.equal(toHex(got), v.signingInputHex);
        // The construction, restated: UTF-8(label) || 0x00 || message.
        assert.equal(v.signingInputHex, `${toHex(utf8(v.context))}00${v.messageHex}`);
      });
    }
    for (const v of siv.rejects) {
      it(`refuses ${v.name}`, () =>
        assert.throws(
          () => signingInput(v.context, new Uint8Array(0)),
          (e) => isOutpostError(e, v.error),
        ));
    }

    it('accepts labels of 1 and 128 printable ASCII characters', () => {
      assert.equal(signingInput('~', Uint8Array.of(7)).length, 3);
      assert.equal(signingInput('x'.repeat(128), new Uint8Array(0)).length, 129);
    });

    it('is injective: distinct (label, message) pairs never share an input', () => {
      fc.assert(
        fc.property(
          contextLabel,
          contextLabel,
          fc.uint8Array({ maxLength: 8 }),
          fc.uint8Array({ maxLength: 8 }),
          (c1, c2, m1, m2) => {
            fc.pre(c1 !== c2 || toHex(m1) !== toHex(m2));
            assert.notEqual(toHex(signingInput(c1, m1)), toHex(signingInput(c2, m2)));
          },
        ),
      );
    });
  });

  describe('Ed25519', () => {
    for (const v of edv) {
      it(v.name, () => {
        const seed = fromHex(v.seedHex);
        const msg = fromHex(v.messageHex);
        const sig = fromHex(v.signatureHex);
        assert.equal(toHex(ed25519KeyPair(seed).publicKey), v.publicKeyHex);
        if (v.context === null) {
          // RFC 8032 §7.1 vector, pure Ed25519 over the raw message: checked through node:crypto.
          assert.equal(oracleSign(seed, msg), v.signatureHex);
          assert.ok(oracleVerify(fromHex(v.publicKeyHex), msg, sig));
          // A raw signature is valid as no Outpost signature: there is no label (not even an empty one)
          // whose signing input is the bare message.
          assert.throws(
            () => signingInput('', msg),
            (e) => isOutpostError(e, 'SIG_BAD_CONTEXT'),
          );
          assert.equal(verifyEd25519(fromHex(v.publicKeyHex), TEST_CONTEXT, msg, sig), false);
        } else {
          assert.equal(toHex(signEd25519(seed, v.context, msg)), v.signatureHex);
          assert.equal(oracleSign(seed, concatBytes(utf8(v.context), Uint8Array.of(0), msg)), v.signatureHex);
          assert.ok(verifyEd25519(fromHex(v.publicKeyHex), v.context, msg, sig));
        }
      });
    }

    const v = edv.find((x) => x.context !== null)!;
    const pub = fromHex(v.publicKeyHex);
    const msg = fromHex(v.messageHex);
    const sig = fromHex(v.signatureHex);

    it('fails on another label, a changed message, signature or key', () => {
      assert.equal(verifyEd25519(pub, 'outpost/other/v1', msg, sig), false);
      assert.equal(verifyEd25519(pub, v.context!, concatBytes(msg, Uint8Array.of(0)), sig), false);
      for (const at of [0, 31, 32, 63]) assert.equal(verifyEd25519(pub, v.context!, msg, flip(sig, at)), false);
      assert.equal(verifyEd25519(flip(pub, 0), v.context!, msg, sig), false);
    });

    it('refuses a malleated signature whose S is replaced by S + L (RFC 8032 §5.1.7 requires S < L)', () => {
      const L = 2n ** 252n + 27742317777372353535851937790883648493n;
      const le = (b: Uint8Array) => b.reduceRight((n, x) => (n << 8n) | BigInt(x), 0n);
      const s2 = le(sig.subarray(32)) + L;
      const malleated = Uint8Array.from(sig);
      for (let i = 0; i < 32; i++) malleated[32 + i] = Number((s2 >> BigInt(8 * i)) & 0xffn);
      assert.equal(verifyEd25519(pub, v.context!, msg, malleated), false);
    });

    it('returns false (never throws) for wrong lengths and keys that are not curve points', () => {
      assert.equal(verifyEd25519(pub.subarray(1), v.context!, msg, sig), false);
      assert.equal(verifyEd25519(pub, v.context!, msg, sig.subarray(1)), false);
      assert.equal(verifyEd25519(pub, v.context!, msg, concatBytes(sig, Uint8Array.of(0))), false);
      assert.equal(verifyEd25519(new Uint8Array(32).fill(0xff), v.context!, msg, sig), false);
      assert.equal(verifyEd25519('x' as unknown as Uint8Array, v.context!, msg, sig), false);
    });

    it('weak-key forgery: a small-order public key verifies nothing, not even the universal forgery', () => {
      // The 8 small-order points of edwards25519 (and y >= p spellings), each with the sign bit clear and set. With the
      // identity as key, (R = identity, S = 0) satisfies [S]B = R + [k]A for every message, and OpenSSL accepts it.
      const blocked = [
        '0000000000000000000000000000000000000000000000000000000000000000',
        '0100000000000000000000000000000000000000000000000000000000000000',
        '26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05',
        'c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a',
        'ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f',
        'edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f',
        'eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f',
      ];
      const identity = fromHex(blocked[1]!);
      const forged = concatBytes(identity, new Uint8Array(32));
      for (const hex of blocked) {
        for (const signBit of [0, 0x80]) {
          const key = fromHex(hex);
          key[31]! |= signBit;
          for (let i = 0; i < 8; i++) {
            const m = Uint8Array.of(i);
            assert.equal(verifyEd25519(key, v.context!, m, forged), false, `${toHex(key)} accepted a forgery`);
            assert.equal(verifyEd25519(key, v.context!, m, concatBytes(key, new Uint8Array(32))), false);
          }
        }
      }
      assert.equal(isSmallOrderEd25519(identity), true);
      assert.equal(isSmallOrderEd25519(pub), false);
    });

    it('refuses seeds that are not 32 bytes with SIG_BAD_KEY', () => {
      for (const n of [0, 31, 33]) {
        assert.throws(
          () => ed25519KeyPair(new Uint8Array(n)),
          (e) => isOutpostError(e, 'SIG_BAD_KEY'),
        );
        assert.throws(
          () => signEd25519(new Uint8Array(n), TEST_CONTEXT, msg),
          (e) => isOutpostError(e, 'SIG_BAD_KEY'),
        );
      }
    });

    it('generates distinct key pairs that sign and verify under any label', () => {
      const a = ed25519KeyPair();
      const b = ed25519KeyPair();
      assert.notEqual(toHex(a.publicKey), toHex(b.publicKey));
      fc.assert(
        fc.property(contextLabel, contextLabel, fc.uint8Array({ maxLength: 64 }), (c, other, m) => {
          const s = signEd25519(a.seed, c, m);
          assert.equal(s.length, ED25519_SIGNATURE_BYTES);
          assert.ok(verifyEd25519(a.publicKey, c, m, s));
          assert.equal(verifyEd25519(b.publicKey, c, m, s), false);
          if (other !== c) assert.equal(verifyEd25519(a.publicKey, other, m, s), false);
        }),
        { numRuns: 50 },
      );
    });
  });

  describe('hybrid Ed25519 + ML-DSA-65', () => {
    const hv = hyv[0]!;
    const key = hybridKeyPair(fromHex(hv.ed25519SeedHex), fromHex(hv.mldsaSeedHex));
    const msg = fromHex(hv.messageHex);
    const sig = fromHex(hv.signatureHex);
    const pub = fromHex(hv.publicKeyHex);
    const edHalf = sig.subarray(0, ED25519_SIGNATURE_BYTES);
    const mlHalf = sig.subarray(ED25519_SIGNATURE_BYTES);

    it(`${hv.name}: key and deterministic signature match the vector byte for byte`, () => {
      assert.equal(toHex(key.publicKey), hv.publicKeyHex);
      assert.equal(pub.length, HYBRID_PUBLIC_KEY_BYTES);
      assert.equal(sig.length, HYBRID_SIGNATURE_BYTES);
      assert.equal(toHex(signHybrid(key, hv.context, msg)), hv.signatureHex);
      assert.ok(verifyHybrid(pub, hv.context, msg, sig));
    });

    it('the Ed25519 half signs signingInput("hybrid+" + label, message)', () => {
      const input = concatBytes(utf8(`hybrid+${hv.context}`), Uint8Array.of(0), msg);
      assert.ok(oracleVerify(pub.subarray(0, 32), input, edHalf));
      // Cut out of the hybrid signature, the Ed25519 half is no signature under the plain label.
      assert.equal(verifyEd25519(pub.subarray(0, 32), hv.context, msg, edHalf), false);
    });

    it('fails when either half is stripped, the halves are swapped, or one half is damaged', () => {
      assert.equal(verifyHybrid(pub, hv.context, msg, edHalf), false);
      assert.equal(verifyHybrid(pub, hv.context, msg, mlHalf), false);
      assert.equal(verifyHybrid(pub, hv.context, msg, concatBytes(mlHalf, edHalf)), false);
      assert.equal(verifyHybrid(pub, hv.context, msg, concatBytes(edHalf, new Uint8Array(mlHalf.length))), false);
      assert.equal(verifyHybrid(pub, hv.context, msg, concatBytes(new Uint8Array(64), mlHalf)), false);
      assert.equal(verifyHybrid(pub, hv.context, msg, flip(sig, 10)), false);
      assert.equal(verifyHybrid(pub, hv.context, msg, flip(sig, 64 + 1000)), false);
      assert.equal(verifyHybrid(pub, hv.context, msg, sig.subarray(0, sig.length - 1)), false);
    });

    it('fails when a valid half is spliced in from another signature', () => {
      const other = signHybrid(key, hv.context, utf8('another message'));
      assert.equal(verifyHybrid(pub, hv.context, msg, concatBytes(edHalf, other.subarray(64))), false);
      assert.equal(verifyHybrid(pub, hv.context, msg, concatBytes(other.subarray(0, 64), mlHalf)), false);
    });

    it('fails across labels, keys and key halves', () => {
      assert.equal(verifyHybrid(pub, 'outpost/other/v1', msg, sig), false);
      const stranger = hybridKeyPair();
      assert.equal(verifyHybrid(stranger.publicKey, hv.context, msg, sig), false);
      const mixedKey = concatBytes(pub.subarray(0, 32), stranger.publicKey.subarray(32));
      assert.equal(verifyHybrid(mixedKey, hv.context, msg, sig), false);
      const mixedKey2 = concatBytes(stranger.publicKey.subarray(0, 32), pub.subarray(32));
      assert.equal(verifyHybrid(mixedKey2, hv.context, msg, sig), false);
      assert.equal(verifyHybrid(pub.subarray(0, 32), hv.context, msg, sig), false);
      assert.equal(verifyHybrid(new Uint8Array(HYBRID_PUBLIC_KEY_BYTES), hv.context, msg, sig), false);
    });

    it('an Ed25519-only signature under the hybrid label does not pass as hybrid', () => {
      const edOnly = signEd25519(key.ed25519Seed, `hybrid+${hv.context}`, msg);
      assert.equal(verifyHybrid(pub, hv.context, msg, concatBytes(edOnly, new Uint8Array(mlHalf.length))), false);
      assert.equal(toHex(edOnly), toHex(edHalf));
    });

    it('refuses an ML-DSA seed that is not 32 bytes', () => {
      assert.throws(
        () => hybridKeyPair(new Uint8Array(32), new Uint8Array(31)),
        (e) => isOutpostError(e, 'SIG_BAD_KEY'),
      );
    });

    it('fresh key pairs sign and verify', () => {
      const k = hybridKeyPair();
      const s = signHybrid(k, TEST_CONTEXT, utf8('m'));
      assert.ok(verifyHybrid(k.publicKey, TEST_CONTEXT, utf8('m'), s));
      assert.equal(verifyHybrid(k.publicKey, TEST_CONTEXT, utf8('n'), s), false);
    });
  });
});
