// Loads the LoRa frame test vectors (docs/protocol/vectors/lora-frames/) and converts their JSON forms to values:
// fields ending in Hex are lowercase hex bytes; a byte-valued telemetry reading is {"bytesHex": "…"}.

import { fromHex, toHex } from '../../protocol/bytes.ts';
import type { JsonValue } from '../../protocol/canonical-json.ts';
import {
  deriveLoraSessionKeys,
  type LoraQualityFlag,
  type LoraSession,
  type LoraTelemetryRecord,
  type LoraTelemetryValue,
  type LoraToolCall,
  x25519KeyPair,
} from '../../protocol/lora.ts';
import { vectorJson } from '../support/protocol-vectors.ts';

export function loadVector<T>(name: string): T {
  return vectorJson<T>('lora-frames', name);
}

export type JsonTelemetryValue = null | boolean | number | string | { bytesHex: string };

export interface JsonTelemetryRecord {
  seq: number;
  stream: number;
  ts: number;
  value: JsonTelemetryValue;
  quality?: LoraQualityFlag[];
}

export function recordFromJson(r: JsonTelemetryRecord): LoraTelemetryRecord {
  const v = r.value;
  const value: LoraTelemetryValue = v !== null && typeof v === 'object' ? fromHex(v.bytesHex) : v;
  return { seq: r.seq, stream: r.stream, ts: r.ts, value, ...(r.quality ? { quality: r.quality } : {}) };
}

export function recordToJson(r: LoraTelemetryRecord): JsonTelemetryRecord {
  const value = r.value instanceof Uint8Array ? { bytesHex: toHex(r.value) } : r.value;
  return { seq: r.seq, stream: r.stream, ts: r.ts, value, ...(r.quality ? { quality: [...r.quality] } : {}) };
}

export interface JsonApproval {
  approver: { shortIdHex: string } | { id: string };
  signature: string;
}

export interface JsonToolCall {
  callId: string;
  tool: { index: number } | { name: string };
  deadlineMs?: number;
  token?: string;
  quorum?: { requestId: string; nonce: string; expMs: number; approvals: JsonApproval[] };
  args: JsonValue;
}

export function toolCallFromJson(c: JsonToolCall): LoraToolCall {
  return {
    callId: c.callId,
    tool: c.tool,
    ...(c.deadlineMs !== undefined ? { deadlineMs: c.deadlineMs } : {}),
    ...(c.token !== undefined ? { token: c.token } : {}),
    ...(c.quorum !== undefined
      ? {
          quorum: {
            requestId: c.quorum.requestId,
            nonce: c.quorum.nonce,
            expMs: c.quorum.expMs,
            approvals: c.quorum.approvals.map((a) => ({
              approver:
                'shortIdHex' in a.approver ? { shortId: fromHex(a.approver.shortIdHex) } : { id: a.approver.id },
              signature: fromHex(a.signature),
            })),
          },
        }
      : {}),
    args: c.args,
  };
}

/** The shared vector-file layout (docs/protocol/README.md). */
export interface VectorFile<V, R = Record<string, unknown>> {
  contract: string;
  description: string;
  source?: string;
  vectors: (V & { name: string })[];
  rejects?: (R & { name: string; error: string })[];
}

/** The session every frame vector is sealed under (session-keys.json). */
export interface SessionVector {
  deviceEd25519SeedHex: string;
  deviceEd25519PublicKeyHex: string;
  deviceId: string;
  shortIdHex: string;
  deviceX25519PrivateKeyHex: string;
  deviceX25519PublicKeyHex: string;
  controlPlaneX25519PrivateKeyHex: string;
  controlPlaneX25519PublicKeyHex: string;
  sharedSecretHex: string;
  tid: string;
  hkdfSaltHex: string;
  hkdfInfoHex: string;
  uplinkKeyHex: string;
  downlinkKeyHex: string;
}

/** The session vector and both ends' sessions derived from it. */
export function vectorSessions(): { sv: SessionVector; device: LoraSession; controlPlane: LoraSession } {
  const sv = loadVector<VectorFile<SessionVector>>('session-keys.json').vectors[0]!;
  const device = deriveLoraSessionKeys({
    deviceX25519: x25519KeyPair(fromHex(sv.deviceX25519PrivateKeyHex)),
    controlPlaneX25519: { publicKey: fromHex(sv.controlPlaneX25519PublicKeyHex) },
    tid: sv.tid,
    deviceId: sv.deviceId,
  });
  const controlPlane = deriveLoraSessionKeys({
    deviceX25519: { publicKey: fromHex(sv.deviceX25519PublicKeyHex) },
    controlPlaneX25519: x25519KeyPair(fromHex(sv.controlPlaneX25519PrivateKeyHex)),
    tid: sv.tid,
    deviceId: sv.deviceId,
  });
  return { sv, device, controlPlane };
}

/** The bytes of `field` in every vector of `file` that has it, optionally of one `kind` (fuzz seeds). */
export function vectorSeeds(file: string, field: string, kind?: string): Uint8Array[] {
  const f = loadVector<VectorFile<Record<string, unknown>>>(file);
  return f.vectors
    .filter((v) => (kind === undefined || v.kind === kind) && typeof v[field] === 'string')
    .map((v) => fromHex(v[field] as string));
}
