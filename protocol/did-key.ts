// did:key identifiers for Ed25519 public keys (W3C did:key v0.7: multibase 'z' + base58btc(0xed 0x01 || key)),
// and the short id a device uses on the radio.

import { createHash } from 'node:crypto';
import { fromBase58btc, toBase58btc } from './bytes.ts';
import { ProtocolError } from './errors.ts';
import { ED25519_PUBLIC_KEY_BYTES } from './signing.ts';

const ED25519_MULTICODEC = [0xed, 0x01];

/** `did:key:z6Mk…` for a 32-byte Ed25519 public key. */
export function didKeyFromEd25519(publicKey: Uint8Array): string {
  if (publicKey.length !== ED25519_PUBLIC_KEY_BYTES)
    throw new ProtocolError('SIG_BAD_KEY', 'Ed25519 public key must be 32 bytes');
  return `did:key:z${toBase58btc(new Uint8Array([...ED25519_MULTICODEC, ...publicKey]))}`;
}

/** The Ed25519 public key named by a did:key. Throws DID_MALFORMED or DID_UNSUPPORTED (other key types). */
export function ed25519FromDidKey(did: string): Uint8Array {
  if (typeof did !== 'string' || !did.startsWith('did:key:z') || did.length > 128) {
    throw new ProtocolError('DID_MALFORMED', 'not a base58btc did:key');
  }
  let raw: Uint8Array;
  try {
    raw = fromBase58btc(did.slice('did:key:z'.length));
  } catch (cause) {
    throw new ProtocolError('DID_MALFORMED', 'did:key is not valid base58btc', { cause });
  }
  if (raw.length < ED25519_MULTICODEC.length)
    throw new ProtocolError('DID_MALFORMED', 'did:key has no multicodec prefix');
  if (raw[0] !== ED25519_MULTICODEC[0] || raw[1] !== ED25519_MULTICODEC[1]) {
    throw new ProtocolError('DID_UNSUPPORTED', 'did:key names a key type other than Ed25519');
  }
  if (raw.length !== 2 + ED25519_PUBLIC_KEY_BYTES)
    throw new ProtocolError('DID_MALFORMED', 'did:key Ed25519 key has the wrong length');
  return raw.subarray(2);
}

/** Bytes in a radio short id (docs/protocol/lora-frames.md). */
export const SHORT_ID_BYTES = 4;

/** First `SHORT_ID_BYTES` bytes of SHA-256(public key): how a device is named on the air. */
export function shortIdOf(publicKey: Uint8Array): Uint8Array {
  return new Uint8Array(createHash('sha256').update(publicKey).digest().subarray(0, SHORT_ID_BYTES));
}
