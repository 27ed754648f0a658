// The stored form of one frame heard from a radio: the frame bytes unchanged (the gateway cannot read or
// alter them) plus what the radio reported about it. Pure codec; the decoder is total over any bytes.
//
//   u8 version = 1 | u8 n | radio name (n bytes UTF-8, 1..64) | i16 rssi×4 | i16 snr×4 | u48 rx wall ms | frame
//   rssi/snr 0x8000 = not reported

import { LORA_MAX_FRAME_BYTES } from '../protocol/lora.ts';
import { GatewayError } from './errors.ts';

export const FRAME_RECORD_VERSION = 1;
const NOT_REPORTED = -0x8000;
const MAX_RADIO_NAME_BYTES = 64;
const MAX_U48 = 2 ** 48 - 1;

export interface FrameRecord {
  /** Name of the radio that heard it (config `radio.name`). */
  readonly radio: string;
  /** NaN when the radio did not report it. Stored to 0.25 dB. */
  readonly rssiDbm: number;
  readonly snrDb: number;
  /** Gateway wall clock when the driver read the packet. */
  readonly rxWallMs: number;
  readonly frame: Uint8Array;
}

function malformed(message: string): GatewayError {
  return new GatewayError('RECORD_MALFORMED', `stored frame record: ${message}`);
}

function quarter(v: number): number {
  if (!Number.isFinite(v)) return NOT_REPORTED;
  return Math.max(-0x7fff, Math.min(0x7fff, Math.round(v * 4)));
}

/** Encodes a record. Throws RECORD_MALFORMED for values that cannot be stored. */
export function encodeFrameRecord(r: FrameRecord): Uint8Array {
  const name = Buffer.from(r.radio, 'utf8');
  if (name.length < 1 || name.length > MAX_RADIO_NAME_BYTES) throw malformed('radio name must be 1..64 bytes');
  if (!(r.frame instanceof Uint8Array) || r.frame.length < 1 || r.frame.length > LORA_MAX_FRAME_BYTES) {
    throw malformed(`frame must be 1..${LORA_MAX_FRAME_BYTES} bytes`);
  }
  if (!Number.isSafeInteger(r.rxWallMs) || r.rxWallMs < 0 || r.rxWallMs > MAX_U48) throw malformed('bad rx time');
  const out = new Uint8Array(2 + name.length + 4 + 6 + r.frame.length);
  const view = new DataView(out.buffer);
  out[0] = FRAME_RECORD_VERSION;
  out[1] = name.length;
  out.set(name, 2);
  let at = 2 + name.length;
  view.setInt16(at, quarter(r.rssiDbm));
  view.setInt16(at + 2, quarter(r.snrDb));
  at += 4;
  view.setUint16(at, Math.floor(r.rxWallMs / 2 ** 32));
  view.setUint32(at + 2, r.rxWallMs >>> 0);
  at += 6;
  out.set(r.frame, at);
  return out;
}

/** Decodes a record. Throws RECORD_MALFORMED for anything else, never another error. */
export function decodeFrameRecord(bytes: Uint8Array): FrameRecord {
  if (!(bytes instanceof Uint8Array) || bytes.length < 2) throw malformed('too short');
  if (bytes[0] !== FRAME_RECORD_VERSION) throw malformed(`unknown version ${bytes[0]}`);
  const n = bytes[1]!;
  if (n < 1 || n > MAX_RADIO_NAME_BYTES) throw malformed('bad radio name length');
  const fixed = 2 + n + 10;
  if (bytes.length < fixed + 1) throw malformed('too short');
  if (bytes.length - fixed > LORA_MAX_FRAME_BYTES) throw malformed('frame too long');
  let radio: string;
  try {
    radio = new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(2, 2 + n));
  } catch (cause) {
    throw new GatewayError('RECORD_MALFORMED', 'stored frame record: radio name is not UTF-8', { cause });
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let at = 2 + n;
  const rssi = view.getInt16(at);
  const snr = view.getInt16(at + 2);
  at += 4;
  const rxWallMs = view.getUint16(at) * 2 ** 32 + view.getUint32(at + 2);
  at += 6;
  return {
    radio,
    rssiDbm: rssi === NOT_REPORTED ? Number.NaN : rssi / 4,
    snrDb: snr === NOT_REPORTED ? Number.NaN : snr / 4,
    rxWallMs,
    frame: Uint8Array.from(bytes.subarray(at)),
  };
}
