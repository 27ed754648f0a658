import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import { concatBytes, toHex } from '../../protocol/bytes.ts';
import { didKeyFromEd25519, shortIdOf } from '../../protocol/did-key.ts';
import { isOutpostError } from '../../protocol/errors.ts';
import {
  checkEnrollRequest,
  deriveLoraSessionKeys,
  loraEnrollTokenKeys,
  openEnrollRequest,
  openEnrollResponse,
  openLoraFrame,
  sealEnrollRequest,
  sealEnrollResponse,
  sealLoraFrame,
  x25519KeyPair,
} from '../../protocol/lora.ts';
import { ed25519KeyPair, signEd25519 } from '../../protocol/signing.ts';

function codeOf(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    return isOutpostError(e) ? e.code : `untyped: ${String(e)}`;
  }
  return 'accepted';
}

function setup() {
  const device = ed25519KeyPair();
  const deviceX = x25519KeyPair();
  const cpX = x25519KeyPair();
  const token = `enr_${randomBytes(24).toString('base64url')}`;
  const manifestHash = randomBytes(32);
  const request = sealEnrollRequest({
    device,
    deviceX25519Public: deviceX.publicKey,
    token,
    manifestHash,
    seq: 3,
    listen: true,
  });
  const tokens = new Map([[toHex(loraEnrollTokenKeys(token).tokenId), token]]);
  const tokenFor = (id: Uint8Array) => tokens.get(toHex(id));
  return { device, deviceX, cpX, token, manifestHash, request, tokenFor };
}

describe('enrollment over LoRa', () => {
  it('a device with no IP enrolls and both ends then share a working session', () => {
    const s = setup();
    const req = openEnrollRequest(s.request, s.tokenFor);
    assert.equal(req.deviceId, didKeyFromEd25519(s.device.publicKey));
    assert.equal(toHex(req.header.shortId), toHex(shortIdOf(s.device.publicKey)));
    assert.equal(toHex(req.manifestHash), toHex(s.manifestHash));
    assert.equal(req.token, s.token);
    const tid = 'c0ffee00-0000-5000-8000-000000000001';
    const response = sealEnrollResponse({
      request: s.request,
      token: req.token,
      seq: 0,
      status: 'accepted',
      controlPlaneX25519Public: s.cpX.publicKey,
      tid,
    });
    const res = openEnrollResponse(response, { request: s.request, token: s.token });
    assert.equal(res.status, 'accepted');
    const deviceSession = deriveLoraSessionKeys({
      deviceX25519: s.deviceX,
      controlPlaneX25519: { publicKey: res.controlPlaneX25519! },
      tid: res.tid!,
      deviceId: req.deviceId,
    });
    const cpSession = deriveLoraSessionKeys({
      deviceX25519: { publicKey: req.deviceX25519 },
      controlPlaneX25519: s.cpX,
      tid,
      deviceId: req.deviceId,
    });
    const frame = sealLoraFrame(deviceSession, { type: 'heartbeat', seq: 4 }, Uint8Array.of(0, 1, 0));
    assert.deepEqual([...openLoraFrame(frame, cpSession, { expect: 'uplink' }).payload], [0, 1, 0]);
  });

  it('the token never appears on air, and the request is 194 bytes', () => {
    const s = setup();
    assert.equal(s.request.length, 194);
    assert.ok(!Buffer.from(s.request).includes(Buffer.from(s.token)));
    assert.ok(!Buffer.from(s.request).includes(Buffer.from(loraEnrollTokenKeys(s.token).macKey)));
  });

  it('a gateway can check the signature without the token', () => {
    const s = setup();
    assert.equal(checkEnrollRequest(s.request).deviceId, didKeyFromEd25519(s.device.publicKey));
  });

  it('any bit flip in the request is rejected, by the gateway check or the token MAC', () => {
    const s = setup();
    const codes = new Set<string>();
    for (let bit = 0; bit < s.request.length * 8; bit++) {
      const bad = s.request.slice();
      bad[bit >> 3]! ^= 1 << (bit & 7);
      const code = codeOf(() => openEnrollRequest(bad, s.tokenFor));
      assert.ok(code.startsWith('LORA_'), `bit ${bit}: ${code}`);
      codes.add(code);
    }
    for (const c of ['LORA_ENROLL_INVALID', 'LORA_SHORT_ID_MISMATCH', 'LORA_BAD_VERSION']) assert.ok(codes.has(c), c);
  });

  it('an unknown token, or a request made with another token, is refused', () => {
    const s = setup();
    assert.equal(
      codeOf(() => openEnrollRequest(s.request, () => undefined)),
      'LORA_ENROLL_UNKNOWN_TOKEN',
    );
    assert.equal(
      codeOf(() => openEnrollRequest(s.request, () => 'some-other-token')),
      'LORA_ENROLL_UNKNOWN_TOKEN',
    );
    // Someone who heard the token id but lacks the token signs a well-formed request with a guessed MAC.
    const other = setup();
    const honest = sealEnrollRequest({
      device: other.device,
      deviceX25519Public: other.deviceX.publicKey,
      token: 'guessed-token',
      manifestHash: other.manifestHash,
      seq: 1,
    });
    const signed = concatBytes(honest.subarray(0, 74), loraEnrollTokenKeys(s.token).tokenId, other.manifestHash);
    const guessedMac = randomBytes(16);
    const forged = concatBytes(
      signed,
      guessedMac,
      signEd25519(other.device.seed, 'outpost/lora-enroll-request/v1', concatBytes(signed, guessedMac)),
    );
    assert.equal(checkEnrollRequest(forged).deviceId, didKeyFromEd25519(other.device.publicKey));
    assert.equal(
      codeOf(() => openEnrollRequest(forged, s.tokenFor)),
      'LORA_ENROLL_INVALID',
    );
  });

  it('the device refuses a response made without the token or for another request', () => {
    const s = setup();
    const accepted = (token: string, request: Uint8Array) =>
      sealEnrollResponse({
        request,
        token,
        seq: 0,
        status: 'accepted',
        controlPlaneX25519Public: s.cpX.publicKey,
        tid: 't',
      });
    assert.equal(
      codeOf(() => openEnrollResponse(accepted('wrong-token', s.request), { request: s.request, token: s.token })),
      'LORA_ENROLL_INVALID',
    );
    const again = sealEnrollRequest({
      device: s.device,
      deviceX25519Public: s.deviceX.publicKey,
      token: s.token,
      manifestHash: s.manifestHash,
      seq: 4,
    });
    assert.equal(
      codeOf(() => openEnrollResponse(accepted(s.token, again), { request: s.request, token: s.token })),
      'LORA_ENROLL_INVALID',
    );
    const other = setup();
    assert.equal(
      codeOf(() => openEnrollResponse(accepted(s.token, other.request), { request: s.request, token: s.token })),
      'LORA_SHORT_ID_MISMATCH',
    );
    const good = accepted(s.token, s.request);
    for (let i = 0; i < good.length; i++) {
      const bad = good.slice();
      bad[i]! ^= 0x04;
      assert.ok(
        codeOf(() => openEnrollResponse(bad, { request: s.request, token: s.token })).startsWith('LORA_'),
        `byte ${i}`,
      );
    }
  });

  it('refuses to build malformed requests and responses', () => {
    const s = setup();
    const base = {
      device: s.device,
      deviceX25519Public: s.deviceX.publicKey,
      token: s.token,
      manifestHash: s.manifestHash,
      seq: 1,
    };
    assert.equal(
      codeOf(() => sealEnrollRequest({ ...base, manifestHash: new Uint8Array(31) })),
      'LORA_VALUE_UNSUPPORTED',
    );
    assert.equal(
      codeOf(() => sealEnrollRequest({ ...base, token: '' })),
      'LORA_VALUE_UNSUPPORTED',
    );
    assert.equal(
      codeOf(() => sealEnrollResponse({ request: s.request, token: s.token, seq: 0, status: 'accepted' })),
      'LORA_VALUE_UNSUPPORTED',
    );
  });
});
