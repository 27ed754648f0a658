// What a Meshtastic radio puts on air: a 16-byte little-endian header, then the (encrypted) Data
// protobuf [MT-FW src/mesh/RadioInterface.h PacketHeader, PACKET_FLAGS_*; RadioInterface.cpp]. The
// emulator carries Data in clear (same length as AES-CTR ciphertext, so the airtime is right).

import { MeshtasticError } from './errors.ts';
import { MESHTASTIC_HEADER_BYTES } from './lora-params.ts';

const FLAG_HOP_LIMIT_MASK = 0x07;
const FLAG_WANT_ACK = 0x08;
const FLAG_VIA_MQTT = 0x10;
const FLAG_HOP_START_SHIFT = 5;
/** Largest LoRa frame (SX12xx FIFO), so at most 239 bytes of payload follow the header. */
export const MAX_LORA_FRAME_BYTES = 255;

export interface OnAirHeader {
  readonly to: number;
  readonly from: number;
  readonly id: number;
  /** 0..7 */
  readonly hopLimit: number;
  readonly wantAck: boolean;
  readonly viaMqtt: boolean;
  /** 0..7 */
  readonly hopStart: number;
  /** XOR hash of the channel name and key: receivers try only channels with this hash. */
  readonly channelHash: number;
  /** Last byte of the next hop's node number (0 = none). */
  readonly nextHop: number;
  /** Last byte of the node that relayed (or sent) this frame. */
  readonly relayNode: number;
}

export interface OnAirPacket {
  readonly header: OnAirHeader;
  readonly payload: Uint8Array;
}

/** Builds one LoRa frame. Throws MT_PB_INVALID_VALUE for out-of-range fields or a frame above 255 bytes. */
export function encodeOnAirPacket(p: OnAirPacket): Uint8Array {
  const h = p.header;
  const bad = (what: string) =>
    new MeshtasticError('MT_PB_INVALID_VALUE', `on-air ${what} out of range`, { details: { field: what } });
  for (const [k, v] of [
    ['to', h.to],
    ['from', h.from],
    ['id', h.id],
  ] as const) {
    if (!Number.isInteger(v) || v < 0 || v > 0xffffffff) throw bad(k);
  }
  for (const [k, v, max] of [
    ['hopLimit', h.hopLimit, 7],
    ['hopStart', h.hopStart, 7],
    ['channelHash', h.channelHash, 255],
    ['nextHop', h.nextHop, 255],
    ['relayNode', h.relayNode, 255],
  ] as const) {
    if (!Number.isInteger(v) || v < 0 || v > max) throw bad(k);
  }
  if (MESHTASTIC_HEADER_BYTES + p.payload.length > MAX_LORA_FRAME_BYTES) throw bad('payload length');
  const out = new Uint8Array(MESHTASTIC_HEADER_BYTES + p.payload.length);
  const v = new DataView(out.buffer);
  v.setUint32(0, h.to, true);
  v.setUint32(4, h.from, true);
  v.setUint32(8, h.id, true);
  out[12] =
    (h.hopLimit & FLAG_HOP_LIMIT_MASK) |
    (h.wantAck ? FLAG_WANT_ACK : 0) |
    (h.viaMqtt ? FLAG_VIA_MQTT : 0) |
    (h.hopStart << FLAG_HOP_START_SHIFT);
  out[13] = h.channelHash;
  out[14] = h.nextHop;
  out[15] = h.relayNode;
  out.set(p.payload, MESHTASTIC_HEADER_BYTES);
  return out;
}

/** Parses one LoRa frame. Throws MT_PB_TRUNCATED below 16 bytes and MT_PB_TOO_LARGE above 255. */
export function decodeOnAirPacket(frame: Uint8Array): OnAirPacket {
  if (frame.length < MESHTASTIC_HEADER_BYTES) {
    throw new MeshtasticError('MT_PB_TRUNCATED', `a Meshtastic frame needs ${MESHTASTIC_HEADER_BYTES} header bytes`, {
      details: { bytes: frame.length },
    });
  }
  if (frame.length > MAX_LORA_FRAME_BYTES) {
    throw new MeshtasticError('MT_PB_TOO_LARGE', `a LoRa frame has at most ${MAX_LORA_FRAME_BYTES} bytes`, {
      details: { bytes: frame.length },
    });
  }
  const v = new DataView(frame.buffer, frame.byteOffset, frame.byteLength);
  const flags = frame[12]!;
  return {
    header: {
      to: v.getUint32(0, true),
      from: v.getUint32(4, true),
      id: v.getUint32(8, true),
      hopLimit: flags & FLAG_HOP_LIMIT_MASK,
      wantAck: (flags & FLAG_WANT_ACK) !== 0,
      viaMqtt: (flags & FLAG_VIA_MQTT) !== 0,
      hopStart: flags >> FLAG_HOP_START_SHIFT,
      channelHash: frame[13]!,
      nextHop: frame[14]!,
      relayNode: frame[15]!,
    },
    payload: frame.slice(MESHTASTIC_HEADER_BYTES),
  };
}

/** The public default key that a 1-byte PSK selects [MT-FW src/mesh/Channels.h defaultpsk]. */
const DEFAULT_PSK = Uint8Array.from([
  0xd4, 0xf1, 0xbb, 0x3a, 0x20, 0x29, 0x07, 0x59, 0xf0, 0xbc, 0xff, 0xab, 0xcf, 0x4e, 0x69, 0x01,
]);

/**
 * The AES key a channel's configured PSK stands for (Channels::getKey): empty or index 0 = no
 * encryption; a 1-byte index n = the default key with its last byte raised by n − 1; short keys are
 * zero-padded to 16 or 32 bytes.
 */
export function expandPsk(psk: Uint8Array): Uint8Array {
  if (psk.length === 0) return new Uint8Array(0);
  if (psk.length === 1) {
    if (psk[0] === 0) return new Uint8Array(0);
    const k = Uint8Array.from(DEFAULT_PSK);
    k[15] = (k[15]! + psk[0]! - 1) & 0xff;
    return k;
  }
  const size = psk.length <= 16 ? 16 : 32;
  const k = new Uint8Array(Math.max(size, psk.length));
  k.set(psk);
  return k;
}

/**
 * The channel hash the firmware puts in the header (Channels::generateHash): XOR of the channel's
 * name bytes (the preset's name for an unnamed channel) XOR the bytes of its expanded key.
 */
export function channelHash(name: string, psk: Uint8Array): number {
  let h = 0;
  for (const b of new TextEncoder().encode(name)) h ^= b;
  for (const b of expandPsk(psk)) h ^= b;
  return h & 0xff;
}
