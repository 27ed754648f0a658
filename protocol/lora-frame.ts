// The LoRa frame (docs/protocol/lora-frames.md §3): a 10-byte cleartext header (+1 byte when fragmented) that is the
// AEAD associated data, then ChaCha20-Poly1305 ciphertext and a 16-byte tag; plus splitting a message into fragments.

import { createCipheriv, createDecipheriv, createHash } from 'node:crypto';
import { concatBytes } from './bytes.ts';
import { SHORT_ID_BYTES } from './did-key.ts';
import { ProtocolError } from './errors.ts';
import { LORA_KEY_BYTES, type LoraSession } from './lora-keys.ts';

/** Protocol version in the top 3 bits of byte 0 (§3.1). */
export const LORA_VERSION = 1;
export const LORA_HEADER_BYTES = 10;
/** The fragment byte that follows the header when the F flag is set (§7). */
export const LORA_FRAGMENT_BYTES = 1;
/** Poly1305 tag, never truncated (§5.1). */
export const LORA_TAG_BYTES = 16;
/** Bytes a sealed frame adds to its payload: header + tag = 26 (27 for a fragment). */
export const LORA_OVERHEAD_BYTES = LORA_HEADER_BYTES + LORA_TAG_BYTES;
export const LORA_MAX_FRAGMENTS = 16;
export const LORA_SEQ_MAX = 0xffff_ffff;
/** No frame is longer than the RNode firmware's serial MTU (508); profiles choose smaller limits. */
export const LORA_MAX_FRAME_BYTES = 508;

export interface LoraProfile {
  readonly name: 'meshtastic' | 'rnode';
  /** Largest frame this project sends over the link (§6). */
  readonly maxFrameBytes: number;
  /** Largest packet the link accepts at all. */
  readonly linkMtuBytes: number;
}

/** MTU profiles (§6): Meshtastic Data.payload ≤ 233 B; RNode packets ≤ 254 B so that each is one LoRa frame. */
export const LORA_PROFILES: Readonly<Record<LoraProfile['name'], LoraProfile>> = Object.freeze({
  meshtastic: Object.freeze({ name: 'meshtastic', maxFrameBytes: 233, linkMtuBytes: 233 }),
  rnode: Object.freeze({ name: 'rnode', maxFrameBytes: 254, linkMtuBytes: 508 }),
});

export type LoraDirection = 'uplink' | 'downlink';

export type LoraFrameType =
  | 'telemetry'
  | 'telemetry.ack'
  | 'tool.call'
  | 'tool.result'
  | 'heartbeat'
  | 'control'
  | 'enroll.request'
  | 'enroll.response'
  | 'beacon';

/** How a frame type's body is protected: AEAD under the session keys, the enrollment scheme, or not at all. */
export type LoraProtection = 'aead' | 'enroll' | 'none';

interface TypeInfo {
  readonly code: number;
  readonly direction: LoraDirection;
  readonly protection: LoraProtection;
}

/** Type codes (§3.2). */
const TYPES: Readonly<Record<LoraFrameType, TypeInfo>> = {
  telemetry: { code: 0x01, direction: 'uplink', protection: 'aead' },
  'telemetry.ack': { code: 0x02, direction: 'downlink', protection: 'aead' },
  'tool.call': { code: 0x03, direction: 'downlink', protection: 'aead' },
  'tool.result': { code: 0x04, direction: 'uplink', protection: 'aead' },
  heartbeat: { code: 0x05, direction: 'uplink', protection: 'aead' },
  control: { code: 0x06, direction: 'downlink', protection: 'aead' },
  'enroll.request': { code: 0x10, direction: 'uplink', protection: 'enroll' },
  'enroll.response': { code: 0x11, direction: 'downlink', protection: 'enroll' },
  beacon: { code: 0x1f, direction: 'downlink', protection: 'none' },
};
const TYPE_BY_CODE = new Map(Object.entries(TYPES).map(([name, t]) => [t.code, name as LoraFrameType]));

/** Direction and protection of a frame type. */
export function loraTypeInfo(type: LoraFrameType): { direction: LoraDirection; protection: LoraProtection } {
  const t = TYPES[type];
  if (t === undefined) throw new ProtocolError('LORA_BAD_TYPE', `unknown frame type ${String(type)}`);
  return { direction: t.direction, protection: t.protection };
}

const FLAG_DOWNLINK = 0x80;
const FLAG_FRAGMENT = 0x40;
const FLAG_LISTEN = 0x20;
const FLAGS_RESERVED = 0x1f;

export interface LoraFragment {
  /** 0-based position of this fragment. */
  readonly index: number;
  /** Fragments in the message, 2..16. */
  readonly count: number;
}

/** The cleartext header: what a gateway can read (and can check cheaply) without any key. */
export interface LoraHeader {
  readonly type: LoraFrameType;
  /** Implied by the type; carried as the D flag so relays and the nonce see it. */
  readonly direction: LoraDirection;
  /** Uplink: the device's short id. Downlink: the destination device's (beacon: the gateway's). */
  readonly shortId: Uint8Array;
  /** Sender's frame counter, 0..2^32−1, never repeated under one key (§5.3). */
  readonly seq: number;
  /** L flag. Uplink: the device listens for downlink right after this frame. Downlink: more is queued for it. */
  readonly listen: boolean;
  readonly fragment?: LoraFragment;
}

function checkSeq(seq: number): void {
  if (!Number.isInteger(seq) || seq < 0 || seq > LORA_SEQ_MAX) {
    throw new ProtocolError('LORA_SEQ_OUT_OF_RANGE', `seq must be an integer in 0..2^32-1, got ${seq}`);
  }
}

function checkFragment(f: LoraFragment): void {
  if (
    !Number.isInteger(f.count) ||
    !Number.isInteger(f.index) ||
    f.count < 2 ||
    f.count > LORA_MAX_FRAGMENTS ||
    f.index < 0 ||
    f.index >= f.count
  ) {
    throw new ProtocolError('LORA_BAD_FRAGMENT', `bad fragment ${f.index}/${f.count}`);
  }
}

/** Encodes a header (10 or 11 bytes). Throws LORA_* codes for values that cannot be sent. */
export function encodeLoraHeader(h: LoraHeader): Uint8Array {
  const info = TYPES[h.type];
  if (info === undefined) throw new ProtocolError('LORA_BAD_TYPE', `unknown frame type ${String(h.type)}`);
  if (h.direction !== info.direction)
    throw new ProtocolError('LORA_BAD_TYPE', `${h.type} cannot travel ${h.direction}`);
  if (!(h.shortId instanceof Uint8Array) || h.shortId.length !== SHORT_ID_BYTES) {
    throw new ProtocolError('LORA_SHORT_ID_MISMATCH', 'short id must be 4 bytes');
  }
  checkSeq(h.seq);
  if (h.fragment !== undefined) {
    checkFragment(h.fragment);
    if (info.protection !== 'aead') throw new ProtocolError('LORA_BAD_FRAGMENT', `${h.type} cannot be fragmented`);
  }
  if (h.type === 'beacon' && h.listen) throw new ProtocolError('LORA_BAD_FLAGS', 'a beacon has no L flag');
  const out = new Uint8Array(LORA_HEADER_BYTES + (h.fragment ? LORA_FRAGMENT_BYTES : 0));
  out[0] = (LORA_VERSION << 5) | info.code;
  out[1] =
    (h.direction === 'downlink' ? FLAG_DOWNLINK : 0) | (h.fragment ? FLAG_FRAGMENT : 0) | (h.listen ? FLAG_LISTEN : 0);
  out.set(h.shortId, 2);
  new DataView(out.buffer).setUint32(6, h.seq);
  if (h.fragment) out[10] = (h.fragment.index << 4) | (h.fragment.count - 1);
  return out;
}

export interface DecodedLoraHeader {
  readonly header: LoraHeader;
  /** The header's bytes (10 or 11): the AEAD associated data. */
  readonly headerBytes: Uint8Array;
  /** Everything after the header: ciphertext ‖ tag for AEAD types, the cleartext body otherwise. */
  readonly body: Uint8Array;
}

export interface LoraLimits {
  /** Frames longer than this are refused (default 508, the largest any profile allows). */
  readonly maxFrameBytes?: number;
}

function minBodyBytes(protection: LoraProtection): number {
  return protection === 'aead' ? 1 + LORA_TAG_BYTES : 1;
}

/**
 * Parses and checks the cleartext header of a frame without any key: version, type, flags against the type, fragment
 * byte, and length bounds (§8 steps 1–4). Throws LORA_FRAME_TOO_SHORT/TOO_LONG, LORA_BAD_VERSION, LORA_BAD_TYPE,
 * LORA_BAD_FLAGS, LORA_BAD_FRAGMENT.
 */
export function decodeLoraHeader(frame: Uint8Array, limits: LoraLimits = {}): DecodedLoraHeader {
  const maxFrameBytes = limits.maxFrameBytes ?? LORA_MAX_FRAME_BYTES;
  if (!(frame instanceof Uint8Array)) throw new ProtocolError('LORA_FRAME_TOO_SHORT', 'frame must be bytes');
  if (frame.length > maxFrameBytes) {
    throw new ProtocolError('LORA_FRAME_TOO_LONG', `frame of ${frame.length} bytes exceeds ${maxFrameBytes}`);
  }
  if (frame.length < LORA_HEADER_BYTES) {
    throw new ProtocolError('LORA_FRAME_TOO_SHORT', `frame of ${frame.length} bytes is shorter than a header`);
  }
  const version = frame[0]! >>> 5;
  if (version !== LORA_VERSION) throw new ProtocolError('LORA_BAD_VERSION', `unsupported frame version ${version}`);
  const type = TYPE_BY_CODE.get(frame[0]! & 0x1f);
  if (type === undefined) throw new ProtocolError('LORA_BAD_TYPE', `unknown type code ${frame[0]! & 0x1f}`);
  const info = TYPES[type];
  const flags = frame[1]!;
  if (flags & FLAGS_RESERVED) throw new ProtocolError('LORA_BAD_FLAGS', `reserved flag bits set (${flags})`);
  const direction: LoraDirection = flags & FLAG_DOWNLINK ? 'downlink' : 'uplink';
  if (direction !== info.direction) throw new ProtocolError('LORA_BAD_TYPE', `${type} cannot travel ${direction}`);
  const listen = (flags & FLAG_LISTEN) !== 0;
  if (type === 'beacon' && listen) throw new ProtocolError('LORA_BAD_FLAGS', 'a beacon has no L flag');
  const seq = new DataView(frame.buffer, frame.byteOffset, frame.byteLength).getUint32(6);
  let headerLength = LORA_HEADER_BYTES;
  let fragment: LoraFragment | undefined;
  if (flags & FLAG_FRAGMENT) {
    if (info.protection !== 'aead') throw new ProtocolError('LORA_BAD_FRAGMENT', `${type} cannot be fragmented`);
    if (frame.length < LORA_HEADER_BYTES + 1) throw new ProtocolError('LORA_FRAME_TOO_SHORT', 'fragment byte missing');
    const f = frame[LORA_HEADER_BYTES]!;
    fragment = { index: f >>> 4, count: (f & 0x0f) + 1 };
    checkFragment(fragment);
    if (seq < fragment.index) throw new ProtocolError('LORA_BAD_FRAGMENT', 'fragment index exceeds its seq');
    if (seq - fragment.index + fragment.count - 1 > LORA_SEQ_MAX) {
      throw new ProtocolError('LORA_BAD_FRAGMENT', 'fragment set runs past the last seq');
    }
    headerLength += LORA_FRAGMENT_BYTES;
  }
  if (frame.length < headerLength + minBodyBytes(info.protection)) {
    throw new ProtocolError('LORA_FRAME_TOO_SHORT', `${type} frame of ${frame.length} bytes is too short`);
  }
  const header: LoraHeader = {
    type,
    direction,
    shortId: frame.slice(2, 6),
    seq,
    listen,
    ...(fragment ? { fragment } : {}),
  };
  return { header, headerBytes: frame.subarray(0, headerLength), body: frame.subarray(headerLength) };
}

/** The 12-byte AEAD nonce (§5.3): direction byte, three zero bytes, short id, seq (big-endian). */
export function loraNonce(direction: LoraDirection, shortId: Uint8Array, seq: number): Uint8Array {
  checkSeq(seq);
  const n = new Uint8Array(12);
  n[0] = direction === 'downlink' ? 1 : 0;
  n.set(shortId, 4);
  new DataView(n.buffer).setUint32(8, seq);
  return n;
}

function sessionKey(session: LoraSession, direction: LoraDirection): Uint8Array {
  const key = direction === 'uplink' ? session?.uplinkKey : session?.downlinkKey;
  if (!(key instanceof Uint8Array) || key.length !== LORA_KEY_BYTES) {
    throw new ProtocolError('LORA_KEY_INVALID', `${direction} key must be ${LORA_KEY_BYTES} bytes`);
  }
  return key;
}

export interface LoraFrameInput {
  readonly type: LoraFrameType;
  readonly seq: number;
  readonly listen?: boolean;
  readonly fragment?: LoraFragment;
}

/**
 * Seals one AEAD frame: header (for the session's short id) ‖ ChaCha20-Poly1305(payload) ‖ tag. The caller owns seq
 * uniqueness (§5.3). Throws LORA_BAD_TYPE for a type that is not AEAD-protected, LORA_FRAME_TOO_LONG when the frame
 * would exceed `maxFrameBytes` (default 508), LORA_PAYLOAD_MALFORMED for an empty payload.
 */
export function sealLoraFrame(
  session: LoraSession,
  input: LoraFrameInput,
  payload: Uint8Array,
  limits: LoraLimits = {},
): Uint8Array {
  const info = TYPES[input.type];
  if (info === undefined || info.protection !== 'aead') {
    throw new ProtocolError('LORA_BAD_TYPE', `${String(input.type)} frames are not sealed with the session keys`);
  }
  if (!(payload instanceof Uint8Array) || payload.length === 0) {
    throw new ProtocolError('LORA_PAYLOAD_MALFORMED', 'payload must be at least 1 byte');
  }
  const header: LoraHeader = {
    type: input.type,
    direction: info.direction,
    shortId: session.shortId,
    seq: input.seq,
    listen: input.listen ?? false,
    ...(input.fragment ? { fragment: input.fragment } : {}),
  };
  const ad = encodeLoraHeader(header);
  const maxFrameBytes = limits.maxFrameBytes ?? LORA_MAX_FRAME_BYTES;
  const total = ad.length + payload.length + LORA_TAG_BYTES;
  if (total > maxFrameBytes) {
    throw new ProtocolError('LORA_FRAME_TOO_LONG', `frame of ${total} bytes exceeds ${maxFrameBytes}`);
  }
  const cipher = createCipheriv(
    'chacha20-poly1305',
    sessionKey(session, info.direction),
    loraNonce(info.direction, header.shortId, header.seq),
    {
      authTagLength: LORA_TAG_BYTES,
    },
  );
  cipher.setAAD(ad, { plaintextLength: payload.length });
  const ct = concatBytes(cipher.update(payload), cipher.final());
  return concatBytes(ad, ct, cipher.getAuthTag());
}

export interface OpenedLoraFrame {
  readonly header: LoraHeader;
  /** The plaintext: a whole payload, or one fragment's chunk of it. */
  readonly payload: Uint8Array;
  /**
   * Names the session that authenticated the frame without revealing its keys (hex of 8 bytes of SHA-256 over both
   * keys); set by openLoraFrame. The reassembler joins fragments only within one session (§7.3), so a device whose
   * short id collides with another's cannot splice its chunks into the other's messages.
   */
  readonly sessionTag?: string;
}

/** The non-secret tag of a session: hex of SHA-256(label ‖ 0x00 ‖ uplink key ‖ downlink key)[0..8). */
export function loraSessionTag(session: LoraSession): string {
  return createHash('sha256')
    .update('outpost/lora-session-tag/v1\u0000')
    .update(session.uplinkKey)
    .update(session.downlinkKey)
    .digest('hex')
    .slice(0, 16);
}

export interface OpenOptions extends LoraLimits {
  /** The direction this receiver accepts: 'uplink' on the control plane, 'downlink' on a device (§8 step 5). */
  readonly expect: LoraDirection;
}

/**
 * Checks and decrypts one AEAD frame for `session` (§8). Does not apply replay protection: pass header.seq to the
 * replay window after this succeeds. Throws the header codes, LORA_BAD_TYPE (not an AEAD type),
 * LORA_WRONG_DIRECTION, LORA_SHORT_ID_MISMATCH, LORA_AUTH_FAILED (tampered, wrong key, wrong direction key).
 */
export function openLoraFrame(frame: Uint8Array, session: LoraSession, options: OpenOptions): OpenedLoraFrame {
  const { header, headerBytes, body } = decodeLoraHeader(frame, options);
  if (TYPES[header.type].protection !== 'aead') {
    throw new ProtocolError('LORA_BAD_TYPE', `${header.type} frames are not sealed with the session keys`);
  }
  if (header.direction !== options.expect) {
    throw new ProtocolError('LORA_WRONG_DIRECTION', `expected a ${options.expect} frame, got ${header.direction}`);
  }
  if (!(session?.shortId instanceof Uint8Array) || Buffer.compare(header.shortId, session.shortId) !== 0) {
    throw new ProtocolError('LORA_SHORT_ID_MISMATCH', 'frame is for another short id');
  }
  const key = sessionKey(session, header.direction);
  const ct = body.subarray(0, body.length - LORA_TAG_BYTES);
  const tag = body.subarray(body.length - LORA_TAG_BYTES);
  try {
    const decipher = createDecipheriv(
      'chacha20-poly1305',
      key,
      loraNonce(header.direction, header.shortId, header.seq),
      {
        authTagLength: LORA_TAG_BYTES,
      },
    );
    decipher.setAuthTag(tag);
    decipher.setAAD(headerBytes, { plaintextLength: ct.length });
    const payload = concatBytes(decipher.update(ct), decipher.final());
    return { header, payload, sessionTag: loraSessionTag(session) };
  } catch (cause) {
    throw new ProtocolError('LORA_AUTH_FAILED', 'frame failed authentication', { cause });
  }
}

/** Largest payload one unfragmented frame carries, and one fragment's chunk, under `maxFrameBytes`. */
export function loraPayloadCapacity(maxFrameBytes: number): { single: number; perFragment: number } {
  return {
    single: maxFrameBytes - LORA_OVERHEAD_BYTES,
    perFragment: maxFrameBytes - LORA_OVERHEAD_BYTES - LORA_FRAGMENT_BYTES,
  };
}

/** Frames (and so seqs) a payload of `payloadBytes` needs. Throws LORA_MESSAGE_TOO_LARGE above 16 fragments. */
export function loraFrameCount(payloadBytes: number, maxFrameBytes: number): number {
  const cap = loraPayloadCapacity(maxFrameBytes);
  if (!Number.isInteger(maxFrameBytes) || cap.perFragment < 1 || maxFrameBytes > LORA_MAX_FRAME_BYTES) {
    throw new ProtocolError('LORA_FRAME_TOO_LONG', `unusable maxFrameBytes ${maxFrameBytes}`);
  }
  if (payloadBytes <= cap.single) return 1;
  const n = Math.ceil(payloadBytes / cap.perFragment);
  if (n > LORA_MAX_FRAGMENTS) {
    throw new ProtocolError('LORA_MESSAGE_TOO_LARGE', `payload of ${payloadBytes} bytes needs ${n} fragments`, {
      details: { payloadBytes, maxPayloadBytes: LORA_MAX_FRAGMENTS * cap.perFragment },
    });
  }
  return n;
}

export interface LoraMessageInput {
  readonly type: LoraFrameType;
  /** Seq of the first frame; the message uses firstSeq .. firstSeq + loraFrameCount(...) − 1. */
  readonly firstSeq: number;
  readonly listen?: boolean;
}

/**
 * Seals a message as one frame, or as 2..16 fragments each sealed as its own frame with consecutive seqs (§7).
 * Every fragment but the last carries exactly `perFragment` bytes.
 */
export function sealLoraMessage(
  session: LoraSession,
  input: LoraMessageInput,
  payload: Uint8Array,
  limits: { readonly maxFrameBytes: number },
): Uint8Array[] {
  if (!(payload instanceof Uint8Array) || payload.length === 0) {
    throw new ProtocolError('LORA_PAYLOAD_MALFORMED', 'payload must be at least 1 byte');
  }
  const count = loraFrameCount(payload.length, limits.maxFrameBytes);
  checkSeq(input.firstSeq);
  checkSeq(input.firstSeq + count - 1);
  if (count === 1) {
    return [sealLoraFrame(session, { type: input.type, seq: input.firstSeq, listen: input.listen }, payload, limits)];
  }
  const chunk = loraPayloadCapacity(limits.maxFrameBytes).perFragment;
  const frames: Uint8Array[] = [];
  for (let index = 0; index < count; index++) {
    frames.push(
      sealLoraFrame(
        session,
        { type: input.type, seq: input.firstSeq + index, listen: input.listen, fragment: { index, count } },
        payload.subarray(index * chunk, (index + 1) * chunk),
        limits,
      ),
    );
  }
  return frames;
}
