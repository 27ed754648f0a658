import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { fromHex, toBase58btc, toHex } from '../../protocol/bytes.ts';
import { didKeyFromEd25519, ed25519FromDidKey, SHORT_ID_BYTES, shortIdOf } from '../../protocol/did-key.ts';
import { isOutpostError } from '../../protocol/errors.ts';
import { ed25519KeyPair } from '../../protocol/signing.ts';
import { vectorJson } from '../support/protocol-vectors.ts';

interface DidVectors {
  vectors: {
    name: string;
    seedHex: string;
    publicKeyHex: string;
    publicKeyBase58: string;
    did: string;
    shortIdHex: string;
  }[];
  rejects: { name: string; did: string; error: string }[];
}
const dv = vectorJson<DidVectors>('canonical-signing', 'did-key.json');

describe('did:key (Ed25519) and radio short ids', () => {
  for (const v of dv.vectors) {
    it(`W3C did:key vector, ${v.name}`, () => {
      const pub = ed25519KeyPair(fromHex(v.seedHex)).publicKey;
      assert.equal(toHex(pub), v.publicKeyHex);
      assert.equal(toBase58btc(pub), v.publicKeyBase58);
      assert.equal(didKeyFromEd25519(pub), v.did);
      assert.equal(toHex(ed25519FromDidKey(v.did)), v.publicKeyHex);
      assert.equal(toHex(shortIdOf(pub)), v.shortIdHex);
    });
  }

  for (const v of dv.rejects) {
    it(`refuses ${v.name} with ${v.error}`, () =>
      assert.throws(
        () => ed25519FromDidKey(v.did),
        (e) => isOutpostError(e, v.error),
      ));
  }

  it('refuses non-strings and over-long input with DID_MALFORMED', () => {
    for (const bad of [undefined, 42, `did:key:z${'2'.repeat(200)}`]) {
      assert.throws(
        () => ed25519FromDidKey(bad as string),
        (e) => isOutpostError(e, 'DID_MALFORMED'),
      );
    }
  });

  it('refuses a public key that is not 32 bytes', () => {
    assert.throws(
      () => didKeyFromEd25519(new Uint8Array(33)),
      (e) => isOutpostError(e, 'SIG_BAD_KEY'),
    );
  });

  it('round-trips any 32-byte key; every Ed25519 did:key is z6Mk… and 56 characters', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 32, maxLength: 32 }), (pub) => {
        const did = didKeyFromEd25519(pub);
        assert.match(did, /^did:key:z6Mk[1-9A-HJ-NP-Za-km-z]{44}$/);
        assert.deepEqual(ed25519FromDidKey(did), pub);
        assert.equal(shortIdOf(pub).length, SHORT_ID_BYTES);
      }),
    );
  });
});
