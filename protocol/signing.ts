// Domain-separated signatures: Ed25519, and hybrid Ed25519 + ML-DSA-65 where both halves must verify.
// Signing input = UTF-8(context label) || 0x00 || message bytes, so a signature made for one
// purpose can never be replayed as another (docs/protocol/canonical-signing.md §4).

import { createPrivateKey, createPublicKey, sign as nodeSign, verify as nodeVerify, randomBytes } from 'node:crypto';
import { ml_dsa65 } from '@noble/post-quantum/ml-dsa.js';
import { concatBytes, utf8 } from './bytes.ts';
import { ProtocolError } from './errors.ts';

export const ED25519_PUBLIC_KEY_BYTES = 32;
export const ED25519_SEED_BYTES = 32;
export const ED25519_SIGNATURE_BYTES = 64;
export const MLDSA65_PUBLIC_KEY_BYTES = 1952;
export const MLDSA65_SECRET_KEY_BYTES = 4032;
export const MLDSA65_SIGNATURE_BYTES = 3309;
export const MLDSA65_SEED_BYTES = 32;
export const HYBRID_PUBLIC_KEY_BYTES = ED25519_PUBLIC_KEY_BYTES + MLDSA65_PUBLIC_KEY_BYTES;
export const HYBRID_SIGNATURE_BYTES = ED25519_SIGNATURE_BYTES + MLDSA65_SIGNATURE_BYTES;

/** Context labels: `outpost/<purpose>/v<n>`, ASCII, no NUL. Each signed structure names its own. */
const CONTEXT = /^[\x21-\x7e]{1,128}$/;

/** Prefix the hybrid scheme adds to the context so an Ed25519 half cut out of a hybrid signature verifies nowhere. */
const HYBRID_PREFIX = 'hybrid+';

/** Returns UTF-8(context) || 0x00 || message. Throws SIG_BAD_CONTEXT for a malformed label. */
export function signingInput(context: string, message: Uint8Array): Uint8Array {
  if (!CONTEXT.test(context))
    throw new ProtocolError('SIG_BAD_CONTEXT', `bad signing context label ${JSON.stringify(context)}`);
  return concatBytes(utf8(context), new Uint8Array([0]), message);
}

// DER prefixes that wrap raw Ed25519 keys as PKCS#8 / SPKI (RFC 8410) for node:crypto.
const PKCS8_ED25519 = Buffer.from('302e020100300506032b657004220420', 'hex');
const SPKI_ED25519 = Buffer.from('302a300506032b6570032100', 'hex');

function checkLength(bytes: Uint8Array, n: number, what: string): void {
  if (!(bytes instanceof Uint8Array) || bytes.length !== n) {
    throw new ProtocolError('SIG_BAD_KEY', `${what} must be ${n} bytes`, { details: { length: bytes?.length } });
  }
}

export interface Ed25519KeyPair {
  /** 32-byte seed: the secret. Never logged, never leaves its machine. */
  readonly seed: Uint8Array;
  readonly publicKey: Uint8Array;
}

/** Generates a key pair from the OS CSPRNG, or derives one from a 32-byte seed (test vectors). */
export function ed25519KeyPair(seed: Uint8Array = randomBytes(ED25519_SEED_BYTES)): Ed25519KeyPair {
  checkLength(seed, ED25519_SEED_BYTES, 'Ed25519 seed');
  const priv = createPrivateKey({ key: Buffer.concat([PKCS8_ED25519, seed]), format: 'der', type: 'pkcs8' });
  const spki = createPublicKey(priv).export({ format: 'der', type: 'spki' });
  return { seed: new Uint8Array(seed), publicKey: new Uint8Array(spki.subarray(SPKI_ED25519.length)) };
}

/** Ed25519 signature (64 bytes) over signingInput(context, message). */
export function signEd25519(seed: Uint8Array, context: string, message: Uint8Array): Uint8Array {
  checkLength(seed, ED25519_SEED_BYTES, 'Ed25519 seed');
  const priv = createPrivateKey({ key: Buffer.concat([PKCS8_ED25519, seed]), format: 'der', type: 'pkcs8' });
  return new Uint8Array(nodeSign(null, signingInput(context, message), priv));
}

// The small-order points of edwards25519 as encoded keys, sign bit cleared: y = 0, 1, the two order-8 ys, p − 1,
// and the non-canonical p and p + 1 (the blocklist libsodium applies). OpenSSL verifies against them, and with the
// identity as key the signature (R = identity, S = 0) is valid for every message.
const SMALL_ORDER_ENCODINGS = [
  '0000000000000000000000000000000000000000000000000000000000000000',
  '0100000000000000000000000000000000000000000000000000000000000000',
  '26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05',
  'c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a',
  'ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f',
  'edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f',
  'eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f',
].map((hex) => Buffer.from(hex, 'hex'));

/** True when a 32-byte Ed25519 public key encodes a point of small order: such a key can verify forgeries. */
export function isSmallOrderEd25519(publicKey: Uint8Array): boolean {
  if (!(publicKey instanceof Uint8Array) || publicKey.length !== ED25519_PUBLIC_KEY_BYTES) return false;
  const y = Buffer.from(publicKey);
  y[31]! &= 0x7f;
  return SMALL_ORDER_ENCODINGS.some((b) => b.equals(y));
}

/**
 * True iff `signature` is a valid Ed25519 signature by `publicKey` over signingInput(context, message). A key of small
 * order verifies nothing (canonical-signing.md §6).
 */
export function verifyEd25519(
  publicKey: Uint8Array,
  context: string,
  message: Uint8Array,
  signature: Uint8Array,
): boolean {
  if (!(publicKey instanceof Uint8Array) || publicKey.length !== ED25519_PUBLIC_KEY_BYTES) return false;
  if (!(signature instanceof Uint8Array) || signature.length !== ED25519_SIGNATURE_BYTES) return false;
  if (isSmallOrderEd25519(publicKey)) return false;
  let pub: ReturnType<typeof createPublicKey>;
  try {
    pub = createPublicKey({ key: Buffer.concat([SPKI_ED25519, publicKey]), format: 'der', type: 'spki' });
  } catch {
    return false; // not a point on the curve: no signature can verify against it
  }
  return nodeVerify(null, signingInput(context, message), pub, signature);
}

export interface HybridKeyPair {
  /** 32-byte Ed25519 seed and 32-byte ML-DSA-65 seed: the secrets. */
  readonly ed25519Seed: Uint8Array;
  readonly mldsaSeed: Uint8Array;
  /** Ed25519 public key (32 B) || ML-DSA-65 public key (1952 B). */
  readonly publicKey: Uint8Array;
}

/** Generates (or derives from two 32-byte seeds) a hybrid Ed25519 + ML-DSA-65 key pair. */
export function hybridKeyPair(
  ed25519Seed: Uint8Array = randomBytes(ED25519_SEED_BYTES),
  mldsaSeed: Uint8Array = randomBytes(MLDSA65_SEED_BYTES),
): HybridKeyPair {
  checkLength(mldsaSeed, MLDSA65_SEED_BYTES, 'ML-DSA-65 seed');
  const ed = ed25519KeyPair(ed25519Seed);
  const ml = ml_dsa65.keygen(mldsaSeed);
  return {
    ed25519Seed: ed.seed,
    mldsaSeed: new Uint8Array(mldsaSeed),
    publicKey: concatBytes(ed.publicKey, ml.publicKey),
  };
}

/**
 * Hybrid signature = Ed25519 sig (64 B) || ML-DSA-65 sig (3309 B), both over
 * signingInput('hybrid+' + context, message); ML-DSA-65 signs deterministically (FIPS 204 §3.4 "hedged" off)
 * so vectors are reproducible.
 */
export function signHybrid(key: HybridKeyPair, context: string, message: Uint8Array): Uint8Array {
  const ctx = HYBRID_PREFIX + context;
  const input = signingInput(ctx, message);
  const ed = signEd25519(key.ed25519Seed, ctx, message);
  const { secretKey } = ml_dsa65.keygen(key.mldsaSeed);
  const ml = ml_dsa65.sign(input, secretKey, { extraEntropy: false });
  return concatBytes(ed, ml);
}

/** True iff both halves verify. A missing, truncated or swapped half fails. */
export function verifyHybrid(
  publicKey: Uint8Array,
  context: string,
  message: Uint8Array,
  signature: Uint8Array,
): boolean {
  if (!(publicKey instanceof Uint8Array) || publicKey.length !== HYBRID_PUBLIC_KEY_BYTES) return false;
  if (!(signature instanceof Uint8Array) || signature.length !== HYBRID_SIGNATURE_BYTES) return false;
  const ctx = HYBRID_PREFIX + context;
  if (!verifyEd25519(publicKey.subarray(0, 32), ctx, message, signature.subarray(0, 64))) return false;
  try {
    return ml_dsa65.verify(signature.subarray(64), signingInput(ctx, message), publicKey.subarray(32));
  } catch {
    return false; // malformed ML-DSA encoding: treated as a failed verification
  }
}
