// The control plane's private keys as 0600 files in `<state>/keys/` (store/key-file.ts: written atomically, refused
// when group- or world-readable), or systemd credentials of the same names: the identity key, the MAC secret, the
// LoRa X25519 key and one file per token signing key (two for hybrid keys).

import { createHmac, hkdfSync, randomBytes } from 'node:crypto';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { utf8 } from '../../protocol/bytes.ts';
import { ed25519Thumbprint } from '../../protocol/jwks.ts';
import { x25519KeyPair, x25519SharedSecret } from '../../protocol/lora-keys.ts';
import { ed25519KeyPair, hybridKeyPair, signEd25519 } from '../../protocol/signing.ts';
import { signRuntimeToken, type TokenSigningKey } from '../../protocol/tokens.ts';
import { writeFileAtomic } from '../../store/atomic-file.ts';
import { loadKey, loadOrCreateKeyFile } from '../../store/key-file.ts';
import { ControlPlaneError } from '../errors.ts';
import type { KeyVault } from '../ports.ts';

export interface FileKeyVaultOptions {
  /** `<state>/keys`. */
  readonly dir: string;
  /** Environment for systemd credentials ($CREDENTIALS_DIRECTORY). */
  readonly env: Readonly<Record<string, string | undefined>>;
  /** Create missing long-term keys (init does; run refuses to invent an identity). */
  readonly create: boolean;
}

export interface FileKeyVault extends KeyVault {
  /** The audit chain's MAC key (derived from the MAC secret). */
  readonly auditMacKey: Uint8Array;
}

function load(options: FileKeyVaultOptions, name: string): Uint8Array {
  try {
    return loadKey({
      credential: `outpost-cp-${name}`,
      filePath: join(options.dir, `${name}.key`),
      env: options.env,
      create: options.create,
    }).seed;
  } catch (cause) {
    throw new ControlPlaneError('KEYS_UNAVAILABLE', `cannot load the ${name} key: ${(cause as Error).message}`, {
      cause,
    });
  }
}

/** Opens (or with `create`, creates) the control plane's keys. Throws KEYS_UNAVAILABLE. */
export function openFileKeyVault(options: FileKeyVaultOptions): FileKeyVault {
  const identitySeed = load(options, 'identity');
  const macSecret = load(options, 'mac');
  const loraSeed = load(options, 'lora-x25519');
  const identity = ed25519KeyPair(identitySeed);
  const derive = (label: string) => new Uint8Array(hkdfSync('sha256', macSecret, new Uint8Array(0), utf8(label), 32));
  const challengeKey = derive('outpost/cp-challenge-mac/v1');
  const signingKeys = new Map<string, TokenSigningKey>();
  const tokenFile = (kid: string, half: 'ed25519' | 'mldsa') => join(options.dir, `token-${kid}.${half}.key`);

  function tokenKey(kid: string): TokenSigningKey {
    let key = signingKeys.get(kid);
    if (key) return key;
    if (!/^[A-Za-z0-9_-]{1,64}$/.test(kid)) throw new ControlPlaneError('KEYS_UNAVAILABLE', 'bad kid');
    const ed = loadOrCreateKeyFile(tokenFile(kid, 'ed25519'), { create: false }).seed;
    let mldsa: Uint8Array | undefined;
    try {
      mldsa = loadOrCreateKeyFile(tokenFile(kid, 'mldsa'), { create: false }).seed;
    } catch {
      mldsa = undefined; // a plain Ed25519 key has no ML-DSA half
    }
    key = { kid, ed25519Seed: ed, ...(mldsa ? { mldsaSeed: mldsa } : {}) };
    signingKeys.set(kid, key);
    return key;
  }

  return {
    auditMacKey: derive('outpost/cp-audit-mac/v1'),
    async generateTokenKey(hybrid) {
      const edSeed = new Uint8Array(randomBytes(32));
      const pair = hybrid ? hybridKeyPair(edSeed) : undefined;
      const publicKey = pair ? pair.publicKey : ed25519KeyPair(edSeed).publicKey;
      const kid = ed25519Thumbprint(publicKey.subarray(0, 32));
      writeFileAtomic(tokenFile(kid, 'ed25519'), edSeed, { mode: 0o600 });
      if (pair) writeFileAtomic(tokenFile(kid, 'mldsa'), pair.mldsaSeed, { mode: 0o600 });
      signingKeys.set(kid, { kid, ed25519Seed: edSeed, ...(pair ? { mldsaSeed: pair.mldsaSeed } : {}) });
      return { kid, publicKey };
    },
    signToken: (kid, claims) => signRuntimeToken(claims, tokenKey(kid)),
    async destroyTokenKey(kid) {
      signingKeys.delete(kid);
      for (const half of ['ed25519', 'mldsa'] as const) rmSync(tokenFile(kid, half), { force: true });
    },
    identity: {
      publicKey: identity.publicKey,
      sign: (context, message) => signEd25519(identitySeed, context, message),
    },
    mac: (context, message) =>
      new Uint8Array(
        createHmac('sha256', challengeKey)
          .update(utf8(context))
          .update(new Uint8Array([0]))
          .update(message)
          .digest(),
      ),
    lora: {
      publicKey: x25519KeyPair(loraSeed).publicKey,
      isAcceptablePeer: (publicKey) => {
        try {
          x25519SharedSecret(loraSeed, publicKey);
          return true;
        } catch {
          return false; // low order or malformed: no usable session key
        }
      },
    },
  };
}
