// Enrollment with a control plane and what it leaves in the state directory: `enrollment.json` (who the device is
// in which tenant, where to connect), `runtime.token` (0600), and `trust/jwks.json` + `trust/approval-policy.json`
// for the safety gate. Re-enrolling is never silent: an enrolled device refuses unless told to replace it.

import { existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { fromBase64Url, toBase64Url } from '../protocol/bytes.ts';
import { parseJson } from '../protocol/canonical-json.ts';
import { signDeviceTokenProof, signEnrollProof } from '../protocol/enroll-proof.ts';
import { type JwkSet, parseJwks } from '../protocol/jwks.ts';
import type { CapabilityManifest } from '../protocol/manifest.ts';
import { manifestHash } from '../protocol/manifest.ts';
import { MIN_PHYSICAL_K, parseQuorumPolicy, type QuorumPolicy } from '../protocol/quorum.ts';
import { writeFileAtomic } from '../store/atomic-file.ts';
import { LinkError } from './link-errors.ts';
import { loadLoraKey, writeLoraSession } from './lora-session.ts';

export const ENROLLMENT_FILE = 'enrollment.json';
export const TOKEN_FILE = 'runtime.token';
export const TRUST_DIR = 'trust';
export const JWKS_FILE = 'jwks.json';
export const POLICY_FILE = 'approval-policy.json';

/** A token's iat and exp in ms, read without verifying it (for scheduling refreshes only). */
export function tokenTimes(token: string): { issuedAtMs: number; expiresAtMs: number } | undefined {
  try {
    const payload = JSON.parse(Buffer.from(token.split('.')[1] ?? '', 'base64url').toString('utf8')) as {
      iat?: unknown;
      exp?: unknown;
    };
    if (typeof payload.iat !== 'number' || typeof payload.exp !== 'number') return undefined;
    return { issuedAtMs: payload.iat * 1000, expiresAtMs: payload.exp * 1000 };
  } catch {
    return undefined; // not a JWS: nothing to schedule by
  }
}

export const Enrollment = z.strictObject({
  v: z.literal(1),
  /** The control plane's base URL, as given to `outpost enroll`. */
  url: z.string().max(512),
  device: z.string().max(64),
  tid: z.string().max(64),
  tenantDid: z.string().max(512),
  issuer: z.string().max(256),
  audiences: z.strictObject({ controlPlane: z.string().max(256), device: z.string().max(256) }),
  wssUrl: z.string().max(512),
  controlPlaneId: z.string().max(64),
  controlPlaneX25519PublicKey: z.string().max(64),
  heartbeatMs: z.int().min(1000).max(300_000),
  enrolledAtMs: z.int().min(0),
  manifestHash: z.string().max(80),
  /** Set when the control plane said the device is revoked; the link stops trying. */
  revokedAtMs: z.int().min(0).optional(),
});
export type Enrollment = z.infer<typeof Enrollment>;

const StoredToken = z.strictObject({
  token: z.string().max(8192),
  expiresAtMs: z.int().min(0),
  issuedAtMs: z.int().min(0),
});
export type StoredToken = z.infer<typeof StoredToken>;

/** The control plane's enrollment response (docs/controlplane.md), as far as the agent relies on it. */
const EnrollResponse = z.object({
  v: z.literal(1),
  device: z.string(),
  tid: z.string(),
  tenantDid: z.string(),
  issuer: z.string(),
  audiences: z.object({ controlPlane: z.string(), device: z.string() }),
  runtimeToken: z.string(),
  tokenExpiresAtMs: z.int(),
  jwks: z.unknown(),
  wssUrl: z.string(),
  controlPlaneId: z.string(),
  controlPlaneX25519PublicKey: z.string(),
  manifest: z.object({ hash: z.string(), status: z.enum(['accepted', 'pending_approval']) }),
  heartbeatMs: z.int(),
  policy: z.unknown().nullable(),
  reenrolled: z.boolean(),
});

function readJsonFile(path: string): unknown {
  return parseJson(readFileSync(path, 'utf8'), 256 * 1024);
}

/** The enrollment record, or undefined when the device is not enrolled. Throws ENROLLMENT_INVALID for a bad file. */
export function readEnrollment(stateDir: string): Enrollment | undefined {
  const path = join(stateDir, ENROLLMENT_FILE);
  if (!existsSync(path)) return undefined;
  try {
    return Enrollment.parse(readJsonFile(path));
  } catch (cause) {
    throw new LinkError('ENROLLMENT_INVALID', `${path} is not a valid enrollment record; re-enroll with --force`, {
      cause,
    });
  }
}

export function writeEnrollment(stateDir: string, e: Enrollment): void {
  writeFileAtomic(join(stateDir, ENROLLMENT_FILE), `${JSON.stringify(e, null, 2)}\n`, { mode: 0o600 });
}

export function readToken(stateDir: string): StoredToken | undefined {
  const path = join(stateDir, TOKEN_FILE);
  if (!existsSync(path)) return undefined;
  try {
    return StoredToken.parse(readJsonFile(path));
  } catch {
    return undefined; // an unreadable token is as good as none: the link asks for a fresh one
  }
}

export function writeToken(stateDir: string, t: StoredToken): void {
  writeFileAtomic(join(stateDir, TOKEN_FILE), `${JSON.stringify(t)}\n`, { mode: 0o600 });
}

export function trustFiles(stateDir: string): { jwksFile: string; approvalPolicyFile: string } {
  return { jwksFile: join(stateDir, TRUST_DIR, JWKS_FILE), approvalPolicyFile: join(stateDir, TRUST_DIR, POLICY_FILE) };
}

export function writeJwks(stateDir: string, jwks: JwkSet): void {
  mkdirSync(join(stateDir, TRUST_DIR), { recursive: true, mode: 0o700 });
  writeFileAtomic(trustFiles(stateDir).jwksFile, `${JSON.stringify(jwks, null, 2)}\n`, { mode: 0o600 });
}

/** Marks that a policy in force (at least MIN_PHYSICAL_K approvers) was installed once (quorum.md §2.3). */
const POLICY_IN_FORCE_FILE = 'policy-was-in-force';

export function writePolicy(stateDir: string, policy: QuorumPolicy): void {
  mkdirSync(join(stateDir, TRUST_DIR), { recursive: true, mode: 0o700 });
  writeFileAtomic(trustFiles(stateDir).approvalPolicyFile, `${JSON.stringify(policy, null, 2)}\n`, { mode: 0o600 });
  if (policy.approvers.length >= MIN_PHYSICAL_K && !policyWasInForce(stateDir)) {
    writeFileAtomic(join(stateDir, TRUST_DIR, POLICY_IN_FORCE_FILE), `${policy.approvers.length}\n`, { mode: 0o600 });
  }
}

/** True once a policy with at least MIN_PHYSICAL_K approvers was installed on this device (never reset). */
export function policyWasInForce(stateDir: string): boolean {
  return existsSync(join(stateDir, TRUST_DIR, POLICY_IN_FORCE_FILE));
}

export function readPolicy(stateDir: string): QuorumPolicy | undefined {
  const path = trustFiles(stateDir).approvalPolicyFile;
  if (!existsSync(path)) return undefined;
  try {
    return parseQuorumPolicy(readJsonFile(path));
  } catch {
    return undefined; // a damaged policy file verifies nothing: physical actuation stays refused
  }
}

export interface EnrollInput {
  readonly url: string;
  readonly token: string;
  readonly stateDir: string;
  readonly identity: { readonly did: string; readonly seed: Uint8Array };
  readonly manifest: CapabilityManifest;
  /** Replace an existing enrollment (the CLI's --force). */
  readonly replace: boolean;
  readonly nowMs: number;
  readonly fetch?: typeof fetch;
}

export interface EnrollOutcome {
  readonly enrollment: Enrollment;
  readonly manifestStatus: 'accepted' | 'pending_approval';
  readonly reenrolled: boolean;
}

/**
 * Enrolls with the control plane at `url` and persists the outcome. Throws LinkError ALREADY_ENROLLED (without
 * `replace`), UNREACHABLE, ENROLL_REFUSED (details.code is the control plane's code).
 */
export async function enroll(input: EnrollInput): Promise<EnrollOutcome> {
  const existing = readEnrollment(input.stateDir);
  if (existing && !input.replace) {
    throw new LinkError(
      'ALREADY_ENROLLED',
      `this device is already enrolled in tenant ${existing.tid} at ${existing.url}; pass --force to replace that enrollment`,
    );
  }
  const base = input.url.replace(/\/+$/, '');
  const hash = manifestHash(input.manifest);
  // Every device sends its X25519 key, so that it can use a LoRa uplink later without enrolling again.
  mkdirSync(input.stateDir, { recursive: true, mode: 0o700 });
  const x25519PublicKey = toBase64Url(loadLoraKey(input.stateDir).publicKey);
  const proof = signEnrollProof(input.identity.seed, {
    device: input.identity.did,
    token: input.token,
    manifestHash: hash,
    x25519PublicKey,
  });
  let res: Response;
  try {
    res = await (input.fetch ?? fetch)(`${base}/v1/devices/enroll`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        v: 1,
        token: input.token,
        device: input.identity.did,
        manifest: input.manifest,
        x25519PublicKey,
        proof: toBase64Url(proof),
      }),
      signal: AbortSignal.timeout(30_000),
    });
  } catch (cause) {
    throw new LinkError('UNREACHABLE', `cannot reach ${base}: ${(cause as Error).message}`, { cause });
  }
  const text = await res.text();
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    throw new LinkError('ENROLL_REFUSED', `${base} answered ${res.status} with something that is not JSON`);
  }
  if (!res.ok) {
    const err = (body as { error?: { code?: string; message?: string } }).error;
    throw new LinkError('ENROLL_REFUSED', `enrollment refused: ${err?.message ?? `HTTP ${res.status}`}`, {
      details: { code: err?.code ?? `HTTP_${res.status}` },
    });
  }
  const r = EnrollResponse.parse(body);
  if (r.device !== input.identity.did)
    throw new LinkError('ENROLL_REFUSED', 'the control plane enrolled another device id');
  const jwks = parseJwks(JSON.stringify(r.jwks));
  const enrollment: Enrollment = {
    v: 1,
    url: base,
    device: r.device,
    tid: r.tid,
    tenantDid: r.tenantDid,
    issuer: r.issuer,
    audiences: r.audiences,
    wssUrl: r.wssUrl,
    controlPlaneId: r.controlPlaneId,
    controlPlaneX25519PublicKey: r.controlPlaneX25519PublicKey,
    heartbeatMs: r.heartbeatMs,
    enrolledAtMs: input.nowMs,
    manifestHash: r.manifest.hash,
  };
  mkdirSync(input.stateDir, { recursive: true, mode: 0o700 });
  // Trust first, record last: a crash in between leaves "not enrolled", never an enrollment without keys.
  rmSync(trustFiles(input.stateDir).approvalPolicyFile, { force: true });
  writeJwks(input.stateDir, jwks);
  if (r.policy) writePolicy(input.stateDir, parseQuorumPolicy(r.policy));
  writeToken(input.stateDir, {
    token: r.runtimeToken,
    expiresAtMs: r.tokenExpiresAtMs,
    issuedAtMs: tokenTimes(r.runtimeToken)?.issuedAtMs ?? input.nowMs,
  });
  writeLoraSession(input.stateDir, {
    tid: r.tid,
    controlPlaneX25519: fromBase64Url(r.controlPlaneX25519PublicKey),
    via: 'ip',
  });
  writeEnrollment(input.stateDir, enrollment);
  return { enrollment, manifestStatus: r.manifest.status, reenrolled: r.reenrolled || existing !== undefined };
}

/**
 * A fresh runtime token by proving the device key over a control-plane challenge (after an outage long enough for
 * the token to expire). Throws LinkError UNREACHABLE, DEVICE_REVOKED, TOKEN_REFUSED.
 */
export async function requestDeviceToken(input: {
  readonly url: string;
  readonly identity: { readonly did: string; readonly seed: Uint8Array };
  readonly fetch?: typeof fetch;
}): Promise<{ token: string; expiresAtMs: number; jwks: JwkSet }> {
  const f = input.fetch ?? fetch;
  const post = async (path: string, body: unknown) => {
    let res: Response;
    try {
      res = await f(`${input.url}${path}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(body),
        signal: AbortSignal.timeout(30_000),
      });
    } catch (cause) {
      throw new LinkError('UNREACHABLE', `cannot reach ${input.url}: ${(cause as Error).message}`, { cause });
    }
    const value = (await res.json().catch(() => ({}))) as Record<string, unknown> & {
      error?: { code?: string; message?: string };
    };
    if (!res.ok) {
      const code = value.error?.code ?? `HTTP_${res.status}`;
      throw new LinkError(
        code === 'DEVICE_REVOKED' ? 'DEVICE_REVOKED' : 'TOKEN_REFUSED',
        `token request refused: ${value.error?.message ?? code}`,
        {
          details: { code },
        },
      );
    }
    return value;
  };
  const { challenge } = (await post('/v1/devices/challenge', { device: input.identity.did })) as { challenge: string };
  const proof = signDeviceTokenProof(input.identity.seed, input.identity.did, challenge);
  const r = (await post('/v1/devices/token', {
    v: 1,
    device: input.identity.did,
    challenge,
    proof: toBase64Url(proof),
  })) as {
    runtimeToken: string;
    tokenExpiresAtMs: number;
    jwks: unknown;
  };
  return { token: r.runtimeToken, expiresAtMs: r.tokenExpiresAtMs, jwks: parseJwks(JSON.stringify(r.jwks)) };
}
