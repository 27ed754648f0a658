// What a device signs to prove it holds its key: at enrollment (bound to the enroll token and the manifest) and
// when it asks for a fresh runtime token (bound to a stateless challenge). Signer (agent, gateway) and verifier
// (control plane) share this one definition so the bytes cannot drift apart. docs/controlplane.md §Enrollment;
// vectors: docs/protocol/vectors/canonical-signing/enroll-proof.json.

import { createHash } from 'node:crypto';
import { toBase64Url, utf8 } from './bytes.ts';
import { canonicalBytes } from './canonical-json.ts';
import { ed25519FromDidKey } from './did-key.ts';
import { signEd25519, verifyEd25519 } from './signing.ts';

/** Context label of the enrollment proof (canonical-signing.md §12). */
export const ENROLL_PROOF_CONTEXT = 'outpost/enroll-proof/v1';
/** Context label of a device's request for a fresh runtime token (canonical-signing.md §12). */
export const DEVICE_TOKEN_PROOF_CONTEXT = 'outpost/device-token-request/v1';

export interface EnrollProofInput {
  /** The device's did:key. */
  readonly device: string;
  /** The enroll token's text (only its SHA-256 is signed). */
  readonly token: string;
  readonly manifestHash: string;
  /** base64url X25519 public key, or undefined when the device sends none. */
  readonly x25519PublicKey?: string | undefined;
}

/** base64url(SHA-256(UTF-8 token text)): the proof binds the token without the token itself being signed. */
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
    // Always present (null when absent) so that "no key" is signed too and a key cannot be added in transit.
    x25519PublicKey: input.x25519PublicKey ?? null,
  });
}

/** The message of a token request: canonical bytes of `{"challenge","device","v":1}`. */
export function deviceTokenProofMessage(device: string, challenge: string): Uint8Array {
  return canonicalBytes({ v: 1, device, challenge });
}

/** The enrollment proof (64-byte Ed25519 signature) by the device key `seed`. */
export function signEnrollProof(seed: Uint8Array, input: EnrollProofInput): Uint8Array {
  return signEd25519(seed, ENROLL_PROOF_CONTEXT, enrollProofMessage(input));
}

/** The token-request proof (64-byte Ed25519 signature) by the device key `seed` over `challenge`. */
export function signDeviceTokenProof(seed: Uint8Array, device: string, challenge: string): Uint8Array {
  return signEd25519(seed, DEVICE_TOKEN_PROOF_CONTEXT, deviceTokenProofMessage(device, challenge));
}

// The key is taken from the device id the message names, never supplied separately: a proof can then only ever
// speak for the identity it enrolls or renews.
function deviceKey(device: string): Uint8Array | undefined {
  try {
    return ed25519FromDidKey(device);
  } catch {
    return undefined; // not an Ed25519 did:key: no proof can verify for it
  }
}

/** True iff `proof` is the enrollment proof of `input` by the key of `input.device`. */
export function verifyEnrollProof(input: EnrollProofInput, proof: Uint8Array): boolean {
  const key = deviceKey(input.device);
  return key !== undefined && verifyEd25519(key, ENROLL_PROOF_CONTEXT, enrollProofMessage(input), proof);
}

/** True iff `proof` is a token-request proof over `challenge` by the key of `device`. */
export function verifyDeviceTokenProof(device: string, challenge: string, proof: Uint8Array): boolean {
  const key = deviceKey(device);
  return (
    key !== undefined &&
    verifyEd25519(key, DEVICE_TOKEN_PROOF_CONTEXT, deviceTokenProofMessage(device, challenge), proof)
  );
}
