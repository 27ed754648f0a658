// Operator API keys and enroll tokens: their text forms, how they are hashed for storage, and constant-time
// checks. Only hashes are stored; the secret text is shown once, to whoever minted it.

import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { fromBase64Url, toBase64Url, toHex, utf8 } from '../protocol/bytes.ts';

/** `opk_<keyId>_<secret>`: keyId 12 bytes, secret 32 bytes, both base64url. */
const OPERATOR_KEY = /^opk_([A-Za-z0-9_-]{16})_([A-Za-z0-9_-]{43})$/;
/** `oet_<secret>`: 32 random bytes, base64url. */
const ENROLL_TOKEN = /^oet_[A-Za-z0-9_-]{43}$/;

function labelledHash(label: string, secret: Uint8Array): Uint8Array {
  return new Uint8Array(
    createHash('sha256')
      .update(utf8(label))
      .update(new Uint8Array([0]))
      .update(secret)
      .digest(),
  );
}

/** True when two byte strings are equal, in time independent of where they differ. */
export function constantTimeEqual(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}

export interface MintedOperatorKey {
  /** The full key text: shown once, written to a 0600 file, never stored. */
  readonly text: string;
  readonly keyId: string;
  readonly secretHash: Uint8Array;
}

/** A new operator API key. */
export function mintOperatorKey(
  random: (n: number) => Uint8Array = (n) => new Uint8Array(randomBytes(n)),
): MintedOperatorKey {
  const keyId = toBase64Url(random(12));
  const secret = random(32);
  return { text: `opk_${keyId}_${toBase64Url(secret)}`, keyId, secretHash: operatorSecretHash(secret) };
}

export function operatorSecretHash(secret: Uint8Array): Uint8Array {
  return labelledHash('outpost/operator-key/v1', secret);
}

/** Splits an operator key text into its id and secret hash; undefined when it is not one. */
export function parseOperatorKey(text: string): { keyId: string; secretHash: Uint8Array } | undefined {
  const m = OPERATOR_KEY.exec(text);
  if (!m) return undefined;
  try {
    return { keyId: m[1]!, secretHash: operatorSecretHash(fromBase64Url(m[2]!)) };
  } catch {
    return undefined; // non-canonical base64url: not a key this control plane minted
  }
}

/** True when `text` looks like an operator key (as opposed to a runtime token). */
export function isOperatorKeyText(text: string): boolean {
  return text.startsWith('opk_');
}

export interface MintedEnrollToken {
  readonly text: string;
  readonly tokenHash: Uint8Array;
  readonly tokenId: string;
}

/** A new single-use enroll token. */
export function mintEnrollToken(
  random: (n: number) => Uint8Array = (n) => new Uint8Array(randomBytes(n)),
): MintedEnrollToken {
  const text = `oet_${toBase64Url(random(32))}`;
  const tokenHash = enrollTokenHash(text);
  return { text, tokenHash, tokenId: enrollTokenId(tokenHash) };
}

/** Storage hash of an enroll token's text (labelled SHA-256 of the whole text). */
export function enrollTokenHash(text: string): Uint8Array {
  return labelledHash('outpost/enroll-token/v1', utf8(text));
}

/** The public name of an enroll token: the first 8 bytes of its storage hash, hex. */
export function enrollTokenId(tokenHash: Uint8Array): string {
  return toHex(tokenHash.subarray(0, 8));
}

export function isEnrollTokenText(text: unknown): text is string {
  return typeof text === 'string' && ENROLL_TOKEN.test(text);
}
