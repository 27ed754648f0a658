// Enrollment over LoRa for a device that never had IP (docs/protocol/lora-frames.md §4.10): the request proves
// possession of the device key (Ed25519) and knowledge of the enroll token (HMAC, the token itself never on air); the
// response, keyed by the same token, hands over the control plane's X25519 key and the tenant id.

import { createHash, createHmac, hkdfSync, timingSafeEqual } from 'node:crypto';
import { concatBytes, utf8 } from './bytes.ts';
import { didKeyFromEd25519, shortIdOf } from './did-key.ts';
import { ProtocolError } from './errors.ts';
import { decodeLoraHeader, encodeLoraHeader, type LoraHeader } from './lora-frame.ts';
import { X25519_KEY_BYTES } from './lora-keys.ts';
import { ByteReader, ByteWriter, readCompactString, writeCompactString } from './lora-wire.ts';
import { type Ed25519KeyPair, signEd25519, verifyEd25519 } from './signing.ts';

export const ENROLL_TOKEN_ID_BYTES = 8;
export const ENROLL_MAC_BYTES = 16;
export const MANIFEST_HASH_BYTES = 32;
const ENROLL_REQUEST_BODY_BYTES = 32 + 32 + ENROLL_TOKEN_ID_BYTES + MANIFEST_HASH_BYTES + ENROLL_MAC_BYTES + 64;
const TOKEN_LABEL = 'outpost/lora-enroll/v1';
const REQUEST_LABEL = 'outpost/lora-enroll-request/v1';
const RESPONSE_LABEL = 'outpost/lora-enroll-response/v1';

export type EnrollStatus = 'accepted' | 'manifest-unknown' | 'refused';
const STATUS_CODES: readonly EnrollStatus[] = ['accepted', 'manifest-unknown', 'refused'];

function invalid(message: string, cause?: unknown): ProtocolError {
  return new ProtocolError('LORA_ENROLL_INVALID', message, cause === undefined ? {} : { cause });
}

/** What both ends derive from an enroll token (§4.10.1): an 8-byte public lookup id and a 32-byte MAC key. */
export function loraEnrollTokenKeys(token: string): { tokenId: Uint8Array; macKey: Uint8Array } {
  if (typeof token !== 'string' || token.length === 0) {
    throw new ProtocolError('LORA_VALUE_UNSUPPORTED', 'enroll token must be a non-empty string');
  }
  const ikm = utf8(token);
  const salt = utf8(TOKEN_LABEL);
  return {
    tokenId: new Uint8Array(hkdfSync('sha256', ikm, salt, utf8('token-id'), ENROLL_TOKEN_ID_BYTES)),
    macKey: new Uint8Array(hkdfSync('sha256', ikm, salt, utf8('token-mac'), 32)),
  };
}

function mac(macKey: Uint8Array, label: string, message: Uint8Array): Uint8Array {
  const h = createHmac('sha256', macKey)
    .update(utf8(label))
    .update(new Uint8Array([0]))
    .update(message)
    .digest();
  return new Uint8Array(h.subarray(0, ENROLL_MAC_BYTES));
}

function macEqual(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}

function checkBytes(b: unknown, n: number, what: string): asserts b is Uint8Array {
  if (!(b instanceof Uint8Array) || b.length !== n) {
    throw new ProtocolError('LORA_VALUE_UNSUPPORTED', `${what} must be ${n} bytes`);
  }
}

export interface EnrollRequestInput {
  /** The device's Ed25519 identity key pair. */
  readonly device: Ed25519KeyPair;
  readonly deviceX25519Public: Uint8Array;
  /** The enroll token as minted; it never goes on air. */
  readonly token: string;
  /** SHA-256 of the device's canonical manifest (the control plane must already know the manifest, §4.10.4). */
  readonly manifestHash: Uint8Array;
  /** From the device's uplink counter. */
  readonly seq: number;
  readonly listen?: boolean;
}

/** Builds an ENROLL_REQUEST frame (194 bytes). */
export function sealEnrollRequest(input: EnrollRequestInput): Uint8Array {
  checkBytes(input.deviceX25519Public, X25519_KEY_BYTES, 'device X25519 public key');
  checkBytes(input.manifestHash, MANIFEST_HASH_BYTES, 'manifest hash');
  const header = encodeLoraHeader({
    type: 'enroll.request',
    direction: 'uplink',
    shortId: shortIdOf(input.device.publicKey),
    seq: input.seq,
    listen: input.listen ?? false,
  });
  const { tokenId, macKey } = loraEnrollTokenKeys(input.token);
  const signed = concatBytes(header, input.device.publicKey, input.deviceX25519Public, tokenId, input.manifestHash);
  const tag = mac(macKey, REQUEST_LABEL, signed);
  const sig = signEd25519(input.device.seed, REQUEST_LABEL, concatBytes(signed, tag));
  return concatBytes(signed, tag, sig);
}

export interface EnrollRequest {
  readonly header: LoraHeader;
  readonly deviceEd25519: Uint8Array;
  /** did:key of deviceEd25519. */
  readonly deviceId: string;
  readonly deviceX25519: Uint8Array;
  readonly tokenId: Uint8Array;
  readonly manifestHash: Uint8Array;
}

/**
 * Checks what anyone can check without the token (§4.10.2): layout, short id = shortIdOf(device key), and the
 * device's signature. A gateway uses this to drop junk enroll frames. Throws header codes, LORA_BAD_TYPE,
 * LORA_PAYLOAD_MALFORMED, LORA_SHORT_ID_MISMATCH, LORA_ENROLL_INVALID.
 */
export function checkEnrollRequest(frame: Uint8Array): EnrollRequest {
  const { header, body } = decodeLoraHeader(frame);
  if (header.type !== 'enroll.request')
    throw new ProtocolError('LORA_BAD_TYPE', `expected enroll.request, got ${header.type}`);
  if (body.length !== ENROLL_REQUEST_BODY_BYTES) {
    throw new ProtocolError('LORA_PAYLOAD_MALFORMED', `enroll.request body must be ${ENROLL_REQUEST_BODY_BYTES} bytes`);
  }
  const r = new ByteReader(body);
  const deviceEd25519 = r.bytes(32).slice();
  const deviceX25519 = r.bytes(32).slice();
  const tokenId = r.bytes(ENROLL_TOKEN_ID_BYTES).slice();
  const manifestHash = r.bytes(MANIFEST_HASH_BYTES).slice();
  if (Buffer.compare(shortIdOf(deviceEd25519), header.shortId) !== 0) {
    throw new ProtocolError('LORA_SHORT_ID_MISMATCH', 'enroll.request short id is not that of its key');
  }
  const signedLength = frame.length - 64;
  if (!verifyEd25519(deviceEd25519, REQUEST_LABEL, frame.subarray(0, signedLength), frame.subarray(signedLength))) {
    throw invalid('enroll.request signature does not verify');
  }
  return { header, deviceEd25519, deviceId: didKeyFromEd25519(deviceEd25519), deviceX25519, tokenId, manifestHash };
}

/**
 * The control plane's check (§4.10.3): checkEnrollRequest, then the token MAC. `tokenFor` maps a token id to the
 * outstanding token it belongs to. Throws as checkEnrollRequest, plus LORA_ENROLL_UNKNOWN_TOKEN and
 * LORA_ENROLL_INVALID (MAC).
 */
export function openEnrollRequest(
  frame: Uint8Array,
  tokenFor: (tokenId: Uint8Array) => string | undefined,
): EnrollRequest & { readonly token: string } {
  const req = checkEnrollRequest(frame);
  const token = tokenFor(req.tokenId);
  if (token === undefined)
    throw new ProtocolError('LORA_ENROLL_UNKNOWN_TOKEN', 'no outstanding enroll token has this id');
  const { tokenId, macKey } = loraEnrollTokenKeys(token);
  if (!macEqual(tokenId, req.tokenId)) throw new ProtocolError('LORA_ENROLL_UNKNOWN_TOKEN', 'token id mismatch');
  const macAt = frame.length - 64 - ENROLL_MAC_BYTES;
  if (
    !macEqual(mac(macKey, REQUEST_LABEL, frame.subarray(0, macAt)), frame.subarray(macAt, macAt + ENROLL_MAC_BYTES))
  ) {
    throw invalid('enroll.request token MAC does not verify');
  }
  return { ...req, token };
}

export interface EnrollResponseInput {
  /** The ENROLL_REQUEST frame being answered, byte for byte. */
  readonly request: Uint8Array;
  readonly token: string;
  /** From the control plane's downlink counter for this device. */
  readonly seq: number;
  readonly listen?: boolean;
  readonly status: EnrollStatus;
  /** Required when accepted. */
  readonly controlPlaneX25519Public?: Uint8Array;
  /** Required when accepted. */
  readonly tid?: string;
}

/** Builds an ENROLL_RESPONSE frame bound to the request it answers. */
export function sealEnrollResponse(input: EnrollResponseInput): Uint8Array {
  const { header: reqHeader } = decodeLoraHeader(input.request);
  const status = STATUS_CODES.indexOf(input.status);
  if (status < 0) throw new ProtocolError('LORA_VALUE_UNSUPPORTED', `unknown enroll status ${String(input.status)}`);
  const w = new ByteWriter();
  w.bytes(
    encodeLoraHeader({
      type: 'enroll.response',
      direction: 'downlink',
      shortId: reqHeader.shortId,
      seq: input.seq,
      listen: input.listen ?? false,
    }),
  );
  w.u8(status);
  if (input.status === 'accepted') {
    checkBytes(input.controlPlaneX25519Public, X25519_KEY_BYTES, 'control-plane X25519 public key');
    if (typeof input.tid !== 'string') throw new ProtocolError('LORA_VALUE_UNSUPPORTED', 'accepted needs a tid');
    w.bytes(input.controlPlaneX25519Public);
    writeCompactString(w, input.tid);
  }
  const unsigned = w.finish();
  const requestDigest = new Uint8Array(createHash('sha256').update(input.request).digest());
  const tag = mac(loraEnrollTokenKeys(input.token).macKey, RESPONSE_LABEL, concatBytes(requestDigest, unsigned));
  return concatBytes(unsigned, tag);
}

export interface EnrollResponse {
  readonly header: LoraHeader;
  readonly status: EnrollStatus;
  readonly controlPlaneX25519?: Uint8Array;
  readonly tid?: string;
}

/**
 * The device's check of an ENROLL_RESPONSE against the request it sent and its token. Throws header codes,
 * LORA_BAD_TYPE, LORA_SHORT_ID_MISMATCH, LORA_PAYLOAD_MALFORMED, LORA_ENROLL_INVALID (MAC: forged, or for
 * another request).
 */
export function openEnrollResponse(frame: Uint8Array, options: { request: Uint8Array; token: string }): EnrollResponse {
  const { header, body } = decodeLoraHeader(frame);
  if (header.type !== 'enroll.response') {
    throw new ProtocolError('LORA_BAD_TYPE', `expected enroll.response, got ${header.type}`);
  }
  const { header: reqHeader } = decodeLoraHeader(options.request);
  if (Buffer.compare(header.shortId, reqHeader.shortId) !== 0) {
    throw new ProtocolError('LORA_SHORT_ID_MISMATCH', 'enroll.response is for another device');
  }
  if (body.length < 1 + ENROLL_MAC_BYTES) throw new ProtocolError('LORA_FRAME_TOO_SHORT', 'enroll.response too short');
  const macAt = frame.length - ENROLL_MAC_BYTES;
  const requestDigest = new Uint8Array(createHash('sha256').update(options.request).digest());
  const expected = mac(
    loraEnrollTokenKeys(options.token).macKey,
    RESPONSE_LABEL,
    concatBytes(requestDigest, frame.subarray(0, macAt)),
  );
  if (!macEqual(expected, frame.subarray(macAt))) throw invalid('enroll.response MAC does not verify');
  const r = new ByteReader(body.subarray(0, body.length - ENROLL_MAC_BYTES));
  const status = STATUS_CODES[r.u8()];
  if (status === undefined) throw new ProtocolError('LORA_PAYLOAD_MALFORMED', 'enroll.response: unknown status');
  if (status !== 'accepted') {
    r.end('enroll.response');
    return { header, status };
  }
  const controlPlaneX25519 = r.bytes(X25519_KEY_BYTES).slice();
  const tid = readCompactString(r, 'tid');
  r.end('enroll.response');
  return { header, status, controlPlaneX25519, tid };
}
