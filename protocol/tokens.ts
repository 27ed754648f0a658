// Runtime tokens: compact JWS (EdDSA, via jose) over strict claims, the hybrid EdDSA + ML-DSA-65 form for
// control-plane keys, and tenant ids derived from did:web (docs/protocol/tokens.md).

import { createHash, createPrivateKey, createPublicKey, randomBytes } from 'node:crypto';
import { ml_dsa65 } from '@noble/post-quantum/ml-dsa.js';
import { CompactSign, compactVerify, errors as joseErrors } from 'jose';
import { z } from 'zod';
import { fromBase64Url, fromUtf8, toBase64Url, utf8 } from './bytes.ts';
import { canonicalBytes, canonicalize, parseJson } from './canonical-json.ts';
import type { Clock } from './clock.ts';
import { ProtocolError } from './errors.ts';
import { DeviceId, TenantId } from './identifiers.ts';
import { type JwkSet, Kid, type PublishedJwk } from './jwks.ts';
import { isMachineRole, ROLES } from './roles.ts';
import { parseScopeClaim, type Scope } from './scopes.ts';
import {
  ed25519KeyPair,
  isSmallOrderEd25519,
  MLDSA65_SEED_BYTES,
  MLDSA65_SIGNATURE_BYTES,
  signingInput,
} from './signing.ts';

// ---------------------------------------------------------------------------------------------
// Tenant ids (tokens.md §2)

/** RFC 9562 NameSpace_URL (Appendix A). */
export const UUID_NAMESPACE_URL = '6ba7b811-9dad-11d1-80b4-00c04fd430c8';

/** UUIDv5 (RFC 9562 §5.5): SHA-1 of namespace bytes || name, version 5, variant 10. */
export function uuidV5(namespace: string, name: string): string {
  if (!/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/.test(namespace)) {
    throw new ProtocolError('BAD_ENCODING', 'namespace must be a lowercase UUID');
  }
  const h = createHash('sha1')
    .update(Buffer.from(namespace.replaceAll('-', ''), 'hex'))
    .update(utf8(name))
    .digest();
  h[6] = (h[6]! & 0x0f) | 0x50;
  h[8] = (h[8]! & 0x3f) | 0x80;
  const hex = h.subarray(0, 16).toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/** The namespace of tenant ids: uuidV5(UUID_NAMESPACE_URL, "urn:outpost:namespace:tenant"). */
export const TENANT_NAMESPACE = '503bfb0e-ffdd-5e64-8559-3e26dac0e9a8';

/**
 * did:web in its one accepted spelling (tokens.md §2): lowercase host, optional `%3A` port, optional
 * `:`-separated path segments of unreserved characters. At most 256 characters.
 */
const DID_WEB =
  /^did:web:(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*(?:%3A[1-9][0-9]{0,4})?(?::[A-Za-z0-9._~-]+)*$/;

/** The tenant id of a tenant named by `didWeb`. Throws TENANT_DID_MALFORMED for any other spelling. */
export function tenantIdFromDidWeb(didWeb: string): string {
  if (typeof didWeb !== 'string' || didWeb.length > 256 || !DID_WEB.test(didWeb)) {
    throw new ProtocolError('TENANT_DID_MALFORMED', 'tenant must be named by a lowercase did:web');
  }
  const port = /%3A([0-9]+)/.exec(didWeb)?.[1];
  if (port !== undefined && Number(port) > 65535) {
    throw new ProtocolError('TENANT_DID_MALFORMED', 'did:web port is out of range');
  }
  return uuidV5(TENANT_NAMESPACE, didWeb);
}

// ---------------------------------------------------------------------------------------------
// Claims (tokens.md §5)

/** JWS `typ` of runtime tokens (explicit typing, RFC 8725 §3.11). */
export const RUNTIME_TOKEN_TYP = 'outpost-rt+jwt';
/** Context label of the ML-DSA-65 half of a hybrid token (tokens.md §3.2). */
export const JWS_PQ_CONTEXT = 'outpost/jws-pq/v1';
/** Header member naming the second signature of a hybrid token; listed in `crit`. */
export const PQ_HEADER = 'pq';
/** Largest token accepted, in bytes; a hybrid token is about 5.3 kB. */
export const MAX_TOKEN_BYTES = 8192;
/** Default and largest clock-skew leeway, in seconds. */
export const DEFAULT_LEEWAY_S = 60;
export const MAX_LEEWAY_S = 300;
/** Default longest lifetime (exp − iat) a verifier accepts, in seconds. */
export const DEFAULT_MAX_LIFETIME_S = 86_400;

const PRINTABLE = /^[\x21-\x7e]+$/;
const NumericDate = z
  .int()
  .min(0)
  .max(2 ** 40);

export const RuntimeClaims = z
  .strictObject({
    /** Issuer: the control plane's identifier (URL or did:web). */
    iss: z.string().max(256).regex(PRINTABLE),
    /** Audience: who must accept the token (one value). */
    aud: z.string().max(256).regex(PRINTABLE),
    /** Subject: the principal (device did:key, operator id, service name). */
    sub: z.string().max(256).regex(PRINTABLE),
    /** Tenant id: UUIDv5 of the tenant's did:web. */
    tid: TenantId,
    /** Device bound to the token: required for machine roles, where it equals `sub`. */
    dev: DeviceId.optional(),
    role: z.enum(ROLES),
    /** Space-separated scopes (§6); every scope names `tid`. */
    scope: z.string().max(64 * 257),
    iat: NumericDate,
    nbf: NumericDate,
    exp: NumericDate,
    /** Unique token id, for revocation: 16..64 base64url characters (≥ 96 bits when random). */
    jti: z.string().regex(/^[A-Za-z0-9_-]{16,64}$/),
  })
  .superRefine((c, ctx) => {
    if (!(c.iat <= c.nbf && c.nbf < c.exp)) {
      ctx.addIssue({ code: 'custom', message: 'times must satisfy iat <= nbf < exp' });
    }
    if (isMachineRole(c.role) && c.dev !== c.sub) {
      ctx.addIssue({ code: 'custom', message: `role ${c.role} needs dev equal to sub` });
    }
    let scopes: Scope[];
    try {
      scopes = parseScopeClaim(c.scope);
    } catch (e) {
      ctx.addIssue({ code: 'custom', message: (e as Error).message, path: ['scope'] });
      return;
    }
    if (scopes.some((s) => s.tenant !== c.tid)) {
      ctx.addIssue({ code: 'custom', message: 'a scope names another tenant', path: ['scope'] });
    }
  });
export type RuntimeClaims = z.infer<typeof RuntimeClaims>;

function checkClaims(value: unknown): RuntimeClaims {
  const r = RuntimeClaims.safeParse(value);
  if (!r.success) {
    const issue = r.error.issues[0];
    throw new ProtocolError('TOKEN_BAD_CLAIMS', `token claims: ${issue?.message ?? 'invalid'}`, {
      details: { path: issue?.path.join('.') },
    });
  }
  return r.data;
}

/** A fresh random `jti` (128 bits). */
export function newJti(): string {
  return toBase64Url(randomBytes(16));
}

// ---------------------------------------------------------------------------------------------
// Signing (tokens.md §3)

/** A token signing key. With `mldsaSeed` the key is hybrid and every token it signs is hybrid. */
export interface TokenSigningKey {
  readonly kid: string;
  /** 32-byte Ed25519 seed. */
  readonly ed25519Seed: Uint8Array;
  /** 32-byte ML-DSA-65 seed (FIPS 204 ξ); present for hybrid keys. */
  readonly mldsaSeed?: Uint8Array;
}

const TokenHeader = z.strictObject({
  alg: z.literal('EdDSA'),
  crit: z.tuple([z.literal(PQ_HEADER)]).optional(),
  kid: Kid,
  pq: z.literal('ML-DSA-65').optional(),
  typ: z.literal(RUNTIME_TOKEN_TYP),
});
type TokenHeader = z.infer<typeof TokenHeader>;

/**
 * Signs `claims` (validated first; TOKEN_BAD_CLAIMS) as a runtime token. Header and payload are RFC 8785
 * canonical JSON, so the same claims and key always give the same token. Hybrid keys give the
 * four-segment hybrid form of tokens.md §3.2.
 */
export async function signRuntimeToken(claims: RuntimeClaims, key: TokenSigningKey): Promise<string> {
  const checked = checkClaims(claims);
  if (!Kid.safeParse(key.kid).success) throw new ProtocolError('TOKEN_BAD_HEADER', 'bad kid');
  const hybrid = key.mldsaSeed !== undefined;
  if (hybrid && key.mldsaSeed.length !== MLDSA65_SEED_BYTES) {
    throw new ProtocolError('SIG_BAD_KEY', 'ML-DSA-65 seed must be 32 bytes');
  }
  // Members in RFC 8785 order: jose serialises the header with JSON.stringify, which keeps insertion order.
  const header: TokenHeader = hybrid
    ? { alg: 'EdDSA', crit: [PQ_HEADER], kid: key.kid, pq: 'ML-DSA-65', typ: RUNTIME_TOKEN_TYP }
    : { alg: 'EdDSA', kid: key.kid, typ: RUNTIME_TOKEN_TYP };
  const pair = ed25519KeyPair(key.ed25519Seed);
  const privateKey = createPrivateKey({
    key: { kty: 'OKP', crv: 'Ed25519', x: toBase64Url(pair.publicKey), d: toBase64Url(pair.seed) },
    format: 'jwk',
  });
  const jws = await new CompactSign(canonicalBytes(checked))
    .setProtectedHeader(header)
    .sign(privateKey, hybrid ? { crit: { [PQ_HEADER]: true } } : undefined);
  if (!hybrid) return jws;
  const signed = jws.slice(0, jws.lastIndexOf('.'));
  const { secretKey } = ml_dsa65.keygen(key.mldsaSeed);
  const pqSig = ml_dsa65.sign(signingInput(JWS_PQ_CONTEXT, utf8(signed)), secretKey, { extraEntropy: false });
  return `${jws}.${toBase64Url(pqSig)}`;
}

// ---------------------------------------------------------------------------------------------
// Verification (tokens.md §3.2, §5.2)

/** A token's structure, read before any key is chosen. Nothing in it is trusted yet. */
export interface TokenStructure {
  readonly header: TokenHeader;
  readonly kid: string;
  /** True for the four-segment hybrid form. */
  readonly hybrid: boolean;
  /** The three segments of the EdDSA JWS. */
  readonly jws: string;
  /** The ML-DSA-65 signature of a hybrid token. */
  readonly pqSignature?: Uint8Array;
}

function decodeSegmentJson(segment: string, what: string): unknown {
  let text: string;
  let value: unknown;
  let canonical: string;
  try {
    text = fromUtf8(fromBase64Url(segment, what), what);
    value = parseJson(text, MAX_TOKEN_BYTES);
    canonical = canonicalize(value);
  } catch (cause) {
    throw new ProtocolError('TOKEN_MALFORMED', `${what} is not base64url JSON`, { cause });
  }
  // One spelling per token: reject duplicate members, whitespace and other non-canonical forms.
  if (canonical !== text) throw new ProtocolError('TOKEN_MALFORMED', `${what} is not canonical JSON`);
  return value;
}

/**
 * Splits and checks the token's form and protected header. Throws TOKEN_TOO_LARGE, TOKEN_MALFORMED,
 * TOKEN_BAD_HEADER, or TOKEN_HYBRID_REQUIRED (a hybrid header whose ML-DSA segment was stripped).
 */
export function inspectRuntimeToken(token: string, maxTokenBytes = MAX_TOKEN_BYTES): TokenStructure {
  if (typeof token !== 'string') throw new ProtocolError('TOKEN_MALFORMED', 'token must be a string');
  if (token.length > maxTokenBytes) {
    throw new ProtocolError('TOKEN_TOO_LARGE', `token exceeds ${maxTokenBytes} bytes`, { details: { maxTokenBytes } });
  }
  const parts = token.split('.');
  if ((parts.length !== 3 && parts.length !== 4) || parts.some((p) => !/^[A-Za-z0-9_-]+$/.test(p))) {
    throw new ProtocolError('TOKEN_MALFORMED', 'token must be 3 or 4 non-empty base64url segments');
  }
  const headerValue = decodeSegmentJson(parts[0]!, 'token header');
  const h = TokenHeader.safeParse(headerValue);
  if (!h.success) {
    throw new ProtocolError('TOKEN_BAD_HEADER', `token header: ${h.error.issues[0]?.message ?? 'invalid'}`, {
      details: { path: h.error.issues[0]?.path.join('.') },
    });
  }
  const header = h.data;
  const declaresPq = header.pq !== undefined;
  if (declaresPq !== (header.crit !== undefined)) {
    throw new ProtocolError('TOKEN_BAD_HEADER', 'pq and crit must appear together');
  }
  if (declaresPq && parts.length === 3) {
    throw new ProtocolError('TOKEN_HYBRID_REQUIRED', 'hybrid token lacks its ML-DSA-65 signature');
  }
  if (!declaresPq && parts.length === 4) {
    throw new ProtocolError('TOKEN_MALFORMED', 'a fourth segment needs a pq header');
  }
  let pqSignature: Uint8Array | undefined;
  if (declaresPq) {
    try {
      pqSignature = fromBase64Url(parts[3]!, 'ML-DSA-65 signature');
    } catch (cause) {
      throw new ProtocolError('TOKEN_MALFORMED', 'ML-DSA-65 signature is not canonical base64url', { cause });
    }
    if (pqSignature.length !== MLDSA65_SIGNATURE_BYTES) {
      throw new ProtocolError('TOKEN_BAD_SIGNATURE', 'ML-DSA-65 signature has the wrong length');
    }
  }
  return {
    header,
    kid: header.kid,
    hybrid: declaresPq,
    jws: parts.slice(0, 3).join('.'),
    ...(pqSignature ? { pqSignature } : {}),
  };
}

export interface VerifyTokenOptions {
  readonly jwks: JwkSet;
  readonly clock: Clock;
  /** Expected `iss`. */
  readonly issuer: string;
  /** Expected `aud`. */
  readonly audience: string;
  /** Expected `tid`, when the verifier serves one tenant (a device does). */
  readonly tid?: string;
  /** Clock-skew allowance for nbf/exp/iat, seconds (default 60, at most 300). */
  readonly leewayS?: number;
  /** Longest accepted exp − iat, seconds (default 86,400). */
  readonly maxLifetimeS?: number;
  /** Refuse tokens that are not hybrid, whatever their key. */
  readonly requireHybrid?: boolean;
  readonly maxTokenBytes?: number;
}

export interface VerifiedToken {
  readonly claims: RuntimeClaims;
  readonly scopes: readonly Scope[];
  readonly kid: string;
  readonly hybrid: boolean;
}

function checkLeeway(leewayS: number): number {
  if (!Number.isSafeInteger(leewayS) || leewayS < 0 || leewayS > MAX_LEEWAY_S) {
    throw new RangeError(`leewayS must be an integer in 0..${MAX_LEEWAY_S}`);
  }
  return leewayS;
}

/** Picks the key for `kid`. Throws TOKEN_UNKNOWN_KEY or TOKEN_KEY_RETIRED. */
export function selectKey(jwks: JwkSet, kid: string): PublishedJwk {
  const key = jwks.keys.find((k) => k.kid === kid);
  if (!key) throw new ProtocolError('TOKEN_UNKNOWN_KEY', 'no key with this kid', { details: { kid } });
  if (key.status === 'retired') throw new ProtocolError('TOKEN_KEY_RETIRED', 'key is retired', { details: { kid } });
  return key;
}

async function verifyEdDsa(jws: string, key: PublishedJwk): Promise<Uint8Array> {
  // A small-order key would accept the universal forgery (canonical-signing.md §6): it verifies nothing.
  if (isSmallOrderEd25519(fromBase64Url(key.x))) {
    throw new ProtocolError('TOKEN_BAD_SIGNATURE', 'the key is of small order and verifies nothing');
  }
  const publicKey = createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: key.x }, format: 'jwk' });
  try {
    const r = await compactVerify(jws, publicKey, { algorithms: ['EdDSA'], crit: { [PQ_HEADER]: true } });
    return r.payload;
  } catch (cause) {
    if (cause instanceof joseErrors.JWSSignatureVerificationFailed) {
      throw new ProtocolError('TOKEN_BAD_SIGNATURE', 'EdDSA signature does not verify', { cause });
    }
    throw new ProtocolError('TOKEN_MALFORMED', `JWS rejected: ${(cause as Error).message}`, { cause });
  }
}

function verifyPq(structure: TokenStructure, key: PublishedJwk): void {
  if (!key.pq || !structure.pqSignature) throw new ProtocolError('TOKEN_HYBRID_REQUIRED', 'hybrid signature missing');
  let ok = false;
  try {
    const jwsSigningInput = structure.jws.slice(0, structure.jws.lastIndexOf('.'));
    const input = signingInput(JWS_PQ_CONTEXT, utf8(jwsSigningInput));
    ok = ml_dsa65.verify(structure.pqSignature, input, fromBase64Url(key.pq.pub));
  } catch {
    ok = false; // a malformed signature encoding is a failed verification
  }
  if (!ok) throw new ProtocolError('TOKEN_BAD_SIGNATURE', 'ML-DSA-65 signature does not verify');
}

/**
 * Verifies a runtime token against a key set: form, header, key state, signature(s), claims, issuer,
 * audience, tenant and time (with leeway). Resolves to the verified claims; rejects with a
 * ProtocolError (codes in tokens.md §9) and never with anything else.
 */
export async function verifyRuntimeToken(token: string, options: VerifyTokenOptions): Promise<VerifiedToken> {
  const leewayS = checkLeeway(options.leewayS ?? DEFAULT_LEEWAY_S);
  const structure = inspectRuntimeToken(token, options.maxTokenBytes);
  const key = selectKey(options.jwks, structure.kid);
  const hybridRequired = key.pq !== undefined || options.requireHybrid === true;
  if (hybridRequired && !structure.hybrid) {
    throw new ProtocolError('TOKEN_HYBRID_REQUIRED', 'this key signs hybrid tokens only', {
      details: { kid: structure.kid },
    });
  }
  if (structure.hybrid && !key.pq) {
    throw new ProtocolError('TOKEN_BAD_HEADER', 'hybrid token under a key without an ML-DSA-65 half');
  }
  await verifyEdDsa(structure.jws, key);
  if (structure.hybrid) verifyPq(structure, key);
  const payloadSegment = structure.jws.split('.')[1]!;
  const claims = checkClaims(decodeSegmentJson(payloadSegment, 'token payload'));
  if (claims.iss !== options.issuer) throw new ProtocolError('TOKEN_WRONG_ISSUER', 'unexpected issuer');
  if (claims.aud !== options.audience) throw new ProtocolError('TOKEN_WRONG_AUDIENCE', 'unexpected audience');
  if (options.tid !== undefined && claims.tid !== options.tid) {
    throw new ProtocolError('TOKEN_WRONG_TENANT', 'token is for another tenant');
  }
  if (claims.exp - claims.iat > (options.maxLifetimeS ?? DEFAULT_MAX_LIFETIME_S)) {
    throw new ProtocolError('TOKEN_LIFETIME_TOO_LONG', 'token lifetime exceeds the limit');
  }
  const nowS = Math.floor(options.clock.nowMs() / 1000);
  if (nowS + leewayS < claims.nbf || nowS + leewayS < claims.iat) {
    throw new ProtocolError('TOKEN_NOT_YET_VALID', 'token is not valid yet', { details: { nbf: claims.nbf } });
  }
  if (nowS - leewayS >= claims.exp) {
    throw new ProtocolError('TOKEN_EXPIRED', 'token has expired', { details: { exp: claims.exp } });
  }
  return { claims, scopes: parseScopeClaim(claims.scope), kid: structure.kid, hybrid: structure.hybrid };
}
