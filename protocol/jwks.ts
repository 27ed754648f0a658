// Token signing keys as published (JWK Set, RFC 7517, with a `status` and an optional ML-DSA-65 half)
// and the pure rotation planner active → overlap → retired (docs/protocol/tokens.md §4).

import { createHash } from 'node:crypto';
import { z } from 'zod';
import { toBase64Url } from './bytes.ts';
import { canonicalize, parseJson } from './canonical-json.ts';
import { ProtocolError } from './errors.ts';
import { base64UrlBytes } from './identifiers.ts';
import { ED25519_PUBLIC_KEY_BYTES, HYBRID_PUBLIC_KEY_BYTES, MLDSA65_PUBLIC_KEY_BYTES } from './signing.ts';

/** Key lifecycle (tokens.md §4.1). Only `active` signs; `overlap` still verifies; `retired` verifies nothing. */
export const KEY_STATES = ['active', 'overlap', 'retired'] as const;
export type KeyState = (typeof KEY_STATES)[number];

/** The shortest permitted overlap window (tokens.md §4.2): 900 s. */
export const MIN_OVERLAP_MS = 900_000;
/** Most keys a published set may hold. */
export const MAX_JWKS_KEYS = 16;
/** Largest JWK Set document accepted, in bytes (a hybrid key is about 2.7 kB). */
export const MAX_JWKS_BYTES = 65_536;

/** `kid`: 1..64 characters of the base64url alphabet (an RFC 7638 thumbprint is 43). */
export const Kid = z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, 'bad kid');

/** The ML-DSA-65 half of a hybrid key, shaped as an AKP JWK (draft-ietf-cose-dilithium). */
export const PqJwk = z.strictObject({
  kty: z.literal('AKP'),
  alg: z.literal('ML-DSA-65'),
  pub: base64UrlBytes(MLDSA65_PUBLIC_KEY_BYTES),
});

/** One published verification key. Standard members plus `status` and, for hybrid keys, `pq`. */
export const PublishedJwk = z.strictObject({
  kty: z.literal('OKP'),
  crv: z.literal('Ed25519'),
  x: base64UrlBytes(ED25519_PUBLIC_KEY_BYTES),
  kid: Kid,
  alg: z.literal('EdDSA'),
  use: z.literal('sig'),
  status: z.enum(KEY_STATES),
  pq: PqJwk.optional(),
});
export type PublishedJwk = z.infer<typeof PublishedJwk>;

export const JwkSet = z.strictObject({ keys: z.array(PublishedJwk).max(MAX_JWKS_KEYS) }).superRefine((set, ctx) => {
  const kids = set.keys.map((k) => k.kid);
  if (new Set(kids).size !== kids.length) ctx.addIssue({ code: 'custom', message: 'duplicate kid' });
  // A hybrid key's Ed25519 half published again as a plain key would let an Ed25519 forgery through.
  if (new Set(set.keys.map((k) => k.x)).size !== set.keys.length) {
    ctx.addIssue({ code: 'custom', message: 'one Ed25519 key under two kids' });
  }
  if (set.keys.filter((k) => k.status === 'active').length > 1) {
    ctx.addIssue({ code: 'custom', message: 'more than one active key' });
  }
});
export type JwkSet = z.infer<typeof JwkSet>;

/** Validates a JWK Set value (already parsed JSON). Throws JWKS_MALFORMED. */
export function decodeJwks(value: unknown): JwkSet {
  const r = JwkSet.safeParse(value);
  if (!r.success) {
    throw new ProtocolError('JWKS_MALFORMED', `JWK Set: ${r.error.issues[0]?.message ?? 'invalid'}`, {
      details: { path: r.error.issues[0]?.path.join('.') },
    });
  }
  return r.data;
}

/** Parses and validates JWK Set text. Throws JWKS_MALFORMED (JSON errors are wrapped). */
export function parseJwks(text: string, maxBytes = MAX_JWKS_BYTES): JwkSet {
  let value: unknown;
  try {
    value = parseJson(text, maxBytes);
  } catch (cause) {
    throw new ProtocolError('JWKS_MALFORMED', 'JWK Set is not bounded JSON', { cause });
  }
  return decodeJwks(value);
}

/** RFC 7638 thumbprint (SHA-256, base64url) of an Ed25519 public key: the recommended `kid`. */
export function ed25519Thumbprint(publicKey: Uint8Array): string {
  if (publicKey.length !== ED25519_PUBLIC_KEY_BYTES) {
    throw new ProtocolError('SIG_BAD_KEY', 'Ed25519 public key must be 32 bytes');
  }
  // RFC 7638 §3.2: required members only, lexicographic order, no whitespace — the RFC 8785 form.
  const members = canonicalize({ crv: 'Ed25519', kty: 'OKP', x: toBase64Url(publicKey) });
  return toBase64Url(createHash('sha256').update(members).digest());
}

/**
 * The published JWK for a public key: 32 bytes (Ed25519) or 1984 bytes (hybrid: Ed25519 || ML-DSA-65,
 * as `hybridKeyPair().publicKey`). `kid` defaults to the Ed25519 thumbprint.
 */
export function publishedJwk(publicKey: Uint8Array, status: KeyState, kid?: string): PublishedJwk {
  if (publicKey.length !== ED25519_PUBLIC_KEY_BYTES && publicKey.length !== HYBRID_PUBLIC_KEY_BYTES) {
    throw new ProtocolError('SIG_BAD_KEY', 'public key must be Ed25519 (32 B) or hybrid (1984 B)');
  }
  const ed = publicKey.subarray(0, ED25519_PUBLIC_KEY_BYTES);
  const jwk: PublishedJwk = {
    kty: 'OKP',
    crv: 'Ed25519',
    x: toBase64Url(ed),
    kid: kid ?? ed25519Thumbprint(ed),
    alg: 'EdDSA',
    use: 'sig',
    status,
  };
  if (publicKey.length === HYBRID_PUBLIC_KEY_BYTES) {
    jwk.pq = { kty: 'AKP', alg: 'ML-DSA-65', pub: toBase64Url(publicKey.subarray(ED25519_PUBLIC_KEY_BYTES)) };
  }
  return jwk;
}

/** The issuer's record of one signing key; private material is held elsewhere, by kid. Times in ms since epoch. */
export type KeyRecord =
  | { readonly kid: string; readonly state: 'active'; readonly activatedAtMs: number }
  | { readonly kid: string; readonly state: 'overlap'; readonly activatedAtMs: number; readonly overlapSinceMs: number }
  | {
      readonly kid: string;
      readonly state: 'retired';
      readonly activatedAtMs: number;
      readonly overlapSinceMs: number;
      readonly retiredAtMs: number;
    };

export interface RotationPolicy {
  /** Age after which the active key is replaced. */
  readonly rotateAfterMs: number;
  /** How long a replaced key keeps verifying: ≥ MIN_OVERLAP_MS and ≥ maxTokenLifetimeMs. */
  readonly overlapMs: number;
  /** Longest lifetime (exp − iat) of any token the issuer signs. */
  readonly maxTokenLifetimeMs: number;
  /** How long a retired key stays published with status `retired` before it is dropped. */
  readonly retainRetiredMs: number;
}

/** One step for the issuer to apply, in order, at the planning time. */
export type RotationStep =
  /** Generate a fresh key pair and make it the active key. */
  | { readonly kind: 'create_active' }
  /** Stop signing with `kid`; keep verifying with it (active → overlap). */
  | { readonly kind: 'demote'; readonly kid: string }
  /** Stop verifying with `kid` (overlap → retired). */
  | { readonly kind: 'retire'; readonly kid: string }
  /** Drop a retired `kid` from the published set. */
  | { readonly kind: 'purge'; readonly kid: string };

export interface RotationPlan {
  readonly steps: readonly RotationStep[];
  /** When to plan again (ms since epoch): the earliest moment any key's state would change. */
  readonly nextCheckAtMs: number;
}

/** Throws JWKS_BAD_POLICY unless the policy keeps the overlap invariants of tokens.md §4.2. */
export function checkRotationPolicy(policy: RotationPolicy): void {
  const positive = (n: number) => Number.isSafeInteger(n) && n > 0;
  const bad = (why: string) => new ProtocolError('JWKS_BAD_POLICY', `rotation policy: ${why}`);
  if (![policy.rotateAfterMs, policy.overlapMs, policy.maxTokenLifetimeMs, policy.retainRetiredMs].every(positive)) {
    throw bad('every duration must be a positive integer of milliseconds');
  }
  if (policy.overlapMs < MIN_OVERLAP_MS) throw bad(`overlapMs must be at least ${MIN_OVERLAP_MS}`);
  if (policy.overlapMs < policy.maxTokenLifetimeMs) throw bad('overlapMs must cover maxTokenLifetimeMs');
}

/**
 * Plans key rotation from facts: the key records, the time and the policy. Pure. Guarantees: there is
 * exactly one active key after the steps; a key is retired only after it spent `overlapMs` in overlap
 * (a wall clock that moved backwards delays retirement, never hastens it). Throws JWKS_BAD_POLICY.
 */
export function planRotation(keys: readonly KeyRecord[], nowMs: number, policy: RotationPolicy): RotationPlan {
  checkRotationPolicy(policy);
  const steps: RotationStep[] = [];
  const wake: number[] = [];
  const active = keys.filter((k) => k.state === 'active').sort((a, b) => b.activatedAtMs - a.activatedAtMs);
  const [newest, ...extraActive] = active;
  const newestExpired = newest !== undefined && nowMs - newest.activatedAtMs >= policy.rotateAfterMs;
  if (newest === undefined || newestExpired) {
    steps.push({ kind: 'create_active' });
    wake.push(nowMs + policy.rotateAfterMs);
  } else {
    wake.push(newest.activatedAtMs + policy.rotateAfterMs);
  }
  for (const k of newestExpired ? active : extraActive) {
    steps.push({ kind: 'demote', kid: k.kid });
    wake.push(nowMs + policy.overlapMs);
  }
  for (const k of keys) {
    if (k.state === 'overlap') {
      if (nowMs - k.overlapSinceMs >= policy.overlapMs) {
        steps.push({ kind: 'retire', kid: k.kid });
        wake.push(nowMs + policy.retainRetiredMs);
      } else {
        wake.push(k.overlapSinceMs + policy.overlapMs);
      }
    } else if (k.state === 'retired') {
      if (nowMs - k.retiredAtMs >= policy.retainRetiredMs) steps.push({ kind: 'purge', kid: k.kid });
      else wake.push(k.retiredAtMs + policy.retainRetiredMs);
    }
  }
  return { steps, nextCheckAtMs: Math.max(nowMs, Math.min(...wake)) };
}
