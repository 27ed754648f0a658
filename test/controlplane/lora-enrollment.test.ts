// Enrollment over LoRa at the control plane (lora-frames.md §4.10): a token minted with the device's manifest,
// a request built as the device builds it, the answer checked as the device checks it — and each way it must refuse.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { authenticate } from '../../controlplane/auth.ts';
import { mintEnrollToken } from '../../controlplane/enrollment.ts';
import { isControlPlaneError } from '../../controlplane/errors.ts';
import { enrollOverLora } from '../../controlplane/lora-enrollment.ts';
import { FakeClock } from '../../protocol/clock.ts';
import { didKeyFromEd25519 } from '../../protocol/did-key.ts';
import { openEnrollResponse, sealEnrollRequest, x25519KeyPair } from '../../protocol/lora.ts';
import { manifestHash } from '../../protocol/manifest.ts';
import { ed25519KeyPair } from '../../protocol/signing.ts';
import { greenhouseManifest } from '../support/controlplane.ts';
import { createCoreHarness } from '../support/hub-harness.ts';

const hashBytes = (hash: string) => Buffer.from(hash.slice('sha256:'.length), 'hex');

describe('enrollment over LoRa at the control plane', () => {
  it('enrolls the device whose manifest was registered, answers a repeat the same way, and refuses the rest', async () => {
    const clock = new FakeClock(Date.UTC(2026, 5, 1));
    const h = await createCoreHarness(clock);
    try {
      const ctx = h.cp.context;
      const op = await authenticate(ctx, `Bearer ${h.operatorKey}`, 'test');
      const key = ed25519KeyPair();
      const x = x25519KeyPair();
      const did = didKeyFromEd25519(key.publicKey);
      const manifest = greenhouseManifest(did, 'field-7');
      const minted = await mintEnrollToken(ctx, op, { manifest: manifest as unknown as Record<string, unknown> });
      assert.deepEqual(minted.lora, { manifestHash: manifestHash(manifest), device: did });
      // The token text is never stored: only its hash and the nonce it is derived from.
      const stored = (await ctx.store.listEnrollTokens(h.tid)).find((t) => t.tokenId === minted.tokenId)!;
      assert.ok(stored.lora && !JSON.stringify(stored).includes(minted.token));

      const request = (over: { token?: string; hash?: Uint8Array; device?: typeof key; seq?: number } = {}) =>
        sealEnrollRequest({
          device: over.device ?? key,
          deviceX25519Public: x.publicKey,
          token: over.token ?? minted.token,
          manifestHash: over.hash ?? hashBytes(manifestHash(manifest)),
          seq: over.seq ?? 7,
        });

      // Another manifest than the one registered: answered, but not enrolled.
      const wrongHash = request({ hash: new Uint8Array(32).fill(1) });
      const a0 = await enrollOverLora(ctx, wrongHash, 'gw', h.tid);
      assert.equal(
        openEnrollResponse(a0!.frame, { request: wrongHash, token: minted.token }).status,
        'manifest-unknown',
      );
      assert.equal(await ctx.store.getDevice(did), undefined);

      // A gateway of another tenant: the token is unknown there, and without it nothing can be answered.
      assert.equal(await enrollOverLora(ctx, request(), 'gw', '0e6c3a3d-952c-55af-be8a-3d562dcf52c7'), undefined);
      // A made-up token: no answer either.
      assert.equal(await enrollOverLora(ctx, request({ token: `oet_${'A'.repeat(43)}` }), 'gw', h.tid), undefined);

      const req = request();
      const a1 = await enrollOverLora(ctx, req, 'gw', h.tid);
      const opened = openEnrollResponse(a1!.frame, { request: req, token: minted.token });
      assert.equal(opened.status, 'accepted');
      assert.equal(opened.tid, h.tid);
      assert.deepEqual(opened.controlPlaneX25519, ctx.vault.lora.publicKey);
      const device = (await ctx.store.getDevice(did))!;
      assert.equal(device.name, 'field-7');
      assert.equal(device.accepted?.hash, manifestHash(manifest));
      assert.equal(device.x25519PublicKey, Buffer.from(x.publicKey).toString('base64url'));

      // The response was lost and the device asks again: the same answer, nothing enrolled twice.
      const again = request({ seq: 8 });
      const a2 = await enrollOverLora(ctx, again, 'gw', h.tid);
      assert.equal(openEnrollResponse(a2!.frame, { request: again, token: minted.token }).status, 'accepted');

      // The token is spent: another key with it is refused.
      const thief = ed25519KeyPair();
      const stolen = request({ device: thief });
      const a3 = await enrollOverLora(ctx, stolen, 'gw', h.tid);
      assert.equal(openEnrollResponse(a3!.frame, { request: stolen, token: minted.token }).status, 'manifest-unknown');
      assert.equal(await ctx.store.getDevice(didKeyFromEd25519(thief.publicKey)), undefined);

      // Tokens for gateways carry no manifest.
      await assert.rejects(
        mintEnrollToken(ctx, op, { role: 'gateway', manifest: manifest as unknown as Record<string, unknown> }),
        (e) => isControlPlaneError(e, 'BAD_REQUEST'),
      );
    } finally {
      h.close();
    }
  });
});
