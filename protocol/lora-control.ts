// Liveness and provisioning over LoRa (docs/protocol/lora-frames.md §4.8–4.9, §4.11): the device's HEARTBEAT payload,
// the control plane's CONTROL payload (policy, keys, revocations), and the gateway's cleartext BEACON frame, which is
// only ever a hint (it cannot be authenticated end to end).

import type { JsonValue } from './canonical-json.ts';
import { SHORT_ID_BYTES } from './did-key.ts';
import { ProtocolError } from './errors.ts';
import { readCbor, writeCbor } from './lora-cbor.ts';
import { decodeLoraHeader, encodeLoraHeader, type LoraLimits } from './lora-frame.ts';
import { ByteReader, ByteWriter } from './lora-wire.ts';

export interface LoraHeartbeat {
  readonly uptimeS: number;
  /** Telemetry records waiting in the device's outbox. */
  readonly queuedRecords: number;
  readonly batteryMv?: number;
  /** The device's own wall clock, seconds since the Unix epoch (absent while it has no idea). */
  readonly timeS?: number;
}

const H_HAS_BATTERY = 0x01;
const H_HAS_TIME = 0x02;

function malformed(message: string, offset: number): ProtocolError {
  return new ProtocolError('LORA_PAYLOAD_MALFORMED', message, { details: { offset } });
}

/** Encodes a HEARTBEAT payload. */
export function encodeHeartbeat(hb: LoraHeartbeat): Uint8Array {
  const w = new ByteWriter();
  w.u8((hb.batteryMv !== undefined ? H_HAS_BATTERY : 0) | (hb.timeS !== undefined ? H_HAS_TIME : 0));
  w.varint(hb.uptimeS).varint(hb.queuedRecords);
  if (hb.batteryMv !== undefined) w.varint(hb.batteryMv);
  if (hb.timeS !== undefined) w.varint(hb.timeS);
  return w.finish();
}

/** Decodes a HEARTBEAT payload. Throws LORA_PAYLOAD_MALFORMED, LORA_NON_CANONICAL. */
export function decodeHeartbeat(payload: Uint8Array): LoraHeartbeat {
  const r = new ByteReader(payload);
  const flags = r.u8();
  if (flags & ~(H_HAS_BATTERY | H_HAS_TIME)) throw malformed('heartbeat: reserved flag bits set', 0);
  const uptimeS = r.varint();
  const queuedRecords = r.varint();
  const batteryMv = flags & H_HAS_BATTERY ? r.varint() : undefined;
  const timeS = flags & H_HAS_TIME ? r.varint() : undefined;
  r.end('heartbeat');
  return {
    uptimeS,
    queuedRecords,
    ...(batteryMv !== undefined ? { batteryMv } : {}),
    ...(timeS !== undefined ? { timeS } : {}),
  };
}

/**
 * What a CONTROL payload provisions (§4.11): the tenant's quorum policy (quorum.md §2.1), the JWK Set runtime tokens
 * verify against (tokens.md §4.3), or a revocation (envelope.md `revoke` body). The value's schema is the named
 * contract's; this codec only carries it.
 */
export type LoraControlKind = 'quorum-policy' | 'jwks' | 'revoke' | 'issuer';

export interface LoraControl {
  readonly kind: LoraControlKind;
  readonly value: JsonValue;
}

const CONTROL_KINDS: readonly LoraControlKind[] = ['quorum-policy', 'jwks', 'revoke', 'issuer'];

/** Encodes a CONTROL payload: kind byte (1..4) then one deterministic CBOR item. */
export function encodeControl(control: LoraControl): Uint8Array {
  const kind = CONTROL_KINDS.indexOf(control.kind);
  if (kind < 0) throw new ProtocolError('LORA_VALUE_UNSUPPORTED', `unknown control kind ${String(control.kind)}`);
  const w = new ByteWriter();
  w.u8(kind + 1);
  writeCbor(w, control.value);
  return w.finish();
}

/** Decodes a CONTROL payload. Throws LORA_PAYLOAD_MALFORMED, LORA_NON_CANONICAL, LORA_VALUE_UNSUPPORTED. */
export function decodeControl(payload: Uint8Array): LoraControl {
  const r = new ByteReader(payload);
  const kind = CONTROL_KINDS[r.u8() - 1];
  if (kind === undefined) throw malformed('control: unknown kind', 0);
  const value = readCbor(r);
  r.end('control value');
  return { kind, value };
}

/** Most short ids a beacon lists as having downlink waiting. */
export const BEACON_MAX_PENDING = 48;

export interface LoraBeacon {
  /** The gateway's short id: first 4 bytes of SHA-256(gateway Ed25519 public key). */
  readonly gatewayShortId: Uint8Array;
  /** The gateway's beacon counter (lets receivers drop repeats; not a security property). */
  readonly seq: number;
  /** The gateway's wall clock, seconds since the Unix epoch: a hint, never a trusted time. */
  readonly timeS?: number;
  /** Short ids of devices the gateway holds downlink for. */
  readonly pending: readonly Uint8Array[];
}

const B_HAS_TIME = 0x01;

/** Encodes a whole BEACON frame (header + cleartext body, no tag). */
export function encodeBeacon(beacon: LoraBeacon): Uint8Array {
  if (!Array.isArray(beacon.pending) || beacon.pending.length > BEACON_MAX_PENDING) {
    throw new ProtocolError('LORA_VALUE_UNSUPPORTED', `a beacon lists at most ${BEACON_MAX_PENDING} short ids`);
  }
  const w = new ByteWriter();
  w.bytes(
    encodeLoraHeader({
      type: 'beacon',
      direction: 'downlink',
      shortId: beacon.gatewayShortId,
      seq: beacon.seq,
      listen: false,
    }),
  );
  w.u8(beacon.timeS !== undefined ? B_HAS_TIME : 0);
  if (beacon.timeS !== undefined) w.varint(beacon.timeS);
  w.u8(beacon.pending.length);
  for (const id of beacon.pending) {
    if (!(id instanceof Uint8Array) || id.length !== SHORT_ID_BYTES) {
      throw new ProtocolError('LORA_VALUE_UNSUPPORTED', 'pending short ids must be 4 bytes');
    }
    w.bytes(id);
  }
  return w.finish();
}

/** Decodes a BEACON frame. Throws the header codes, LORA_BAD_TYPE for another type, LORA_PAYLOAD_MALFORMED. */
export function decodeBeacon(frame: Uint8Array, limits: LoraLimits = {}): LoraBeacon {
  const { header, body } = decodeLoraHeader(frame, limits);
  if (header.type !== 'beacon') throw new ProtocolError('LORA_BAD_TYPE', `expected a beacon, got ${header.type}`);
  const r = new ByteReader(body);
  const flags = r.u8();
  if (flags & ~B_HAS_TIME) throw malformed('beacon: reserved flag bits set', 0);
  const timeS = flags & B_HAS_TIME ? r.varint() : undefined;
  const n = r.u8();
  if (n > BEACON_MAX_PENDING) throw malformed('beacon: too many pending short ids', r.offset - 1);
  const pending: Uint8Array[] = [];
  for (let i = 0; i < n; i++) pending.push(r.bytes(SHORT_ID_BYTES).slice());
  r.end('beacon');
  return { gatewayShortId: header.shortId, seq: header.seq, ...(timeS !== undefined ? { timeS } : {}), pending };
}
