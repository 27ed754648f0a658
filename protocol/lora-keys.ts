// LoRa session keys (docs/protocol/lora-frames.md §5): X25519 key pairs, and the uplink/downlink AEAD keys both ends
// derive from X25519(device, control plane) with HKDF-SHA256 bound to the tenant and the device's identity.

import { createPrivateKey, createPublicKey, diffieHellman, hkdfSync, randomBytes } from 'node:crypto';
import { concatBytes, utf8 } from './bytes.ts';
import { ed25519FromDidKey, shortIdOf } from './did-key.ts';
import { ProtocolError } from './errors.ts';

export const X25519_KEY_BYTES = 32;
/** Bytes of each AEAD key (ChaCha20-Poly1305). */
export const LORA_KEY_BYTES = 32;
/** HKDF salt and the first part of its info (§5.2). */
export const LORA_SESSION_LABEL = 'outpost/lora-session/v1';

// DER prefixes that wrap raw X25519 keys as PKCS#8 / SPKI (RFC 8410) for node:crypto.
const PKCS8_X25519 = Buffer.from('302e020100300506032b656e04220420', 'hex');
const SPKI_X25519 = Buffer.from('302a300506032b656e032100', 'hex');

function keyError(message: string, cause?: unknown): ProtocolError {
  return new ProtocolError('LORA_KEY_INVALID', message, cause === undefined ? {} : { cause });
}

function checkKeyBytes(key: unknown, what: string): asserts key is Uint8Array {
  if (!(key instanceof Uint8Array) || key.length !== X25519_KEY_BYTES) throw keyError(`${what} must be 32 bytes`);
}

export interface X25519KeyPair {
  /** 32-byte private scalar: the secret. Never logged, never leaves its machine. */
  readonly privateKey: Uint8Array;
  readonly publicKey: Uint8Array;
}

/** A public key, optionally with its private half (the side that derives holds exactly one private key). */
export interface X25519Key {
  readonly publicKey: Uint8Array;
  readonly privateKey?: Uint8Array;
}

function publicFromPrivate(privateKey: Uint8Array): Uint8Array {
  const priv = createPrivateKey({ key: Buffer.concat([PKCS8_X25519, privateKey]), format: 'der', type: 'pkcs8' });
  const spki = createPublicKey(priv).export({ format: 'der', type: 'spki' });
  return new Uint8Array(spki.subarray(SPKI_X25519.length));
}

/** Generates an X25519 key pair from the OS CSPRNG, or derives the public key of a given 32-byte private key. */
export function x25519KeyPair(privateKey: Uint8Array = randomBytes(X25519_KEY_BYTES)): X25519KeyPair {
  checkKeyBytes(privateKey, 'X25519 private key');
  return { privateKey: new Uint8Array(privateKey), publicKey: publicFromPrivate(privateKey) };
}

/** X25519(privateKey, publicKey). Throws LORA_KEY_INVALID for a low-order public key (all-zero shared secret). */
export function x25519SharedSecret(privateKey: Uint8Array, publicKey: Uint8Array): Uint8Array {
  checkKeyBytes(privateKey, 'X25519 private key');
  checkKeyBytes(publicKey, 'X25519 public key');
  let secret: Uint8Array;
  try {
    secret = new Uint8Array(
      diffieHellman({
        privateKey: createPrivateKey({ key: Buffer.concat([PKCS8_X25519, privateKey]), format: 'der', type: 'pkcs8' }),
        publicKey: createPublicKey({ key: Buffer.concat([SPKI_X25519, publicKey]), format: 'der', type: 'spki' }),
      }),
    );
  } catch (cause) {
    throw keyError('X25519 agreement failed (low-order or malformed public key)', cause);
  }
  // RFC 7748 §6.1: reject the all-zero output of a low-order point even if the library did not.
  if (secret.every((b) => b === 0)) throw keyError('X25519 shared secret is all zero');
  return secret;
}

/** The keys of one device's LoRa session, as both ends hold them. */
export interface LoraSession {
  /** The device's radio short id: first 4 bytes of SHA-256(device Ed25519 public key). */
  readonly shortId: Uint8Array;
  /** Seals device → control plane frames. */
  readonly uplinkKey: Uint8Array;
  /** Seals control plane → device frames. */
  readonly downlinkKey: Uint8Array;
}

export interface LoraSessionInput {
  /** The device's X25519 key: with `privateKey` on the device, public only on the control plane. */
  readonly deviceX25519: X25519Key;
  /** The control plane's X25519 key: with `privateKey` on the control plane, public only on the device. */
  readonly controlPlaneX25519: X25519Key;
  /** Tenant id (`tid`) the device is enrolled in. */
  readonly tid: string;
  /** The device's did:key (its Ed25519 identity); its short id is derived from it. */
  readonly deviceId: string;
}

function lengthPrefixed(s: string, what: string): Uint8Array {
  if (typeof s !== 'string') throw keyError(`${what} must be a string`);
  const b = utf8(s);
  if (b.length === 0 || b.length > 0xffff) throw keyError(`${what} must be 1..65535 bytes`);
  return concatBytes(new Uint8Array([b.length >>> 8, b.length & 0xff]), b);
}

/**
 * Derives a device's LoRa session keys (§5.2):
 *   ikm  = X25519(device, control plane)
 *   salt = UTF-8("outpost/lora-session/v1")
 *   info = salt || 0x00 || u16 len || tid || u16 len || deviceId || device X25519 pub || control-plane X25519 pub
 *   okm  = HKDF-SHA256(ikm, salt, info, 64); uplinkKey = okm[0..32], downlinkKey = okm[32..64]
 * Exactly one side's private key is used (the device's if present). Throws LORA_KEY_INVALID for missing or mismatched
 * keys, DID_MALFORMED/DID_UNSUPPORTED for a deviceId that is not an Ed25519 did:key.
 */
export function deriveLoraSessionKeys(input: LoraSessionInput): LoraSession {
  const { deviceX25519, controlPlaneX25519, tid, deviceId } = input;
  checkKeyBytes(deviceX25519?.publicKey, 'device X25519 public key');
  checkKeyBytes(controlPlaneX25519?.publicKey, 'control-plane X25519 public key');
  const own = deviceX25519.privateKey !== undefined ? deviceX25519 : controlPlaneX25519;
  const peer = own === deviceX25519 ? controlPlaneX25519 : deviceX25519;
  if (own.privateKey === undefined) throw keyError('one of the two X25519 keys must include its private key');
  checkKeyBytes(own.privateKey, 'X25519 private key');
  const ownPublic = publicFromPrivate(own.privateKey);
  if (Buffer.compare(ownPublic, own.publicKey) !== 0)
    throw keyError('X25519 private key does not match its public key');
  const shortId = shortIdOf(ed25519FromDidKey(deviceId));
  const ikm = x25519SharedSecret(own.privateKey, peer.publicKey);
  const salt = utf8(LORA_SESSION_LABEL);
  const info = concatBytes(
    salt,
    new Uint8Array([0]),
    lengthPrefixed(tid, 'tid'),
    lengthPrefixed(deviceId, 'deviceId'),
    deviceX25519.publicKey,
    controlPlaneX25519.publicKey,
  );
  const okm = new Uint8Array(hkdfSync('sha256', ikm, salt, info, 2 * LORA_KEY_BYTES));
  return { shortId, uplinkKey: okm.slice(0, LORA_KEY_BYTES), downlinkKey: okm.slice(LORA_KEY_BYTES) };
}
