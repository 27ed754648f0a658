import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { toHex } from '../../protocol/bytes.ts';
import { didKeyFromEd25519 } from '../../protocol/did-key.ts';
import { isOutpostError } from '../../protocol/errors.ts';
import { deriveLoraSessionKeys, x25519KeyPair } from '../../protocol/lora.ts';
import { x25519SharedSecret } from '../../protocol/lora-keys.ts';
import { ed25519KeyPair } from '../../protocol/signing.ts';

function codeOf(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    return isOutpostError(e) ? e.code : `untyped: ${String(e)}`;
  }
  return 'accepted';
}

const deviceId = didKeyFromEd25519(ed25519KeyPair().publicKey);
const tid = 'b6a1c2d3-e4f5-5a6b-8c7d-9e0f1a2b3c4d';

describe('LoRa session keys', () => {
  it('device and control plane derive the same distinct uplink and downlink keys from fresh key pairs', () => {
    for (let i = 0; i < 5; i++) {
      const dev = x25519KeyPair();
      const cp = x25519KeyPair();
      const a = deriveLoraSessionKeys({
        deviceX25519: dev,
        controlPlaneX25519: { publicKey: cp.publicKey },
        tid,
        deviceId,
      });
      const b = deriveLoraSessionKeys({
        deviceX25519: { publicKey: dev.publicKey },
        controlPlaneX25519: cp,
        tid,
        deviceId,
      });
      assert.deepEqual(a, b);
      assert.notEqual(toHex(a.uplinkKey), toHex(a.downlinkKey));
      assert.equal(a.uplinkKey.length, 32);
    }
  });

  it('binds the tenant, the device identity and both public keys', () => {
    const dev = x25519KeyPair();
    const cp = x25519KeyPair();
    const base = { deviceX25519: dev, controlPlaneX25519: { publicKey: cp.publicKey }, tid, deviceId };
    const k = toHex(deriveLoraSessionKeys(base).uplinkKey);
    const otherDevice = didKeyFromEd25519(ed25519KeyPair().publicKey);
    assert.notEqual(toHex(deriveLoraSessionKeys({ ...base, tid: `${tid}x` }).uplinkKey), k);
    assert.notEqual(toHex(deriveLoraSessionKeys({ ...base, deviceId: otherDevice }).uplinkKey), k);
    assert.notEqual(
      toHex(deriveLoraSessionKeys({ ...base, deviceId: otherDevice }).shortId),
      toHex(deriveLoraSessionKeys(base).shortId),
    );
  });

  it('refuses low-order public keys (all-zero shared secret)', () => {
    const dev = x25519KeyPair();
    const lowOrder = [new Uint8Array(32), Uint8Array.of(1, ...new Array(31).fill(0))];
    for (const publicKey of lowOrder) {
      assert.equal(
        codeOf(() => x25519SharedSecret(dev.privateKey, publicKey)),
        'LORA_KEY_INVALID',
      );
      assert.equal(
        codeOf(() => deriveLoraSessionKeys({ deviceX25519: dev, controlPlaneX25519: { publicKey }, tid, deviceId })),
        'LORA_KEY_INVALID',
      );
    }
  });

  it('refuses missing, mismatched or malformed keys and identities with typed errors', () => {
    const dev = x25519KeyPair();
    const cp = x25519KeyPair();
    const cases: [string, () => unknown, string][] = [
      [
        'no private key on either side',
        () =>
          deriveLoraSessionKeys({
            deviceX25519: { publicKey: dev.publicKey },
            controlPlaneX25519: { publicKey: cp.publicKey },
            tid,
            deviceId,
          }),
        'LORA_KEY_INVALID',
      ],
      [
        'private key of another pair',
        () =>
          deriveLoraSessionKeys({
            deviceX25519: { publicKey: dev.publicKey, privateKey: cp.privateKey },
            controlPlaneX25519: { publicKey: cp.publicKey },
            tid,
            deviceId,
          }),
        'LORA_KEY_INVALID',
      ],
      [
        'short public key',
        () =>
          deriveLoraSessionKeys({
            deviceX25519: dev,
            controlPlaneX25519: { publicKey: new Uint8Array(31) },
            tid,
            deviceId,
          }),
        'LORA_KEY_INVALID',
      ],
      ['short private key', () => x25519KeyPair(new Uint8Array(16)), 'LORA_KEY_INVALID'],
      [
        'empty tid',
        () =>
          deriveLoraSessionKeys({
            deviceX25519: dev,
            controlPlaneX25519: { publicKey: cp.publicKey },
            tid: '',
            deviceId,
          }),
        'LORA_KEY_INVALID',
      ],
      [
        'device id that is not a did:key',
        () =>
          deriveLoraSessionKeys({
            deviceX25519: dev,
            controlPlaneX25519: { publicKey: cp.publicKey },
            tid,
            deviceId: 'dev-1',
          }),
        'DID_MALFORMED',
      ],
    ];
    for (const [name, fn, code] of cases) assert.equal(codeOf(fn), code, name);
  });
});
