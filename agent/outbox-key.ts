// The outbox's sealing key, derived from the device identity (HKDF-SHA-256), so queued telemetry at rest
// is bound to this device's key and inherits its protection (a systemd credential or a 0600 file).

import { hkdfSync } from 'node:crypto';

/** HKDF info label; a new label gives an unrelated key, so bump the version to rotate. */
export const OUTBOX_KEY_INFO = 'outpost/agent-outbox-key/v1';
export const OUTBOX_KEY_SALT = 'outpost/agent';

/** 32-byte outbox key from the device's 32-byte Ed25519 seed. Deterministic: the same identity reopens its queue. */
export function deriveOutboxKey(identitySeed: Uint8Array): Uint8Array {
  if (identitySeed.length !== 32) throw new RangeError('identity seed must be 32 bytes');
  return new Uint8Array(hkdfSync('sha256', identitySeed, OUTBOX_KEY_SALT, OUTBOX_KEY_INFO, 32));
}
