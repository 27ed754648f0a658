// What a device signs to prove it holds its key: at enrollment (bound to the enroll token and the manifest) and
// when it asks for a fresh runtime token (bound to a stateless challenge). docs/controlplane.md §Enrollment.

import { createHash } from 'node:crypto';
import { toBase64Url, utf8 } from '../protocol/bytes.ts';
import { canonicalBytes } from '../protocol/canonical-json.ts';

/** Context label of the enrollment proof (canonical-signing.md signing input). */
export const ENROLL_PROOF_CONTEXT = 'outpost/enroll-proof/v1';
/** Context label of a device's request for a fresh runtime token. */
export const DEVICE_TOKEN_PROOF_CONTEXT = 'outpost/device-token-request/v1';

export interface EnrollProofInput {
  /** The device's did:key. */
  readonly device: string;
  /** The enroll token's text (only its SHA-256 is signed). */
  readonly token: string;
  readonly manifestHash: string;
  /** base64url X25519 public key, or undefined when the device sends none. */
  readonly x25519PublicKey?: string;
}

/** base64url(SHA-256(UTF-8 token text)). */
export function enrollTokenDigest(token: string): string {
  return toBase64Url(createHash('sha256').update(utf8(token)).digest());
}

/**
 * The message of the enrollment proof: canonical bytes of
 * `{"device","manifestHash","tokenDigest","v":1,"x25519PublicKey":string|null}`.
 */
export function enrollProofMessage(input: EnrollProofInput): Uint8Array {
  return canonicalBytes({
    v: 1,
    device: input.device,
    tokenDigest: enrollTokenDigest(input.token),
    manifestHash: input.manifestHash,
    x25519PublicKey: input.x25519PublicKey ?? null,
  });
}

/** The message of a token request: canonical bytes of `{"challenge","device","v":1}`. */
export function deviceTokenProofMessage(device: string, challenge: string): Uint8Array {
  return canonicalBytes({ v: 1, device, challenge });
}
