// The page's signing (WebCrypto, as the browser does it) checked against the control plane's verifier: a decision
// signed in the page verifies under its own context label only, and the page refuses to sign arguments that do not
// match the request's hash, or with a key file of the wrong size.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  argsHashOf,
  QUORUM_APPROVAL_CONTEXT as PAGE_APPROVAL,
  QUORUM_DENIAL_CONTEXT as PAGE_DENIAL,
  SigningError,
  signDecision,
} from '../../dashboard/app/sign.ts';
import { fromBase64Url } from '../../protocol/bytes.ts';
import { canonicalBytes } from '../../protocol/canonical-json.ts';
import { argsHash, QUORUM_APPROVAL_CONTEXT, QUORUM_DENIAL_CONTEXT } from '../../protocol/quorum.ts';
import { ed25519KeyPair, verifyEd25519 } from '../../protocol/signing.ts';

const seed = new Uint8Array(32).map((_, i) => i + 1);
const args = { zone: 'north', duration_s: 30, note: 'é ✓' };
const view = {
  args,
  request: {
    v: 1,
    tid: '0e6c3a3d-952c-55af-be8a-3d562dcf52c7',
    requestId: 'AAAAAAAAAAAAAAAAAAAAAA',
    device: 'did:key:z6Mk',
    tool: 'valve.open',
    argsHash: argsHash(args),
    nonce: 'BBBBBBBBBBBBBBBBBBBBBB',
    expMs: 1_800_000_000_000,
  },
};

describe('dashboard signing', () => {
  it('uses the protocol’s context labels and argsHash', async () => {
    assert.equal(PAGE_APPROVAL, QUORUM_APPROVAL_CONTEXT);
    assert.equal(PAGE_DENIAL, QUORUM_DENIAL_CONTEXT);
    assert.equal(await argsHashOf(args), argsHash(args));
  });

  it('signs approvals and denials that the control plane verifies, each under its own label only', async () => {
    const { publicKey } = ed25519KeyPair(seed);
    const message = canonicalBytes(view.request);
    const approval = fromBase64Url(await signDecision(view, seed, 'approve'));
    const denial = fromBase64Url(await signDecision(view, seed, 'deny'));
    assert.ok(verifyEd25519(publicKey, QUORUM_APPROVAL_CONTEXT, message, approval));
    assert.ok(!verifyEd25519(publicKey, QUORUM_DENIAL_CONTEXT, message, approval));
    assert.ok(verifyEd25519(publicKey, QUORUM_DENIAL_CONTEXT, message, denial));
    assert.ok(!verifyEd25519(publicKey, QUORUM_APPROVAL_CONTEXT, message, denial));
  });

  it('refuses arguments that do not match the request, and key files of the wrong size', async () => {
    await assert.rejects(
      signDecision({ ...view, args: { ...args, duration_s: 600 } }, seed, 'approve'),
      (e) => e instanceof SigningError && e.code === 'ARGS_MISMATCH',
    );
    for (const size of [0, 31, 33, 64]) {
      await assert.rejects(
        signDecision(view, new Uint8Array(size), 'approve'),
        (e) => e instanceof SigningError && e.code === 'KEY_FILE_INVALID',
      );
    }
  });
});
