// Loads the LoRa frame test vectors (docs/protocol/vectors/lora-frames/) and converts their JSON forms to values:
// bytes are lowercase hex strings, a byte-valued telemetry reading is {"bytes": "<hex>"}.

import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fromHex, toHex } from '../../protocol/bytes.ts';
import type { JsonValue } from '../../protocol/canonical-json.ts';
import type { LoraTelemetryRecord, LoraTelemetryValue, LoraToolCall } from '../../protocol/lora.ts';

export const VECTOR_DIR = resolve(import.meta.dirname, '../../docs/protocol/vectors/lora-frames');

export function loadVector<T>(name: string): T {
  return JSON.parse(readFileSync(join(VECTOR_DIR, name), 'utf8')) as T;
}

export type JsonTelemetryValue = null | boolean | number | string | { bytes: string };

export interface JsonTelemetryRecord {
  seq: number;
  stream: number;
  ts: number;
  value: JsonTelemetryValue;
}

export function recordFromJson(r: JsonTelemetryRecord): LoraTelemetryRecord {
  const v = r.value;
  const value: LoraTelemetryValue = v !== null && typeof v === 'object' ? fromHex(v.bytes) : v;
  return { seq: r.seq, stream: r.stream, ts: r.ts, value };
}

export function recordToJson(r: LoraTelemetryRecord): JsonTelemetryRecord {
  const value = r.value instanceof Uint8Array ? { bytes: toHex(r.value) } : r.value;
  return { seq: r.seq, stream: r.stream, ts: r.ts, value };
}

export interface JsonApproval {
  approver: { shortId: string } | { id: string };
  signature: string;
}

export interface JsonToolCall {
  callId: number;
  tool: { index: number } | { name: string };
  deadlineS?: number;
  quorum?: { requestId: string; nonce: string; exp: number; approvals: JsonApproval[] };
  args: JsonValue;
}

export function toolCallFromJson(c: JsonToolCall): LoraToolCall {
  return {
    callId: c.callId,
    tool: c.tool,
    ...(c.deadlineS !== undefined ? { deadlineS: c.deadlineS } : {}),
    ...(c.quorum !== undefined
      ? {
          quorum: {
            requestId: c.quorum.requestId,
            nonce: c.quorum.nonce,
            exp: c.quorum.exp,
            approvals: c.quorum.approvals.map((a) => ({
              approver: 'shortId' in a.approver ? { shortId: fromHex(a.approver.shortId) } : { id: a.approver.id },
              signature: fromHex(a.signature),
            })),
          },
        }
      : {}),
    args: c.args,
  };
}

/** The session every frame vector is sealed under (session-keys.json). */
export interface SessionVector {
  deviceEd25519Seed: string;
  deviceEd25519Public: string;
  deviceId: string;
  shortId: string;
  deviceX25519Private: string;
  deviceX25519Public: string;
  controlPlaneX25519Private: string;
  controlPlaneX25519Public: string;
  sharedSecret: string;
  tid: string;
  hkdfSalt: string;
  hkdfInfo: string;
  uplinkKey: string;
  downlinkKey: string;
}
