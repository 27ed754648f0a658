// The device identity: an Ed25519 key made on first start (a 0600 file in the state directory, written
// atomically, or a systemd credential), named by its did:key. Keys derived from it (outbox sealing,
// audit MAC) inherit its protection. The seed never leaves this process and is never printed.

import { hkdfSync } from 'node:crypto';
import { toBase64Url, toHex } from '../protocol/bytes.ts';
import { didKeyFromEd25519, shortIdOf } from '../protocol/did-key.ts';
import { isOutpostError } from '../protocol/errors.ts';
import { ed25519KeyPair, signEd25519 } from '../protocol/signing.ts';
import type { AuditSigner } from '../store/audit.ts';
import { loadKey } from '../store/key-file.ts';
import type { IdentityView } from './api-types.ts';
import { AgentError } from './errors.ts';

/** Name of the systemd credential holding the identity seed (`LoadCredentialEncrypted=outpost-agent-identity`). */
export const IDENTITY_CREDENTIAL = 'outpost-agent-identity';

export interface Identity {
  readonly did: string;
  readonly publicKey: Uint8Array;
  /** 32-byte Ed25519 seed. Never log it. */
  readonly seed: Uint8Array;
  readonly source: 'credential' | 'file';
  /** True when this start generated the key. */
  readonly created: boolean;
}

/**
 * Loads the identity key, creating it when `create` and absent. Throws AgentError IDENTITY_UNUSABLE
 * (with the store's reason: permissions, size, missing) or DISK_FULL.
 */
export function loadIdentity(options: {
  keyFile: string;
  env: Readonly<Record<string, string | undefined>>;
  create: boolean;
}): Identity {
  try {
    const k = loadKey({
      credential: IDENTITY_CREDENTIAL,
      filePath: options.keyFile,
      env: options.env,
      create: options.create,
    });
    const pair = ed25519KeyPair(k.seed);
    return {
      did: didKeyFromEd25519(pair.publicKey),
      publicKey: pair.publicKey,
      seed: k.seed,
      source: k.source,
      created: k.created,
    };
  } catch (e) {
    if (isOutpostError(e, 'STORE_DISK_FULL'))
      throw new AgentError('DISK_FULL', 'no space to write the identity key', { cause: e });
    if (!isOutpostError(e)) throw e;
    throw new AgentError('IDENTITY_UNUSABLE', `identity key: ${e.message}`, {
      cause: e,
      details: { file: options.keyFile, store_code: e.code },
    });
  }
}

export function identityView(id: Pick<Identity, 'did' | 'publicKey'>): IdentityView {
  return { did: id.did, short_id: toHex(shortIdOf(id.publicKey)), public_key_b64url: toBase64Url(id.publicKey) };
}

function derive(seed: Uint8Array, info: string): Uint8Array {
  return new Uint8Array(hkdfSync('sha256', seed, 'outpost/agent', info, 32));
}

/** HMAC key of the audit chain. */
export function auditMacKey(id: Identity): Uint8Array {
  return derive(id.seed, 'outpost/agent-audit-mac/v1');
}

/** Signs audit checkpoints with the identity key, so anyone holding the did:key can check them. */
export function auditSigner(id: Identity): AuditSigner {
  return { keyId: id.did, sign: (context, message) => signEd25519(id.seed, context, message) };
}
