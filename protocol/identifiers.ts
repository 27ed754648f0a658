// Wire identifiers shared by tokens, quorum tokens, telemetry and envelopes: tenant ids, device ids,
// tool names, fixed-length base64url fields. Each has one canonical spelling, so equal ids compare equal.

import { z } from 'zod';
import { fromBase64Url } from './bytes.ts';
import { ed25519FromDidKey } from './did-key.ts';
import { DOTTED_NAME, ToolName } from './manifest.ts';

/** Lowercase RFC 9562 UUID text (8-4-4-4-12 hex); the only accepted spelling of a tenant id. */
export const UUID_PATTERN = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

export const TenantId = z.string().regex(UUID_PATTERN, 'tenant id must be a lowercase UUID');
export type TenantId = z.infer<typeof TenantId>;

/** Longest did:key accepted; an Ed25519 did:key is 56 characters. */
export const MAX_DID_KEY_LENGTH = 64;

function isEd25519DidKey(s: string): boolean {
  try {
    ed25519FromDidKey(s);
    return true;
  } catch {
    return false; // any decoding failure means "not a device id"; the schema reports it
  }
}

/** A device (or gateway) id: the did:key of its Ed25519 public key. */
export const DeviceId = z
  .string()
  .max(MAX_DID_KEY_LENGTH)
  .regex(/^did:key:z6Mk[1-9A-HJ-NP-Za-km-z]+$/, 'device id must be an Ed25519 did:key')
  .refine(isEd25519DidKey, 'device id must be an Ed25519 did:key');
export type DeviceId = z.infer<typeof DeviceId>;

/** True when `s` is a syntactically valid Ed25519 did:key. */
export function isDeviceId(s: unknown): s is string {
  return DeviceId.safeParse(s).success;
}

/** Longest tool or stream name, in characters (manifest.md). */
export const MAX_TOOL_NAME_LENGTH = 64;

/** Tool and stream names, as in manifest.md: at least two lowercase dotted words (`valve.open`). */
export const TOOL_NAME_PATTERN = DOTTED_NAME;

/** A dotted prefix of names: one or more words (`valve`, `greenhouse.vent`). */
export const NAME_PREFIX_PATTERN = /^[a-z][a-z0-9_]*(?:\.[a-z][a-z0-9_]*)*$/;

/** The manifest's tool-name schema, so a name is valid in a token, a scope or a quorum token exactly when it is in a manifest. */
export { ToolName };

function isCanonicalBase64Url(s: string, bytes: number): boolean {
  try {
    return fromBase64Url(s).length === bytes;
  } catch {
    return false; // non-canonical or wrong alphabet: the schema reports it
  }
}

/** Unpadded canonical base64url of exactly `bytes` bytes. */
export function base64UrlBytes(bytes: number) {
  const length = Math.ceil((bytes * 4) / 3);
  return z
    .string()
    .length(length)
    .refine((s) => isCanonicalBase64Url(s, bytes), `must be canonical base64url of ${bytes} bytes`);
}

/** A non-negative safe integer (sequence numbers, millisecond timestamps). */
export const SafeUint = z.int().min(0).max(Number.MAX_SAFE_INTEGER);
