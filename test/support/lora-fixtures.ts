// LoRa test fixtures: a device with its Ed25519 identity, X25519 key and a session with a control
// plane, and helpers that seal real frames (telemetry, heartbeats, enroll requests) under it.

import { didKeyFromEd25519 } from '../../protocol/did-key.ts';
import {
  deriveLoraSessionKeys,
  encodeHeartbeat,
  encodeTelemetry,
  type LoraSession,
  type LoraTelemetryRecord,
  sealEnrollRequest,
  sealLoraFrame,
  sealLoraMessage,
  type X25519KeyPair,
  x25519KeyPair,
} from '../../protocol/lora.ts';
import { type Ed25519KeyPair, ed25519KeyPair } from '../../protocol/signing.ts';

export const TEST_TID = '5f1b2c3d-4e5f-5a6b-8c7d-9e0f1a2b3c4d';

export interface TestDevice {
  readonly keys: Ed25519KeyPair;
  readonly seed: Uint8Array;
  readonly publicKey: Uint8Array;
  readonly did: string;
  readonly x25519: X25519KeyPair;
  /** The device's view of its session (holds the device private key). */
  readonly session: LoraSession;
  readonly shortIdHex: string;
  nextSeq: number;
}

export interface TestControlPlaneKeys {
  readonly x25519: X25519KeyPair;
}

export function testControlPlaneKeys(): TestControlPlaneKeys {
  return { x25519: x25519KeyPair() };
}

export function testDevice(cp: TestControlPlaneKeys, tid = TEST_TID): TestDevice {
  const kp = ed25519KeyPair();
  const did = didKeyFromEd25519(kp.publicKey);
  const x = x25519KeyPair();
  const session = deriveLoraSessionKeys({
    deviceX25519: x,
    controlPlaneX25519: { publicKey: cp.x25519.publicKey },
    tid,
    deviceId: did,
  });
  return {
    keys: kp,
    seed: kp.seed,
    publicKey: kp.publicKey,
    did,
    x25519: x,
    session,
    shortIdHex: Buffer.from(session.shortId).toString('hex'),
    nextSeq: 1,
  };
}

/** The control plane's view of a device's session. */
export function controlPlaneSession(cp: TestControlPlaneKeys, device: TestDevice, tid = TEST_TID): LoraSession {
  return deriveLoraSessionKeys({
    deviceX25519: { publicKey: device.x25519.publicKey },
    controlPlaneX25519: cp.x25519,
    tid,
    deviceId: device.did,
  });
}

export function telemetryFrame(
  device: TestDevice,
  records: readonly LoraTelemetryRecord[],
  options: { maxFrameBytes?: number; seq?: number } = {},
): Uint8Array {
  const seq = options.seq ?? device.nextSeq++;
  return sealLoraFrame(device.session, { type: 'telemetry', seq }, encodeTelemetry(records), {
    maxFrameBytes: options.maxFrameBytes ?? 254,
  });
}

export function heartbeatFrame(device: TestDevice, seq = device.nextSeq++): Uint8Array {
  return sealLoraFrame(
    device.session,
    { type: 'heartbeat', seq, listen: true },
    encodeHeartbeat({ uptimeS: 1, queuedRecords: 0 }),
  );
}

/** A fragmented tool.result-typed message (for fragment handling tests). */
export function fragmentedFrames(device: TestDevice, payloadBytes: number, maxFrameBytes = 233): Uint8Array[] {
  const payload = new Uint8Array(payloadBytes).fill(7);
  const frames = sealLoraMessage(device.session, { type: 'tool.result', firstSeq: device.nextSeq }, payload, {
    maxFrameBytes,
  });
  device.nextSeq += frames.length;
  return frames;
}

export function enrollRequestFrame(device: TestDevice, token: string, manifestHash: Uint8Array, seq = 0): Uint8Array {
  return sealEnrollRequest({
    device: device.keys,
    deviceX25519Public: device.x25519.publicKey,
    token,
    manifestHash,
    seq,
  });
}
