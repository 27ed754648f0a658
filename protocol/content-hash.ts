// Content hashes of JSON values: SHA-256 over RFC 8785 canonical bytes, base64url. Used for tool-call
// arguments (quorum.md §3) and manifests (envelope.md §6.4), so equal values hash equal whatever their spelling.

import { createHash } from 'node:crypto';
import { toBase64Url } from './bytes.ts';
import { canonicalBytes } from './canonical-json.ts';

/** base64url(SHA-256(canonicalBytes(value))): 43 characters. Throws CANON_* for values JSON cannot hold. */
export function canonicalSha256(value: unknown): string {
  return toBase64Url(createHash('sha256').update(canonicalBytes(value)).digest());
}
