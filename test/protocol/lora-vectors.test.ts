// The LoRa frame vectors (docs/protocol/vectors/lora-frames/), checked byte for byte in both directions, plus
// independent cross-checks of the key schedule and the AEAD layout against other implementations and the spec text.

import assert from 'node:assert/strict';
import { createCipheriv } from 'node:crypto';
import { describe, it } from 'node:test';
import { hkdf } from '@noble/hashes/hkdf.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { concatBytes, fromHex, toHex, utf8 } from '../../protocol/bytes.ts';
import type { JsonValue } from '../../protocol/canonical-json.ts';
import { FakeClock } from '../../protocol/clock.ts';
import { didKeyFromEd25519, shortIdOf } from '../../protocol/did-key.ts';
import { isOutpostError } from '../../protocol/errors.ts';
import {
  createLoraReassembler,
  decodeBeacon,
  decodeHeartbeat,
  decodeLoraHeader,
  decodeTelemetry,
  decodeTelemetryAck,
  decodeToolCall,
  decodeToolResult,
  deriveLoraSessionKeys,
  encodeBeacon,
  encodeHeartbeat,
  encodeTelemetry,
  encodeTelemetryAck,
  encodeToolCall,
  encodeToolResult,
  type LoraFrameType,
  type LoraHeartbeat,
  type LoraSession,
  type LoraTelemetryAck,
  type LoraToolResult,
  loraEnrollTokenKeys,
  openEnrollRequest,
  openEnrollResponse,
  openLoraFrame,
  sealEnrollRequest,
  sealEnrollResponse,
  sealLoraMessage,
  x25519KeyPair,
} from '../../protocol/lora.ts';
import { decodeCbor, encodeCbor } from '../../protocol/lora-cbor.ts';
import { x25519SharedSecret } from '../../protocol/lora-keys.ts';
import { ed25519KeyPair } from '../../protocol/signing.ts';
import {
  type JsonTelemetryRecord,
  type JsonToolCall,
  loadVector,
  recordFromJson,
  recordToJson,
  type SessionVector,
  toolCallFromJson,
} from './lora-vectors.ts';

const sv = loadVector<SessionVector>('session-keys.json');

function sessions(): { device: LoraSession; controlPlane: LoraSession } {
  const device = deriveLoraSessionKeys({
    deviceX25519: x25519KeyPair(fromHex(sv.deviceX25519Private)),
    controlPlaneX25519: { publicKey: fromHex(sv.controlPlaneX25519Public) },
    tid: sv.tid,
    deviceId: sv.deviceId,
  });
  const controlPlane = deriveLoraSessionKeys({
    deviceX25519: { publicKey: fromHex(sv.deviceX25519Public) },
    controlPlaneX25519: x25519KeyPair(fromHex(sv.controlPlaneX25519Private)),
    tid: sv.tid,
    deviceId: sv.deviceId,
  });
  return { device, controlPlane };
}

function rejectsWith(fn: () => unknown, code: string): void {
  assert.throws(fn, (e: unknown) => isOutpostError(e, code) || assert.fail(`expected ${code}, got ${String(e)}`));
}

describe('LoRa vectors: session keys', () => {
  it('X25519 keys and shared secret are those of RFC 7748 §6.1', () => {
    assert.equal(toHex(x25519KeyPair(fromHex(sv.deviceX25519Private)).publicKey), sv.deviceX25519Public);
    assert.equal(toHex(x25519KeyPair(fromHex(sv.controlPlaneX25519Private)).publicKey), sv.controlPlaneX25519Public);
    assert.equal(
      toHex(x25519SharedSecret(fromHex(sv.deviceX25519Private), fromHex(sv.controlPlaneX25519Public))),
      sv.sharedSecret,
    );
  });

  it('identity: did:key and short id of the RFC 8032 key', () => {
    const key = ed25519KeyPair(fromHex(sv.deviceEd25519Seed));
    assert.equal(toHex(key.publicKey), sv.deviceEd25519Public);
    assert.equal(didKeyFromEd25519(key.publicKey), sv.deviceId);
    assert.equal(toHex(shortIdOf(key.publicKey)), sv.shortId);
  });

  it('salt and info are built as §5.2 says, and an independent HKDF gives the same keys', () => {
    const tid = utf8(sv.tid);
    const did = utf8(sv.deviceId);
    const info = concatBytes(
      utf8('outpost/lora-session/v1'),
      Uint8Array.of(0, tid.length >> 8, tid.length & 0xff),
      tid,
      Uint8Array.of(did.length >> 8, did.length & 0xff),
      did,
      fromHex(sv.deviceX25519Public),
      fromHex(sv.controlPlaneX25519Public),
    );
    assert.equal(toHex(info), sv.hkdfInfo);
    assert.equal(toHex(utf8('outpost/lora-session/v1')), sv.hkdfSalt);
    const okm = hkdf(sha256, fromHex(sv.sharedSecret), fromHex(sv.hkdfSalt), info, 64);
    assert.equal(toHex(okm.subarray(0, 32)), sv.uplinkKey);
    assert.equal(toHex(okm.subarray(32)), sv.downlinkKey);
  });

  it('both ends derive the vector keys', () => {
    const { device, controlPlane } = sessions();
    for (const s of [device, controlPlane]) {
      assert.equal(toHex(s.shortId), sv.shortId);
      assert.equal(toHex(s.uplinkKey), sv.uplinkKey);
      assert.equal(toHex(s.downlinkKey), sv.downlinkKey);
    }
  });
});

interface PayloadVectors {
  telemetry: { name: string; records: JsonTelemetryRecord[]; payloadHex: string; decoded: JsonTelemetryRecord[] }[];
  telemetryAck: { name: string; ack: LoraTelemetryAck; payloadHex: string; decoded: LoraTelemetryAck }[];
  toolCall: { name: string; call: JsonToolCall; payloadHex: string }[];
  toolResult: { name: string; result: LoraToolResult; payloadHex: string }[];
  heartbeat: { name: string; heartbeat: LoraHeartbeat; payloadHex: string }[];
}

describe('LoRa vectors: payloads', () => {
  const pv = loadVector<PayloadVectors>('payloads.json');
  for (const v of pv.telemetry) {
    it(`telemetry ${v.name}`, () => {
      assert.equal(toHex(encodeTelemetry(v.records.map(recordFromJson))), v.payloadHex);
      assert.deepEqual(decodeTelemetry(fromHex(v.payloadHex)).map(recordToJson), v.decoded);
      assert.equal(v.decoded.length, v.records.length);
    });
  }
  for (const v of pv.telemetryAck) {
    it(`telemetry.ack ${v.name}`, () => {
      assert.equal(toHex(encodeTelemetryAck(v.ack)), v.payloadHex);
      assert.deepEqual(decodeTelemetryAck(fromHex(v.payloadHex)), v.decoded);
    });
  }
  for (const v of pv.toolCall) {
    it(`tool.call ${v.name}`, () => {
      assert.equal(toHex(encodeToolCall(toolCallFromJson(v.call))), v.payloadHex);
      assert.deepEqual(decodeToolCall(fromHex(v.payloadHex)), toolCallFromJson(v.call));
    });
  }
  for (const v of pv.toolResult) {
    it(`tool.result ${v.name}`, () => {
      assert.equal(toHex(encodeToolResult(v.result)), v.payloadHex);
      assert.deepEqual(decodeToolResult(fromHex(v.payloadHex)), v.result);
    });
  }
  for (const v of pv.heartbeat) {
    it(`heartbeat ${v.name}`, () => {
      assert.equal(toHex(encodeHeartbeat(v.heartbeat)), v.payloadHex);
      assert.deepEqual(decodeHeartbeat(fromHex(v.payloadHex)), v.heartbeat);
    });
  }

  it('a hand-decoded telemetry payload reads as §4.4 describes', () => {
    // one-integer-reading: flags 01 (seconds), seq0 00, ts0 1767225600 = 80 f2 d6 ca 06,
    // record 3a = int (3 << 4) | SEQ_STEP | SAME_DELTA, stream 00, value zigzag(21) = 2a.
    assert.equal(pv.telemetry[0]!.payloadHex, `01` + `00` + `80f2d6ca06` + `3a` + `00` + `2a`);
  });
});

interface FrameVectors {
  frames: {
    name: string;
    type: LoraFrameType;
    firstSeq: number;
    listen: boolean;
    maxFrameBytes: number;
    payloadHex: string;
    framesHex: string[];
  }[];
}

describe('LoRa vectors: frames', () => {
  const fv = loadVector<FrameVectors>('frames.json');
  const { device, controlPlane } = sessions();
  for (const v of fv.frames) {
    it(`${v.name}: sealed byte for byte, opened and reassembled by the other end`, () => {
      const downlink = v.type === 'tool.call' || v.type === 'telemetry.ack';
      const sender = downlink ? controlPlane : device;
      const receiver = downlink ? device : controlPlane;
      const frames = sealLoraMessage(
        sender,
        { type: v.type, firstSeq: v.firstSeq, listen: v.listen },
        fromHex(v.payloadHex),
        { maxFrameBytes: v.maxFrameBytes },
      );
      assert.deepEqual(frames.map(toHex), v.framesHex);
      const reassembler = createLoraReassembler({ clock: new FakeClock() });
      let done: Uint8Array | undefined;
      for (const f of frames) {
        assert.ok(f.length <= v.maxFrameBytes);
        const r = reassembler.add(
          openLoraFrame(f, receiver, { expect: downlink ? 'downlink' : 'uplink', maxFrameBytes: v.maxFrameBytes }),
        );
        if (r.status === 'complete') done = r.message.payload;
      }
      assert.equal(toHex(done!), v.payloadHex);
    });
  }

  it('the first frame matches a hand-built header, nonce and ChaCha20-Poly1305 call (§3, §5.3)', () => {
    const v = fv.frames[0]!; // telemetry, uplink, seq 0x1000, L set
    const header = fromHex(`2120${sv.shortId}00001000`); // version 1 | type 0x01, flags L, short id, seq
    const nonce = fromHex(`00000000${sv.shortId}00001000`);
    const payload = fromHex(v.payloadHex);
    const c = createCipheriv('chacha20-poly1305', fromHex(sv.uplinkKey), nonce, { authTagLength: 16 });
    c.setAAD(header, { plaintextLength: payload.length });
    const expected = concatBytes(header, c.update(payload), c.final(), c.getAuthTag());
    assert.equal(toHex(expected), v.framesHex[0]);
    assert.equal(fromHex(v.framesHex[0]!).length, payload.length + 26);
  });

  it('fragment headers carry index and count−1 in one byte after the seq (§7.1)', () => {
    const v = fv.frames.find((f) => f.framesHex.length === 2)!;
    const [a, b] = v.framesHex.map((h) => decodeLoraHeader(fromHex(h)));
    assert.deepEqual(a!.header.fragment, { index: 0, count: 2 });
    assert.deepEqual(b!.header.fragment, { index: 1, count: 2 });
    assert.equal(b!.header.seq, a!.header.seq + 1);
    assert.equal(v.framesHex[0]!.slice(20, 22), '01');
    assert.equal(v.framesHex[1]!.slice(20, 22), '11');
  });
});

describe('LoRa vectors: rejections', () => {
  const rv = loadVector<{
    rejections: { name: string; frameHex: string; expect: 'uplink' | 'downlink'; code: string }[];
  }>('rejections.json');
  const { device, controlPlane } = sessions();
  for (const v of rv.rejections) {
    it(`${v.name} → ${v.code}`, () => {
      rejectsWith(
        () => openLoraFrame(fromHex(v.frameHex), v.expect === 'uplink' ? controlPlane : device, { expect: v.expect }),
        v.code,
      );
    });
  }
});

interface EnrollVector {
  token: string;
  tokenId: string;
  tokenMacKey: string;
  manifestHash: string;
  requestSeq: number;
  requestListen: boolean;
  requestHex: string;
  accepted: { seq: number; controlPlaneX25519Public: string; tid: string; responseHex: string };
  manifestUnknown: { seq: number; responseHex: string };
}

describe('LoRa vectors: enrollment', () => {
  const ev = loadVector<EnrollVector>('enroll.json');
  const device = ed25519KeyPair(fromHex(sv.deviceEd25519Seed));

  it('token keys, request and responses byte for byte', () => {
    const keys = loraEnrollTokenKeys(ev.token);
    assert.equal(toHex(keys.tokenId), ev.tokenId);
    assert.equal(toHex(keys.macKey), ev.tokenMacKey);
    const request = sealEnrollRequest({
      device,
      deviceX25519Public: fromHex(sv.deviceX25519Public),
      token: ev.token,
      manifestHash: fromHex(ev.manifestHash),
      seq: ev.requestSeq,
      listen: ev.requestListen,
    });
    assert.equal(toHex(request), ev.requestHex);
    assert.equal(request.length, 194);
    const accepted = sealEnrollResponse({
      request,
      token: ev.token,
      seq: ev.accepted.seq,
      status: 'accepted',
      controlPlaneX25519Public: fromHex(ev.accepted.controlPlaneX25519Public),
      tid: ev.accepted.tid,
    });
    assert.equal(toHex(accepted), ev.accepted.responseHex);
    const refused = sealEnrollResponse({
      request,
      token: ev.token,
      seq: ev.manifestUnknown.seq,
      status: 'manifest-unknown',
    });
    assert.equal(toHex(refused), ev.manifestUnknown.responseHex);
  });

  it('the control plane opens the request; the device opens the response and derives the vector session', () => {
    const req = openEnrollRequest(fromHex(ev.requestHex), (id) => (toHex(id) === ev.tokenId ? ev.token : undefined));
    assert.equal(req.deviceId, sv.deviceId);
    assert.equal(toHex(req.deviceX25519), sv.deviceX25519Public);
    assert.equal(toHex(req.manifestHash), ev.manifestHash);
    const res = openEnrollResponse(fromHex(ev.accepted.responseHex), {
      request: fromHex(ev.requestHex),
      token: ev.token,
    });
    assert.equal(res.status, 'accepted');
    assert.equal(res.tid, sv.tid);
    const session = deriveLoraSessionKeys({
      deviceX25519: x25519KeyPair(fromHex(sv.deviceX25519Private)),
      controlPlaneX25519: { publicKey: res.controlPlaneX25519! },
      tid: res.tid!,
      deviceId: req.deviceId,
    });
    assert.equal(toHex(session.uplinkKey), sv.uplinkKey);
    const refused = openEnrollResponse(fromHex(ev.manifestUnknown.responseHex), {
      request: fromHex(ev.requestHex),
      token: ev.token,
    });
    assert.deepEqual({ status: refused.status, tid: refused.tid }, { status: 'manifest-unknown', tid: undefined });
  });
});

describe('LoRa vectors: beacon', () => {
  const bv = loadVector<{
    beacon: { gatewayShortId: string; seq: number; timeS: number; pending: string[] };
    frameHex: string;
  }>('beacon.json');
  it('encodes and decodes byte for byte', () => {
    const b = {
      ...bv.beacon,
      gatewayShortId: fromHex(bv.beacon.gatewayShortId),
      pending: bv.beacon.pending.map((h) => fromHex(h)),
    };
    assert.equal(toHex(encodeBeacon(b)), bv.frameHex);
    assert.deepEqual(decodeBeacon(fromHex(bv.frameHex)), b);
  });
});

describe('LoRa vectors: deterministic CBOR', () => {
  const cv = loadVector<{
    values: { value: JsonValue; cborHex: string; source: string }[];
    rejections: { name: string; cborHex: string; code: string }[];
  }>('cbor.json');
  for (const v of cv.values) {
    it(`${JSON.stringify(v.value)} ⇄ ${v.cborHex} (${v.source})`, () => {
      assert.equal(toHex(encodeCbor(v.value)), v.cborHex);
      assert.deepEqual(decodeCbor(fromHex(v.cborHex)), v.value);
    });
  }
  for (const v of cv.rejections) {
    it(`rejects ${v.name} with ${v.code}`, () => rejectsWith(() => decodeCbor(fromHex(v.cborHex)), v.code));
  }
});
