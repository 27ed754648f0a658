// Enrollment: operators mint single-use, expiring, tenant-bound enroll tokens; a device trades one (with its
// public key, a proof of possession and its manifest) for its identity in the tenant and a runtime token. A device
// later proves its key again to get a fresh token after an outage. docs/controlplane.md §Enrollment.

import { concatBytes, fromBase64Url, toBase64Url, utf8 } from '../protocol/bytes.ts';
import { verifyDeviceTokenProof, verifyEnrollProof } from '../protocol/enroll-proof.ts';
import { isOutpostError } from '../protocol/errors.ts';
import type { JwkSet } from '../protocol/jwks.ts';
import { type CapabilityManifest, decodeManifest, manifestHash } from '../protocol/manifest.ts';
import type { QuorumPolicy } from '../protocol/quorum.ts';
import type { DeviceTokenRequest, EnrollRequest, EnrollTokenRequest } from './api-schemas.ts';
import { authFailure, checkNotLockedOut, type Principal, requireOperator } from './auth.ts';
import { audit, type ControlPlaneContext } from './context.ts';
import { constantTimeEqual, enrollTokenHash, enrollTokenId, mintEnrollToken as mintToken } from './credentials.ts';
import { publishServed } from './devices.ts';
import { ControlPlaneError } from './errors.ts';
import { newLoraEnrollToken } from './lora-enrollment.ts';
import type { DeviceRecord, EnrollRefusal, MachineRole } from './ports.ts';
import { CONTROL_PLANE_AUDIENCE, DEVICE_AUDIENCE, hubUrl } from './settings.ts';
import type { IssuedToken } from './token-issuer.ts';

export interface MintedEnrollToken {
  /** The token text: shown once to the operator, never stored. */
  readonly token: string;
  readonly tokenId: string;
  readonly tid: string;
  readonly role: MachineRole;
  readonly expiresAtMs: number;
  readonly labels: Readonly<Record<string, string>>;
  readonly holdManifest: boolean;
  /** Present when a manifest was registered: the token also enrolls that device over LoRa. */
  readonly lora?: { readonly manifestHash: string; readonly device: string };
}

/** Mints an enroll token for the principal's tenant. Throws FORBIDDEN for non-operators. */
export async function mintEnrollToken(
  ctx: ControlPlaneContext,
  principal: Principal,
  req: EnrollTokenRequest,
): Promise<MintedEnrollToken> {
  requireOperator(principal);
  const ttlMs = Math.min(
    (req.ttlSeconds ?? ctx.settings.defaultEnrollTokenTtlMs / 1000) * 1000,
    ctx.settings.maxEnrollTokenTtlMs,
  );
  // With a registered manifest the token can also be used over LoRa: it is then derived from a nonce by the vault,
  // which is how this control plane can check a LoRa request's MAC without ever storing the token.
  let lora: { id: string; nonce: Uint8Array; manifest: CapabilityManifest } | undefined;
  let minted = mintToken(ctx.random);
  if (req.manifest !== undefined) {
    if ((req.role ?? 'device') !== 'device') {
      throw new ControlPlaneError('BAD_REQUEST', 'a manifest is registered for devices only (gateways enroll over IP)');
    }
    let manifest: CapabilityManifest;
    try {
      manifest = decodeManifest(req.manifest);
    } catch (e) {
      if (!isOutpostError(e)) throw e;
      throw new ControlPlaneError('MANIFEST_REFUSED', `manifest refused: ${e.message}`, { cause: e });
    }
    const t = newLoraEnrollToken(ctx);
    const tokenHash = enrollTokenHash(t.text);
    minted = { text: t.text, tokenHash, tokenId: enrollTokenId(tokenHash) };
    lora = { id: t.loraId, nonce: t.nonce, manifest };
  }
  const nowMs = ctx.clock.nowMs();
  const record = {
    ...(lora ? { lora } : {}),
    tokenId: minted.tokenId,
    tokenHash: minted.tokenHash,
    tid: principal.tid,
    role: req.role ?? 'device',
    labels: req.labels ?? {},
    holdManifest: req.holdManifest ?? false,
    createdMs: nowMs,
    expiresMs: nowMs + ttlMs,
    createdBy: principal.subject,
  } as const;
  await ctx.store.putEnrollToken(record);
  await audit(ctx, {
    kind: 'enroll_token.mint',
    actor: principal.subject,
    subject: minted.tokenId,
    decision: 'allow',
    reason: 'OK',
    details: {
      tid: principal.tid,
      role: record.role,
      expiresMs: record.expiresMs,
      holdManifest: record.holdManifest,
      ...(lora ? { lora: true, manifestHash: manifestHash(lora.manifest), device: lora.manifest.device.id } : {}),
    },
  });
  return {
    token: minted.text,
    tokenId: minted.tokenId,
    tid: principal.tid,
    role: record.role,
    expiresAtMs: record.expiresMs,
    labels: record.labels,
    holdManifest: record.holdManifest,
    ...(lora ? { lora: { manifestHash: manifestHash(lora.manifest), device: lora.manifest.device.id } } : {}),
  };
}

/** What an enrolled device receives (docs/controlplane.md §Enrollment response). */
export interface EnrollResponse {
  readonly v: 1;
  readonly device: string;
  readonly tid: string;
  readonly tenantDid: string;
  readonly issuer: string;
  /** `aud` of the tokens the device presents (hello, token.refresh) and of those its gate verifies. */
  readonly audiences: { readonly controlPlane: string; readonly device: string };
  readonly runtimeToken: string;
  readonly tokenExpiresAtMs: number;
  readonly jwks: JwkSet;
  readonly wssUrl: string;
  readonly controlPlaneId: string;
  /** base64url X25519 public key of the control plane, for LoRa session keys (lora-frames.md §5.2). */
  readonly controlPlaneX25519PublicKey: string;
  readonly manifest: { readonly hash: string; readonly status: 'accepted' | 'pending_approval' };
  readonly heartbeatMs: number;
  /** The tenant's approval policy, when it has one (it also arrives as policy.update on every session). */
  readonly policy: QuorumPolicy | null;
  readonly reenrolled: boolean;
}

/** Issues a device (or gateway) session token for an enrolled device. */
export function issueDeviceToken(ctx: ControlPlaneContext, device: DeviceRecord): Promise<IssuedToken> {
  return ctx.issuer.issue(
    {
      aud: CONTROL_PLANE_AUDIENCE,
      sub: device.device,
      dev: device.device,
      tid: device.tid,
      role: device.role,
      scope: '',
    },
    ctx.settings.deviceTokenTtlMs,
  );
}

const REFUSAL_MESSAGES: Readonly<Record<EnrollRefusal, string>> = {
  ENROLL_TOKEN_UNKNOWN: 'enroll token refused',
  ENROLL_TOKEN_USED: 'this enroll token was already used; ask the operator for a new one',
  ENROLL_TOKEN_EXPIRED: 'this enroll token has expired; ask the operator for a new one',
  DEVICE_REVOKED: 'this device key was revoked; enroll with a new key',
  DEVICE_OTHER_TENANT: 'this device key is enrolled in another tenant',
  DEVICE_NAME_TAKEN: 'another device of the tenant has this name (manifest device.name)',
};

function decodeEnrollManifest(value: unknown, device: string): CapabilityManifest {
  let manifest: CapabilityManifest;
  try {
    manifest = decodeManifest(value);
  } catch (e) {
    if (!isOutpostError(e)) throw e;
    throw new ControlPlaneError('MANIFEST_REFUSED', `manifest refused: ${e.message}`, {
      cause: e,
      details: { code: e.code, ...(e.details.issues ? { issues: e.details.issues } : {}) },
    });
  }
  if (manifest.device.id !== device) {
    throw new ControlPlaneError('MANIFEST_REFUSED', 'manifest device.id is not the enrolling device');
  }
  return manifest;
}

/**
 * Enrolls a device. Throws (after auditing) ENROLL_TOKEN_UNKNOWN / _USED / _EXPIRED, PROOF_INVALID,
 * MANIFEST_REFUSED, X25519_KEY_INVALID, DEVICE_REVOKED, DEVICE_OTHER_TENANT, DEVICE_NAME_TAKEN, LOCKED_OUT.
 */
export async function enrollDevice(
  ctx: ControlPlaneContext,
  req: EnrollRequest,
  address: string,
): Promise<EnrollResponse> {
  checkNotLockedOut(ctx, address);
  const nowMs = ctx.clock.nowMs();
  const tokenHash = enrollTokenHash(req.token);
  const deny = async (code: ControlPlaneError['code'], message: string, details: Record<string, string> = {}) => {
    ctx.metrics.enrollments.inc({ outcome: code });
    const error = new ControlPlaneError(code, message);
    await audit(ctx, {
      kind: 'enroll',
      actor: req.device,
      subject: details.tokenId ?? 'unknown-token',
      decision: 'deny',
      reason: code,
      details: { address, ...details },
    });
    // Token and proof failures are how guessing looks: they count towards the address's lockout.
    if (code === 'ENROLL_TOKEN_UNKNOWN' || code === 'PROOF_INVALID' || code === 'ENROLL_TOKEN_EXPIRED') {
      return authFailure(ctx, address, 'enroll', error);
    }
    return error;
  };
  const token = await ctx.store.getEnrollToken(tokenHash);
  if (!token || !constantTimeEqual(token.tokenHash, tokenHash)) {
    throw await deny('ENROLL_TOKEN_UNKNOWN', REFUSAL_MESSAGES.ENROLL_TOKEN_UNKNOWN);
  }
  const tokenId = token.tokenId;
  if (token.usedMs !== undefined)
    throw await deny('ENROLL_TOKEN_USED', REFUSAL_MESSAGES.ENROLL_TOKEN_USED, { tokenId });
  if (nowMs >= token.expiresMs) {
    throw await deny('ENROLL_TOKEN_EXPIRED', REFUSAL_MESSAGES.ENROLL_TOKEN_EXPIRED, { tokenId });
  }
  let manifest: CapabilityManifest;
  try {
    manifest = decodeEnrollManifest(req.manifest, req.device);
  } catch (e) {
    await deny('MANIFEST_REFUSED', (e as Error).message, { tokenId });
    throw e;
  }
  const hash = manifestHash(manifest);
  const proofOk = verifyEnrollProof(
    {
      device: req.device,
      token: req.token,
      manifestHash: hash,
      ...(req.x25519PublicKey ? { x25519PublicKey: req.x25519PublicKey } : {}),
    },
    fromBase64Url(req.proof),
  );
  if (!proofOk) throw await deny('PROOF_INVALID', 'the proof of possession does not verify', { tokenId });
  if (req.x25519PublicKey && !ctx.vault.lora.isAcceptablePeer(fromBase64Url(req.x25519PublicKey))) {
    throw await deny('X25519_KEY_INVALID', 'the X25519 public key is not usable (low order)', { tokenId });
  }
  const existing = await ctx.store.getDevice(req.device);
  const version = { hash, manifest, sinceMs: nowMs };
  const keepAccepted = existing?.accepted && existing.accepted.hash === hash;
  const record: DeviceRecord = {
    device: req.device,
    tid: token.tid,
    name: manifest.device.name,
    role: token.role,
    labels: { ...(manifest.device.labels ?? {}), ...token.labels },
    ...(req.x25519PublicKey ? { x25519PublicKey: req.x25519PublicKey } : {}),
    status: 'active',
    enrolledMs: nowMs,
    enrollTokenId: tokenId,
    ...(token.holdManifest && !keepAccepted
      ? { pending: version, ...(existing?.accepted ? { accepted: existing.accepted } : {}) }
      : { accepted: keepAccepted ? existing!.accepted! : version }),
  };
  const outcome = await ctx.store.completeEnrollment({ tokenHash, nowMs, device: record });
  if (!outcome.ok) throw await deny(outcome.reason, REFUSAL_MESSAGES[outcome.reason], { tokenId });
  const issued = await issueDeviceToken(ctx, outcome.device);
  const tenant = await ctx.store.getTenant(token.tid);
  const policy = await ctx.store.getPolicy(token.tid);
  ctx.metrics.enrollments.inc({ outcome: 'enrolled' });
  ctx.limiter.succeed(address);
  if (outcome.device.x25519PublicKey) {
    await publishServed(ctx, token.tid);
    await ctx.lora.noteProvisioned(req.device, token.tid);
  }
  await audit(ctx, {
    kind: 'enroll',
    actor: req.device,
    subject: tokenId,
    decision: 'allow',
    reason: outcome.reenrolled ? 'REENROLLED' : 'OK',
    details: {
      tid: token.tid,
      name: record.name,
      role: record.role,
      manifestHash: hash,
      manifest: outcome.device.accepted?.hash === hash ? 'accepted' : 'pending_approval',
      jti: issued.claims.jti,
      address,
    },
  });
  return {
    v: 1,
    device: req.device,
    tid: token.tid,
    tenantDid: tenant?.did ?? '',
    issuer: ctx.settings.issuer,
    audiences: { controlPlane: CONTROL_PLANE_AUDIENCE, device: DEVICE_AUDIENCE },
    runtimeToken: issued.token,
    tokenExpiresAtMs: issued.claims.exp * 1000,
    jwks: ctx.issuer.jwks(),
    wssUrl: hubUrl(ctx.settings, token.tid),
    controlPlaneId: ctx.settings.controlPlaneId,
    controlPlaneX25519PublicKey: toBase64Url(ctx.vault.lora.publicKey),
    manifest: { hash, status: outcome.device.accepted?.hash === hash ? 'accepted' : 'pending_approval' },
    heartbeatMs: ctx.settings.heartbeatMs,
    policy: policy?.policy ?? null,
    reenrolled: outcome.reenrolled,
  };
}

// ---------------------------------------------------------------------------------------------
// Fresh tokens after an outage: a stateless challenge, signed by the device key.

const CHALLENGE_CONTEXT = 'outpost/device-challenge/v1';
/** How long a challenge may be answered. */
export const CHALLENGE_TTL_MS = 120_000;

function challengeMac(ctx: ControlPlaneContext, device: string, payload: Uint8Array): Uint8Array {
  return ctx.vault.mac(CHALLENGE_CONTEXT, concatBytes(utf8(device), new Uint8Array([0]), payload));
}

/** A challenge for `device`: 16 random bytes and an expiry, MACed by the control plane (no state kept). */
export function issueDeviceChallenge(
  ctx: ControlPlaneContext,
  req: { device: string },
): { challenge: string; expiresAtMs: number } {
  const expiresAtMs = ctx.clock.nowMs() + CHALLENGE_TTL_MS;
  const payload = new Uint8Array(24);
  payload.set(ctx.random(16), 0);
  new DataView(payload.buffer).setBigUint64(16, BigInt(Math.floor(expiresAtMs)));
  const challenge = `${toBase64Url(payload)}.${toBase64Url(challengeMac(ctx, req.device, payload))}`;
  return { challenge, expiresAtMs };
}

function challengeValid(ctx: ControlPlaneContext, device: string, challenge: string): boolean {
  const [p, m, ...rest] = challenge.split('.');
  if (rest.length > 0 || p === undefined || m === undefined) return false;
  let payload: Uint8Array;
  let mac: Uint8Array;
  try {
    payload = fromBase64Url(p);
    mac = fromBase64Url(m);
  } catch {
    return false; // not a challenge this control plane issued
  }
  if (payload.length !== 24) return false;
  if (!constantTimeEqual(mac, challengeMac(ctx, device, payload))) return false;
  const expiresAtMs = Number(new DataView(payload.buffer, payload.byteOffset, 24).getBigUint64(16));
  return ctx.clock.nowMs() < expiresAtMs;
}

/**
 * A fresh runtime token for a device that proves its key over a challenge. Throws CHALLENGE_INVALID,
 * PROOF_INVALID, DEVICE_UNKNOWN, DEVICE_REVOKED, LOCKED_OUT (all audited).
 */
export async function refreshDeviceToken(
  ctx: ControlPlaneContext,
  req: DeviceTokenRequest,
  address: string,
): Promise<{ runtimeToken: string; tokenExpiresAtMs: number; jwks: JwkSet }> {
  checkNotLockedOut(ctx, address);
  const deny = async (code: ControlPlaneError['code'], message: string) => {
    await audit(ctx, { kind: 'token.device', actor: req.device, subject: req.device, decision: 'deny', reason: code });
    const error = new ControlPlaneError(code, message);
    return code === 'DEVICE_REVOKED' ? error : authFailure(ctx, address, 'device_token', error);
  };
  if (!challengeValid(ctx, req.device, req.challenge)) {
    throw await deny('CHALLENGE_INVALID', 'challenge unknown or expired; ask for a new one');
  }
  const ok = verifyDeviceTokenProof(req.device, req.challenge, fromBase64Url(req.proof));
  if (!ok) throw await deny('PROOF_INVALID', 'the proof does not verify');
  const device = await ctx.store.getDevice(req.device);
  if (!device) throw await deny('DEVICE_UNKNOWN', 'this device is not enrolled');
  if (device.status !== 'active') throw await deny('DEVICE_REVOKED', 'this device is revoked');
  const issued = await issueDeviceToken(ctx, device);
  ctx.limiter.succeed(address);
  await audit(ctx, {
    kind: 'token.device',
    actor: req.device,
    subject: req.device,
    decision: 'allow',
    reason: 'OK',
    details: { jti: issued.claims.jti, via: 'challenge' },
  });
  return { runtimeToken: issued.token, tokenExpiresAtMs: issued.claims.exp * 1000, jwks: ctx.issuer.jwks() };
}
