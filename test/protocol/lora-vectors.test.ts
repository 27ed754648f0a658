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
  decodeControl,
  decodeHeartbeat,
  decodeLoraHeader,
  decodeTelemetry,
  decodeTelemetryAck,
  decodeToolCall,
  decodeToolResult,
  deriveLoraSessionKeys,
  type EnrollStatus,
  encodeBeacon,
  encodeControl,
  encodeHeartbeat,
  encodeTelemetry,
  encodeTelemetryAck,
  encodeToolCall,
  encodeToolResult,
  type LoraControl,
  type LoraFrameType,
  type LoraHeartbeat,
  type LoraSession,
  type LoraTelemetryAck,
  type LoraToolResult,
  loraEnrollTokenKeys,
  loraTypeInfo,
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
  toolCallFromJson,
  type VectorFile,
  vectorSessions,
} from './lora-vectors.ts';

const { sv, device: deviceSession, controlPlane: controlPlaneSession } = vectorSessions();

function sessions(): { device: LoraSession; controlPlane: LoraSession } {
  return { device: deviceSession, controlPlane: controlPlaneSession };
}

function rejectsWith(fn: () => unknown, code: string): void {
  assert.throws(fn, (e: unknown) => isOutpostError(e, code) || assert.fail(`expected ${code}, got ${String(e)}`));
}

describe('LoRa vectors: session keys', () => {
  it('X25519 keys and shared secret are those of RFC 7748 §6.1', () => {
    assert.equal(toHex(x25519KeyPair(fromHex(sv.deviceX25519PrivateKeyHex)).publicKey), sv.deviceX25519PublicKeyHex);
    assert.equal(
      toHex(x25519KeyPair(fromHex(sv.controlPlaneX25519PrivateKeyHex)).publicKey),
      sv.controlPlaneX25519PublicKeyHex,
    );
    assert.equal(
      toHex(x25519SharedSecret(fromHex(sv.deviceX25519PrivateKeyHex), fromHex(sv.controlPlaneX25519PublicKeyHex))),
      sv.sharedSecretHex,
    );
  });

  it('identity: did:key and short id of the RFC 8032 key', () => {
    const key = ed25519KeyPair(fromHex(sv.deviceEd25519SeedHex));
    assert.equal(toHex(key.publicKey), sv.deviceEd25519PublicKeyHex);
    assert.equal(didKeyFromEd25519(key.publicKey), sv.deviceId);
    assert.equal(toHex(shortIdOf(key.publicKey)), sv.shortIdHex);
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
      fromHex(sv.deviceX25519PublicKeyHex),
      fromHex(sv.controlPlaneX25519PublicKeyHex),
    );
    assert.equal(toHex(info), sv.hkdfInfoHex);
    assert.equal(toHex(utf8('outpost/lora-session/v1')), sv.hkdfSaltHex);
    const okm = hkdf(sha256, fromHex(sv.sharedSecretHex), fromHex(sv.hkdfSaltHex), info, 64);
    assert.equal(toHex(okm.subarray(0, 32)), sv.uplinkKeyHex);
    assert.equal(toHex(okm.subarray(32)), sv.downlinkKeyHex);
  });

  it('both ends derive the vector keys', () => {
    const { device, controlPlane } = sessions();
    for (const s of [device, controlPlane]) {
      assert.equal(toHex(s.shortId), sv.shortIdHex);
      assert.equal(toHex(s.uplinkKey), sv.uplinkKeyHex);
      assert.equal(toHex(s.downlinkKey), sv.downlinkKeyHex);
    }
  });
});

describe('LoRa vectors: session-key rejects', () => {
  const file = loadVector<VectorFile<unknown, { controlPlaneX25519PublicKeyHex: string }>>('session-keys.json');
  for (const r of file.rejects ?? []) {
    it(`${r.name} → ${r.error}`, () => {
      rejectsWith(
        () =>
          deriveLoraSessionKeys({
            deviceX25519: x25519KeyPair(fromHex(sv.deviceX25519PrivateKeyHex)),
            controlPlaneX25519: { publicKey: fromHex(r.controlPlaneX25519PublicKeyHex) },
            tid: sv.tid,
            deviceId: sv.deviceId,
          }),
        r.error,
      );
    });
  }
});

describe('LoRa vectors: telemetry', () => {
  const file =
    loadVector<
      VectorFile<
        { records: JsonTelemetryRecord[]; payloadHex: string; decoded: JsonTelemetryRecord[] },
        { payloadHex: string }
      >
    >('telemetry.json');
  for (const v of file.vectors) {
    it(v.name, () => {
      assert.equal(toHex(encodeTelemetry(v.records.map(recordFromJson))), v.payloadHex);
      assert.deepEqual(decodeTelemetry(fromHex(v.payloadHex)).map(recordToJson), v.decoded);
      assert.equal(v.decoded.length, v.records.length);
    });
  }
  for (const r of file.rejects ?? []) {
    it(`rejects ${r.name} with ${r.error}`, () => rejectsWith(() => decodeTelemetry(fromHex(r.payloadHex)), r.error));
  }

  it('a hand-decoded payload reads as §4.4 describes', () => {
    // one-integer-reading: flags 01 (seconds), seq0 00, ts0 1767225600 = 80 f2 d6 ca 06,
    // record 3a = int (3 << 4) | SEQ_STEP | SAME_DELTA, stream 00, value zigzag(21) = 2a.
    assert.equal(file.vectors[0]!.payloadHex, '010080f2d6ca063a002a');
  });
});

describe('LoRa vectors: telemetry ack', () => {
  const file =
    loadVector<
      VectorFile<{ ack: LoraTelemetryAck; payloadHex: string; decoded: LoraTelemetryAck }, { payloadHex: string }>
    >('telemetry-ack.json');
  for (const v of file.vectors) {
    it(v.name, () => {
      assert.equal(toHex(encodeTelemetryAck(v.ack)), v.payloadHex);
      assert.deepEqual(decodeTelemetryAck(fromHex(v.payloadHex)), v.decoded);
    });
  }
  for (const r of file.rejects ?? []) {
    it(`rejects ${r.name} with ${r.error}`, () =>
      rejectsWith(() => decodeTelemetryAck(fromHex(r.payloadHex)), r.error));
  }
});

describe('LoRa vectors: tool calls and results', () => {
  const file =
    loadVector<
      VectorFile<
        | { kind: 'tool.call'; call: JsonToolCall; payloadHex: string }
        | { kind: 'tool.result'; result: LoraToolResult; payloadHex: string },
        { kind: 'tool.call' | 'tool.result'; payloadHex: string }
      >
    >('tool.json');
  for (const v of file.vectors) {
    it(`${v.kind} ${v.name}`, () => {
      if (v.kind === 'tool.call') {
        assert.equal(toHex(encodeToolCall(toolCallFromJson(v.call))), v.payloadHex);
        assert.deepEqual(decodeToolCall(fromHex(v.payloadHex)), toolCallFromJson(v.call));
      } else {
        assert.equal(toHex(encodeToolResult(v.result)), v.payloadHex);
        assert.deepEqual(decodeToolResult(fromHex(v.payloadHex)), v.result);
      }
    });
  }
  for (const r of file.rejects ?? []) {
    it(`rejects ${r.kind} ${r.name} with ${r.error}`, () =>
      rejectsWith(() => (r.kind === 'tool.call' ? decodeToolCall : decodeToolResult)(fromHex(r.payloadHex)), r.error));
  }
});

describe('LoRa vectors: heartbeat and beacon', () => {
  const file =
    loadVector<
      VectorFile<
        | { kind: 'heartbeat'; heartbeat: LoraHeartbeat; payloadHex: string }
        | { kind: 'control'; control: LoraControl; payloadHex: string }
        | {
            kind: 'beacon';
            beacon: { gatewayShortIdHex: string; seq: number; timeS: number; pendingHex: string[] };
            frameHex: string;
          },
        { kind: 'heartbeat' | 'control' | 'beacon'; payloadHex?: string; frameHex?: string }
      >
    >('control.json');
  for (const v of file.vectors) {
    it(`${v.kind} ${v.name}`, () => {
      if (v.kind === 'heartbeat') {
        assert.equal(toHex(encodeHeartbeat(v.heartbeat)), v.payloadHex);
        assert.deepEqual(decodeHeartbeat(fromHex(v.payloadHex)), v.heartbeat);
      } else if (v.kind === 'control') {
        assert.equal(toHex(encodeControl(v.control)), v.payloadHex);
        assert.deepEqual(decodeControl(fromHex(v.payloadHex)), v.control);
      } else {
        const b = {
          gatewayShortId: fromHex(v.beacon.gatewayShortIdHex),
          seq: v.beacon.seq,
          timeS: v.beacon.timeS,
          pending: v.beacon.pendingHex.map((h) => fromHex(h)),
        };
        assert.equal(toHex(encodeBeacon(b)), v.frameHex);
        assert.deepEqual(decodeBeacon(fromHex(v.frameHex)), b);
      }
    });
  }
  for (const r of file.rejects ?? []) {
    it(`rejects ${r.name} with ${r.error}`, () =>
      rejectsWith(
        () =>
          r.kind === 'heartbeat'
            ? decodeHeartbeat(fromHex(r.payloadHex!))
            : r.kind === 'control'
              ? decodeControl(fromHex(r.payloadHex!))
              : decodeBeacon(fromHex(r.frameHex!)),
        r.error,
      ));
  }
});

interface FrameVector {
  type: LoraFrameType;
  firstSeq: number;
  listen: boolean;
  maxFrameBytes: number;
  payloadHex: string;
  framesHex: string[];
}

describe('LoRa vectors: frames', () => {
  const file = loadVector<VectorFile<FrameVector, { frameHex: string; expect: 'uplink' | 'downlink' }>>('frames.json');
  const { device, controlPlane } = sessions();
  for (const v of file.vectors) {
    it(`${v.name}: sealed byte for byte, opened and reassembled by the other end`, () => {
      const downlink = loraTypeInfo(v.type).direction === 'downlink';
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
  for (const r of file.rejects ?? []) {
    it(`rejects ${r.name} with ${r.error}`, () => {
      rejectsWith(
        () => openLoraFrame(fromHex(r.frameHex), r.expect === 'uplink' ? controlPlane : device, { expect: r.expect }),
        r.error,
      );
    });
  }

  it('the first frame matches a hand-built header, nonce and ChaCha20-Poly1305 call (§3, §5.3)', () => {
    const v = file.vectors[0]!; // telemetry, uplink, seq 0x1000, L set
    const header = fromHex(`2120${sv.shortIdHex}00001000`); // version 1 | type 0x01, flags L, short id, seq
    const nonce = fromHex(`00000000${sv.shortIdHex}00001000`);
    const payload = fromHex(v.payloadHex);
    const c = createCipheriv('chacha20-poly1305', fromHex(sv.uplinkKeyHex), nonce, { authTagLength: 16 });
    c.setAAD(header, { plaintextLength: payload.length });
    const expected = concatBytes(header, c.update(payload), c.final(), c.getAuthTag());
    assert.equal(toHex(expected), v.framesHex[0]);
    assert.equal(fromHex(v.framesHex[0]!).length, payload.length + 26);
  });

  it('fragment headers carry index and count−1 in one byte after the seq (§7.1)', () => {
    const v = file.vectors.find((f) => f.framesHex.length === 2)!;
    const [a, b] = v.framesHex.map((h) => decodeLoraHeader(fromHex(h)));
    assert.deepEqual(a!.header.fragment, { index: 0, count: 2 });
    assert.deepEqual(b!.header.fragment, { index: 1, count: 2 });
    assert.equal(b!.header.seq, a!.header.seq + 1);
    assert.equal(v.framesHex[0]!.slice(20, 22), '01');
    assert.equal(v.framesHex[1]!.slice(20, 22), '11');
  });
});

interface EnrollVector {
  token: string;
  tokenIdHex: string;
  tokenMacKeyHex: string;
  manifestHashHex: string;
  requestSeq: number;
  requestListen: boolean;
  requestHex: string;
  responseSeq: number;
  status: EnrollStatus;
  controlPlaneX25519PublicKeyHex?: string;
  tid?: string;
  responseHex: string;
}

describe('LoRa vectors: enrollment', () => {
  const file = loadVector<VectorFile<EnrollVector, { requestHex?: string; responseHex?: string }>>('enroll.json');
  const device = ed25519KeyPair(fromHex(sv.deviceEd25519SeedHex));

  for (const v of file.vectors) {
    it(`${v.name}: token keys, request and response byte for byte`, () => {
      const keys = loraEnrollTokenKeys(v.token);
      assert.equal(toHex(keys.tokenId), v.tokenIdHex);
      assert.equal(toHex(keys.macKey), v.tokenMacKeyHex);
      const request = sealEnrollRequest({
        device,
        deviceX25519Public: fromHex(sv.deviceX25519PublicKeyHex),
        token: v.token,
        manifestHash: fromHex(v.manifestHashHex),
        seq: v.requestSeq,
        listen: v.requestListen,
      });
      assert.equal(toHex(request), v.requestHex);
      assert.equal(request.length, 194);
      const response = sealEnrollResponse({
        request,
        token: v.token,
        seq: v.responseSeq,
        status: v.status,
        ...(v.controlPlaneX25519PublicKeyHex
          ? { controlPlaneX25519Public: fromHex(v.controlPlaneX25519PublicKeyHex) }
          : {}),
        ...(v.tid ? { tid: v.tid } : {}),
      });
      assert.equal(toHex(response), v.responseHex);
    });

    it(`${v.name}: the control plane opens the request, the device the response`, () => {
      const req = openEnrollRequest(fromHex(v.requestHex), (id) => (toHex(id) === v.tokenIdHex ? v.token : undefined));
      assert.equal(req.deviceId, sv.deviceId);
      assert.equal(toHex(req.deviceX25519), sv.deviceX25519PublicKeyHex);
      assert.equal(toHex(req.manifestHash), v.manifestHashHex);
      const res = openEnrollResponse(fromHex(v.responseHex), { request: fromHex(v.requestHex), token: v.token });
      assert.equal(res.status, v.status);
      if (v.status !== 'accepted') {
        assert.equal(res.tid, undefined);
        return;
      }
      assert.equal(res.tid, sv.tid);
      const session = deriveLoraSessionKeys({
        deviceX25519: x25519KeyPair(fromHex(sv.deviceX25519PrivateKeyHex)),
        controlPlaneX25519: { publicKey: res.controlPlaneX25519! },
        tid: res.tid!,
        deviceId: req.deviceId,
      });
      assert.equal(toHex(session.uplinkKey), sv.uplinkKeyHex);
    });
  }

  const v0 = file.vectors[0]!;
  for (const r of file.rejects ?? []) {
    it(`rejects ${r.name} with ${r.error}`, () => {
      if (r.requestHex) rejectsWith(() => openEnrollRequest(fromHex(r.requestHex!), () => v0.token), r.error);
      else {
        rejectsWith(
          () => openEnrollResponse(fromHex(r.responseHex!), { request: fromHex(v0.requestHex), token: v0.token }),
          r.error,
        );
      }
    });
  }
});

describe('LoRa vectors: deterministic CBOR', () => {
  const file =
    loadVector<VectorFile<{ value: JsonValue; cborHex: string; source: string }, { cborHex: string }>>('cbor.json');
  for (const v of file.vectors) {
    it(`${v.name} ⇄ ${v.cborHex} (${v.source})`, () => {
      assert.equal(toHex(encodeCbor(v.value)), v.cborHex);
      assert.deepEqual(decodeCbor(fromHex(v.cborHex)), v.value);
    });
  }
  for (const r of file.rejects ?? []) {
    it(`rejects ${r.name} with ${r.error}`, () => rejectsWith(() => decodeCbor(fromHex(r.cborHex)), r.error));
  }
});
