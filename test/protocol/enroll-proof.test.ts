import assert from 'node:assert/strict';
import { createHash, createPublicKey, verify as rawVerify } from 'node:crypto';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { concatBytes, fromBase64Url, fromHex, fromUtf8, toBase64Url, toHex, utf8 } from '../../protocol/bytes.ts';
import { didKeyFromEd25519 } from '../../protocol/did-key.ts';
import {
  DEVICE_TOKEN_PROOF_CONTEXT,
  deviceTokenProofMessage,
  ENROLL_PROOF_CONTEXT,
  type EnrollProofInput,
  enrollProofMessage,
  enrollTokenDigest,
  signDeviceTokenProof,
  signEnrollProof,
  verifyDeviceTokenProof,
  verifyEnrollProof,
} from '../../protocol/enroll-proof.ts';
import { ed25519KeyPair, signEd25519 } from '../../protocol/signing.ts';
import { seedFromHex, vectorJson } from '../support/protocol-vectors.ts';

interface ProofVector {
  name: string;
  kind: 'enroll' | 'device-token-request';
  seedHex: string;
  publicKeyHex: string;
  device: string;
  context: string;
  token?: string;
  tokenDigest?: string;
  manifestHash?: string;
  x25519PublicKey?: string | null;
  challenge?: string;
  messageText: string;
  messageHex: string;
  signatureHex: string;
}
interface DigestVector {
  name: string;
  token: string;
  tokenDigest: string;
}

const file = vectorJson<{ vectors: ProofVector[]; tokenDigests: DigestVector[] }>(
  'canonical-signing',
  'enroll-proof.json',
);

// node:crypto used directly, as an oracle independent of protocol/signing.ts.
const SPKI_PREFIX = Buffer.from('302a300506032b6570032100', 'hex');
function oracleVerify(pub: Uint8Array, context: string, message: Uint8Array, sig: Uint8Array): boolean {
  const key = createPublicKey({ key: Buffer.concat([SPKI_PREFIX, pub]), format: 'der', type: 'spki' });
  return rawVerify(null, concatBytes(utf8(context), new Uint8Array([0]), message), key, sig);
}

function flip(bytes: Uint8Array, at: number): Uint8Array {
  const out = Uint8Array.from(bytes);
  out[at % out.length]! ^= 0x01;
  return out;
}

function enrollInput(v: ProofVector): EnrollProofInput {
  return {
    device: v.device,
    token: v.token!,
    manifestHash: v.manifestHash!,
    ...(v.x25519PublicKey ? { x25519PublicKey: v.x25519PublicKey } : {}),
  };
}

describe('enroll-proof', () => {
  it('names the labels registered in canonical-signing.md §12', () => {
    assert.equal(ENROLL_PROOF_CONTEXT, 'outpost/enroll-proof/v1');
    assert.equal(DEVICE_TOKEN_PROOF_CONTEXT, 'outpost/device-token-request/v1');
  });

  describe('vectors (docs/protocol/vectors/canonical-signing/enroll-proof.json)', () => {
    for (const v of file.vectors) {
      it(v.name, () => {
        const seed = seedFromHex(v.seedHex);
        const pub = ed25519KeyPair(seed).publicKey;
        assert.equal(toHex(pub), v.publicKeyHex);
        assert.equal(didKeyFromEd25519(pub), v.device);
        assert.equal(fromUtf8(fromHex(v.messageHex)), v.messageText);
        let message: Uint8Array;
        let proof: Uint8Array;
        let verifies: (p: Uint8Array) => boolean;
        if (v.kind === 'enroll') {
          assert.equal(v.context, ENROLL_PROOF_CONTEXT);
          assert.equal(enrollTokenDigest(v.token!), v.tokenDigest);
          // The message restated by hand (members in canonical order), independent of canonical-json.ts.
          const x = v.x25519PublicKey === null ? 'null' : JSON.stringify(v.x25519PublicKey);
          assert.equal(
            v.messageText,
            `{"device":${JSON.stringify(v.device)},"manifestHash":${JSON.stringify(v.manifestHash)},"tokenDigest":${JSON.stringify(v.tokenDigest)},"v":1,"x25519PublicKey":${x}}`,
          );
          message = enrollProofMessage(enrollInput(v));
          proof = signEnrollProof(seed, enrollInput(v));
          verifies = (p) => verifyEnrollProof(enrollInput(v), p);
        } else {
          assert.equal(v.context, DEVICE_TOKEN_PROOF_CONTEXT);
          assert.equal(
            v.messageText,
            `{"challenge":${JSON.stringify(v.challenge)},"device":${JSON.stringify(v.device)},"v":1}`,
          );
          message = deviceTokenProofMessage(v.device, v.challenge!);
          proof = signDeviceTokenProof(seed, v.device, v.challenge!);
          verifies = (p) => verifyDeviceTokenProof(v.device, v.challenge!, p);
        }
        assert.equal(toHex(message), v.messageHex);
        assert.equal(toHex(proof), v.signatureHex);
        assert.ok(oracleVerify(pub, v.context, message, fromHex(v.signatureHex)));
        assert.ok(verifies(fromHex(v.signatureHex)));
        assert.ok(!verifies(flip(fromHex(v.signatureHex), 7)));
      });
    }
    for (const d of file.tokenDigests) {
      it(`token digest: ${d.name}`, () => {
        assert.equal(enrollTokenDigest(d.token), d.tokenDigest);
        assert.equal(d.tokenDigest, createHash('sha256').update(d.token, 'utf8').digest('base64url'));
      });
    }
  });

  it('signs an absent X25519 key as null, and binds its absence', () => {
    const key = ed25519KeyPair(new Uint8Array(32).fill(3));
    const device = didKeyFromEd25519(key.publicKey);
    const base = { device, token: 'oet_x', manifestHash: 'sha256:00' };
    assert.deepEqual(enrollProofMessage(base), enrollProofMessage({ ...base, x25519PublicKey: undefined }));
    assert.match(fromUtf8(enrollProofMessage(base)), /"x25519PublicKey":null}$/);
    const proof = signEnrollProof(key.seed, base);
    const x25519PublicKey = toBase64Url(new Uint8Array(32).fill(9));
    assert.ok(verifyEnrollProof(base, proof));
    assert.ok(!verifyEnrollProof({ ...base, x25519PublicKey }, proof));
    assert.ok(!verifyEnrollProof(base, signEnrollProof(key.seed, { ...base, x25519PublicKey })));
  });

  it('a signature under another label does not verify: neither proof stands in for the other', () => {
    const key = ed25519KeyPair(new Uint8Array(32).fill(4));
    const device = didKeyFromEd25519(key.publicKey);
    const input = { device, token: 'oet_y', manifestHash: 'sha256:01' };
    assert.ok(!verifyEnrollProof(input, signEd25519(key.seed, DEVICE_TOKEN_PROOF_CONTEXT, enrollProofMessage(input))));
    const m = deviceTokenProofMessage(device, 'c.d');
    assert.ok(!verifyDeviceTokenProof(device, 'c.d', signEd25519(key.seed, ENROLL_PROOF_CONTEXT, m)));
  });

  it('refuses, without throwing, a device id that is no Ed25519 did:key and a proof of the wrong length', () => {
    const key = ed25519KeyPair(new Uint8Array(32).fill(5));
    const device = didKeyFromEd25519(key.publicKey);
    const proof = signDeviceTokenProof(key.seed, device, 'c.d');
    for (const bad of ['', 'did:key:zzz', 'did:web:example.com', device.slice(0, -3)]) {
      assert.equal(verifyDeviceTokenProof(bad, 'c.d', proof), false);
      assert.equal(verifyEnrollProof({ device: bad, token: 't', manifestHash: 'h' }, proof), false);
    }
    assert.equal(verifyDeviceTokenProof(device, 'c.d', proof.subarray(0, 63)), false);
    assert.equal(verifyDeviceTokenProof(device, 'c.d', new Uint8Array(0)), false);
  });

  describe('properties', () => {
    const seed = fc.uint8Array({ minLength: 32, maxLength: 32 });
    const text = fc.string({ unit: 'binary', maxLength: 80 });
    const manifestHash = fc.stringMatching(/^sha256:[0-9a-f]{64}$/);
    const x25519 = fc.option(
      fc.uint8Array({ minLength: 32, maxLength: 32 }).map((b) => toBase64Url(b)),
      { nil: undefined },
    );
    const enrollCase = fc.record({ seed, otherSeed: seed, token: text, manifestHash, x25519PublicKey: x25519 });
    const field = fc.constantFrom('device', 'token', 'manifestHash', 'x25519PublicKey', 'proof');

    it('an enrollment proof verifies for its own message and fails for any altered field', () => {
      fc.assert(
        fc.property(enrollCase, enrollCase, field, fc.nat(), (c, other, which, at) => {
          const key = ed25519KeyPair(c.seed);
          const input: EnrollProofInput = {
            device: didKeyFromEd25519(key.publicKey),
            token: c.token,
            manifestHash: c.manifestHash,
            x25519PublicKey: c.x25519PublicKey,
          };
          const proof = signEnrollProof(c.seed, input);
          assert.equal(proof.length, 64);
          assert.ok(verifyEnrollProof(input, proof));
          let altered = input;
          let alteredProof = proof;
          if (which === 'device') {
            fc.pre(!Buffer.from(other.otherSeed).equals(Buffer.from(c.seed)));
            altered = { ...input, device: didKeyFromEd25519(ed25519KeyPair(other.otherSeed).publicKey) };
          } else if (which === 'token') {
            fc.pre(other.token !== c.token);
            altered = { ...input, token: other.token };
          } else if (which === 'manifestHash') {
            fc.pre(other.manifestHash !== c.manifestHash);
            altered = { ...input, manifestHash: other.manifestHash };
          } else if (which === 'x25519PublicKey') {
            fc.pre(other.x25519PublicKey !== c.x25519PublicKey);
            altered = { ...input, x25519PublicKey: other.x25519PublicKey };
          } else {
            alteredProof = flip(proof, at);
          }
          assert.equal(verifyEnrollProof(altered, alteredProof), false);
        }),
      );
    });

    it('a token-request proof verifies for its own message and fails for any altered field', () => {
      const challenge = fc.stringMatching(/^[A-Za-z0-9_.-]{1,64}$/);
      fc.assert(
        fc.property(
          seed,
          seed,
          challenge,
          challenge,
          fc.constantFrom('device', 'challenge', 'proof'),
          fc.nat(),
          (s, otherSeed, ch, otherCh, which, at) => {
            const device = didKeyFromEd25519(ed25519KeyPair(s).publicKey);
            const proof = signDeviceTokenProof(s, device, ch);
            assert.ok(verifyDeviceTokenProof(device, ch, proof));
            if (which === 'device') {
              fc.pre(!Buffer.from(otherSeed).equals(Buffer.from(s)));
              const other = didKeyFromEd25519(ed25519KeyPair(otherSeed).publicKey);
              assert.equal(verifyDeviceTokenProof(other, ch, proof), false);
            } else if (which === 'challenge') {
              fc.pre(otherCh !== ch);
              assert.equal(verifyDeviceTokenProof(device, otherCh, proof), false);
            } else {
              assert.equal(verifyDeviceTokenProof(device, ch, flip(proof, at)), false);
            }
          },
        ),
      );
    });

    it('the token digest is base64url(SHA-256(UTF-8 text)) for any text', () => {
      fc.assert(
        fc.property(text, (t) => {
          const d = enrollTokenDigest(t);
          assert.equal(fromBase64Url(d).length, 32);
          assert.equal(d, createHash('sha256').update(Buffer.from(t, 'utf8')).digest('base64url'));
        }),
      );
    });
  });
});
