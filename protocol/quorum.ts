// Quorum tokens for physical actuation: a tenant's approval policy, approval requests signed by k distinct
// approvers, the compact binary encoding (LoRa-sized), and offline verification (docs/protocol/quorum.md).

import { createHash, timingSafeEqual } from 'node:crypto';
import { z } from 'zod';
import { fromBase64Url, toBase64Url, toHex, utf8 } from './bytes.ts';
import { canonicalBytes } from './canonical-json.ts';
import type { Clock } from './clock.ts';
import { didKeyFromEd25519, ed25519FromDidKey } from './did-key.ts';
import { ProtocolError } from './errors.ts';
import { base64UrlBytes, DeviceId, MAX_TOOL_NAME_LENGTH, TenantId, ToolName } from './identifiers.ts';
import { SafetyClass } from './manifest.ts';
import { isToolPattern, toolPatternMatches } from './scopes.ts';
import { ed25519KeyPair, signEd25519, verifyEd25519 } from './signing.ts';

/** Context label of an approver's signature over an approval request (quorum.md §4). */
export const QUORUM_APPROVAL_CONTEXT = 'outpost/quorum-approval/v1';
/** Context label of an approver's refusal of an approval request (quorum.md §4.1): never usable as an approval. */
export const QUORUM_DENIAL_CONTEXT = 'outpost/quorum-denial/v1';
/** Context label of an approver's endorsement of a policy update (quorum.md §2.3). */
export const QUORUM_POLICY_UPDATE_CONTEXT = 'outpost/quorum-policy-update/v1';
/** Version byte of the binary encoding and `v` of the JSON request (quorum.md §5). */
export const QUORUM_VERSION = 1;
/** Least k for physical_actuation, whatever the policy says (quorum.md §2.2). */
export const MIN_PHYSICAL_K = 2;
export const MAX_APPROVERS = 32;
export const MAX_APPROVALS = 16;
export const MAX_RULES = 64;
/** Default longest time an approval may remain valid, counted from verification. */
export const DEFAULT_MAX_QUORUM_TTL_MS = 3_600_000;
/** Largest possible binary token: fixed 121 B + tool 64 B + 16 × (1 + 32 + 64) B = 1737 B. */
export const MAX_QUORUM_TOKEN_BYTES = 121 + MAX_TOOL_NAME_LENGTH + MAX_APPROVALS * (1 + 32 + 64);

/** Approver ids: 1..32 characters of `[a-z0-9._-]`, starting with a letter or digit. */
export const ApproverId = z.string().regex(/^[a-z0-9][a-z0-9._-]{0,31}$/, 'bad approver id');

// ---------------------------------------------------------------------------------------------
// Policy (quorum.md §2)

const Rule = z.union([
  z.strictObject({ tool: z.string().refine(isToolPattern, 'bad tool pattern'), k: z.int().min(1).max(MAX_APPROVALS) }),
  z.strictObject({ safetyClass: SafetyClass, k: z.int().min(1).max(MAX_APPROVALS) }),
]);

export const QuorumPolicy = z
  .strictObject({
    v: z.literal(QUORUM_VERSION),
    tid: TenantId,
    approvers: z
      .array(z.strictObject({ id: ApproverId, publicKey: base64UrlBytes(32) }))
      .min(1)
      .max(MAX_APPROVERS),
    rules: z.array(Rule).max(MAX_RULES),
  })
  .superRefine((p, ctx) => {
    if (new Set(p.approvers.map((a) => a.id)).size !== p.approvers.length) {
      ctx.addIssue({ code: 'custom', message: 'duplicate approver id' });
    }
    // One key, one vote: the same key under two ids would let one person count twice.
    if (new Set(p.approvers.map((a) => a.publicKey)).size !== p.approvers.length) {
      ctx.addIssue({ code: 'custom', message: 'two approvers share a public key' });
    }
    for (const r of p.rules) {
      if (r.k > p.approvers.length) ctx.addIssue({ code: 'custom', message: 'a rule needs more approvers than exist' });
      if ('safetyClass' in r && r.safetyClass === 'physical_actuation' && r.k < MIN_PHYSICAL_K) {
        ctx.addIssue({ code: 'custom', message: `physical_actuation needs k >= ${MIN_PHYSICAL_K}` });
      }
    }
  });
export type QuorumPolicy = z.infer<typeof QuorumPolicy>;

/** Validates a policy value. Throws QUORUM_POLICY_INVALID. */
export function parseQuorumPolicy(value: unknown): QuorumPolicy {
  const r = QuorumPolicy.safeParse(value);
  if (!r.success) {
    throw new ProtocolError('QUORUM_POLICY_INVALID', `quorum policy: ${r.error.issues[0]?.message ?? 'invalid'}`);
  }
  return r.data;
}

/**
 * Approvals a call needs: the largest k of every rule matching the tool or its class, and never less than
 * MIN_PHYSICAL_K for physical_actuation. 0 means no quorum is required.
 */
export function requiredApprovals(policy: QuorumPolicy, tool: string, safetyClass: SafetyClass): number {
  let k = safetyClass === 'physical_actuation' ? MIN_PHYSICAL_K : 0;
  for (const r of policy.rules) {
    const matches = 'tool' in r ? toolPatternMatches(r.tool, tool) : r.safetyClass === safetyClass;
    if (matches) k = Math.max(k, r.k);
  }
  return k;
}

// ---------------------------------------------------------------------------------------------
// Requests, approvals and tokens (quorum.md §3–§4)

/**
 * base64url(SHA-256(canonical bytes of args)), 43 characters: equal arguments hash equal whatever their member
 * order. Throws CANON_* for values JSON cannot hold.
 */
export function argsHash(args: unknown): string {
  return toBase64Url(createHash('sha256').update(canonicalBytes(args)).digest());
}

export const ApprovalRequest = z.strictObject({
  v: z.literal(QUORUM_VERSION),
  tid: TenantId,
  /** 16 random bytes, base64url: names the request in audit and UI. */
  requestId: base64UrlBytes(16),
  device: DeviceId,
  tool: ToolName,
  argsHash: base64UrlBytes(32),
  /** 16 random bytes, base64url: the device remembers it until expMs so the token is single use. */
  nonce: base64UrlBytes(16),
  /** Expiry, ms since the Unix epoch (< 2^48). */
  expMs: z
    .int()
    .min(1)
    .max(2 ** 48 - 1),
});
export type ApprovalRequest = z.infer<typeof ApprovalRequest>;

export const Approval = z.strictObject({ approver: ApproverId, sig: base64UrlBytes(64) });
export type Approval = z.infer<typeof Approval>;

export const QuorumToken = z.strictObject({
  request: ApprovalRequest,
  approvals: z.array(Approval).min(1).max(MAX_APPROVALS),
});
export type QuorumToken = z.infer<typeof QuorumToken>;

function malformed(why: string, cause?: unknown): ProtocolError {
  return new ProtocolError('QUORUM_MALFORMED', `quorum token: ${why}`, cause === undefined ? {} : { cause });
}

/** Signs `request` as approver `approverId` with its 32-byte Ed25519 seed. */
export function signApproval(request: ApprovalRequest, approverId: string, seed: Uint8Array): Approval {
  const checked = ApprovalRequest.safeParse(request);
  if (!checked.success) throw malformed(checked.error.issues[0]?.message ?? 'bad request');
  if (!ApproverId.safeParse(approverId).success) throw malformed('bad approver id');
  return {
    approver: approverId,
    sig: toBase64Url(signEd25519(seed, QUORUM_APPROVAL_CONTEXT, canonicalBytes(checked.data))),
  };
}

/** The public key an approver seed belongs to, base64url (for building policies). */
export function approverPublicKey(seed: Uint8Array): string {
  return toBase64Url(ed25519KeyPair(seed).publicKey);
}

// ---------------------------------------------------------------------------------------------
// Binary encoding (quorum.md §5)

function uuidBytes(uuid: string): Uint8Array {
  return new Uint8Array(Buffer.from(uuid.replaceAll('-', ''), 'hex'));
}

function uuidText(b: Uint8Array): string {
  const h = toHex(b);
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

/** Encodes a token (validated first; QUORUM_MALFORMED) in the binary form of quorum.md §5. */
export function encodeQuorumToken(token: QuorumToken): Uint8Array {
  const r = QuorumToken.safeParse(token);
  if (!r.success) throw malformed(r.error.issues[0]?.message ?? 'invalid');
  const { request, approvals } = r.data;
  const tool = utf8(request.tool);
  const out: number[] = [QUORUM_VERSION];
  const push = (b: Uint8Array) => {
    for (const x of b) out.push(x);
  };
  push(uuidBytes(request.tid));
  push(fromBase64Url(request.requestId));
  push(ed25519FromDidKey(request.device));
  push(fromBase64Url(request.argsHash));
  push(fromBase64Url(request.nonce));
  const exp = new Uint8Array(6);
  new DataView(exp.buffer).setUint16(0, Math.floor(request.expMs / 2 ** 32));
  new DataView(exp.buffer).setUint32(2, request.expMs % 2 ** 32);
  push(exp);
  out.push(tool.length);
  push(tool);
  out.push(approvals.length);
  for (const a of approvals) {
    const id = utf8(a.approver);
    out.push(id.length);
    push(id);
    push(fromBase64Url(a.sig));
  }
  return Uint8Array.from(out);
}

/** Decodes the binary form. Throws QUORUM_MALFORMED on any deviation, including trailing bytes. */
export function decodeQuorumToken(bytes: Uint8Array): QuorumToken {
  if (!(bytes instanceof Uint8Array)) throw malformed('input must be bytes');
  if (bytes.length > MAX_QUORUM_TOKEN_BYTES) throw malformed('too large');
  let at = 0;
  const take = (n: number): Uint8Array => {
    if (at + n > bytes.length) throw malformed('truncated');
    const b = bytes.subarray(at, at + n);
    at += n;
    return b;
  };
  const version = take(1)[0];
  if (version !== QUORUM_VERSION) throw malformed(`unknown version ${version}`);
  const tid = uuidText(take(16));
  const requestId = toBase64Url(take(16));
  const device = didKeyFromEd25519(take(32));
  const hash = toBase64Url(take(32));
  const nonce = toBase64Url(take(16));
  const exp = take(6);
  const expMs =
    new DataView(exp.buffer, exp.byteOffset, 6).getUint16(0) * 2 ** 32 +
    new DataView(exp.buffer, exp.byteOffset, 6).getUint32(2);
  const tool = Buffer.from(take(take(1)[0]!)).toString('latin1');
  const count = take(1)[0]!;
  const approvals: Approval[] = [];
  for (let i = 0; i < count; i++) {
    const approver = Buffer.from(take(take(1)[0]!)).toString('latin1');
    approvals.push({ approver, sig: toBase64Url(take(64)) });
  }
  if (at !== bytes.length) throw malformed('trailing bytes');
  const token = {
    request: { v: QUORUM_VERSION, tid, requestId, device, tool, argsHash: hash, nonce, expMs },
    approvals,
  };
  const r = QuorumToken.safeParse(token);
  if (!r.success) throw malformed(r.error.issues[0]?.message ?? 'invalid');
  return r.data;
}

/** The token as base64url text, for JSON carriers (the `quorum` member of tool.call). */
export function quorumTokenToText(token: QuorumToken): string {
  return toBase64Url(encodeQuorumToken(token));
}

/** Decodes base64url text of the binary form. Throws QUORUM_MALFORMED. */
export function quorumTokenFromText(text: string): QuorumToken {
  if (typeof text !== 'string' || text.length > Math.ceil((MAX_QUORUM_TOKEN_BYTES * 4) / 3))
    throw malformed('bad text');
  let bytes: Uint8Array;
  try {
    bytes = fromBase64Url(text, 'quorum token');
  } catch (cause) {
    throw malformed('not canonical base64url', cause);
  }
  return decodeQuorumToken(bytes);
}

// ---------------------------------------------------------------------------------------------
// Verification (quorum.md §6)

export interface VerifyQuorumOptions {
  readonly policy: QuorumPolicy;
  /** The tenant, device, tool and exact arguments of the call being gated. */
  readonly tid: string;
  readonly device: string;
  readonly tool: string;
  readonly args: unknown;
  /** The tool's class from the manifest; default physical_actuation (the strictest). */
  readonly safetyClass?: SafetyClass;
  readonly clock: Clock;
  /** Refuse tokens expiring later than now + this (default 1 h). */
  readonly maxTtlMs?: number;
}

export interface VerifiedQuorum {
  /** The caller must remember (device, nonce) until expMs and refuse it again: single use. */
  readonly nonce: string;
  readonly requestId: string;
  readonly expMs: number;
  /** Distinct approvers whose signatures verified, in token order. */
  readonly approvers: readonly string[];
}

function equalText(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

/**
 * Verifies a quorum token offline (quorum.md §6) for one exact call. Accepts the token as a value, its
 * base64url text or its bytes. Throws QUORUM_* codes; returns the nonce for single-use enforcement.
 */
export function verifyQuorum(token: QuorumToken | string | Uint8Array, options: VerifyQuorumOptions): VerifiedQuorum {
  let t: QuorumToken;
  if (typeof token === 'string') t = quorumTokenFromText(token);
  else if (token instanceof Uint8Array) t = decodeQuorumToken(token);
  else {
    const r = QuorumToken.safeParse(token);
    if (!r.success) throw malformed(r.error.issues[0]?.message ?? 'invalid');
    t = r.data;
  }
  const { clock } = options;
  const policy = parseQuorumPolicy(options.policy);
  const req = t.request;
  if (policy.tid !== options.tid || req.tid !== options.tid) {
    throw new ProtocolError('QUORUM_WRONG_TENANT', 'token or policy is for another tenant');
  }
  if (req.device !== options.device) throw new ProtocolError('QUORUM_WRONG_DEVICE', 'token is for another device');
  if (req.tool !== options.tool) throw new ProtocolError('QUORUM_WRONG_TOOL', 'token is for another tool');
  let presented: string;
  try {
    presented = argsHash(options.args);
  } catch (cause) {
    throw new ProtocolError('QUORUM_ARGS_MISMATCH', 'arguments are not canonical JSON', { cause });
  }
  if (!equalText(presented, req.argsHash)) {
    throw new ProtocolError('QUORUM_ARGS_MISMATCH', 'token approves other arguments');
  }
  const nowMs = clock.nowMs();
  if (nowMs >= req.expMs)
    throw new ProtocolError('QUORUM_EXPIRED', 'token has expired', { details: { expMs: req.expMs } });
  if (req.expMs - nowMs > (options.maxTtlMs ?? DEFAULT_MAX_QUORUM_TTL_MS)) {
    throw new ProtocolError('QUORUM_EXPIRY_TOO_FAR', 'token expires too far in the future');
  }
  const seen = new Set<string>();
  const message = canonicalBytes(req);
  for (const a of t.approvals) {
    if (seen.has(a.approver)) {
      throw new ProtocolError('QUORUM_DUPLICATE_APPROVER', 'an approver signed twice', {
        details: { approver: a.approver },
      });
    }
    seen.add(a.approver);
    const member = policy.approvers.find((p) => p.id === a.approver);
    if (!member) {
      throw new ProtocolError('QUORUM_UNKNOWN_APPROVER', 'approver is not in the policy', {
        details: { approver: a.approver },
      });
    }
    if (!verifyEd25519(fromBase64Url(member.publicKey), QUORUM_APPROVAL_CONTEXT, message, fromBase64Url(a.sig))) {
      throw new ProtocolError('QUORUM_BAD_SIGNATURE', 'an approval signature does not verify', {
        details: { approver: a.approver },
      });
    }
  }
  const k = requiredApprovals(policy, options.tool, options.safetyClass ?? 'physical_actuation');
  if (seen.size < k) {
    throw new ProtocolError('QUORUM_TOO_FEW', `${seen.size} of ${k} required approvals`, {
      details: { k, have: seen.size },
    });
  }
  return { nonce: req.nonce, requestId: req.requestId, expMs: req.expMs, approvers: [...seen] };
}

// ---------------------------------------------------------------------------------------------
// Policy updates (quorum.md §2.3): whoever delivers a policy (the control plane) may only tighten it; anything else
// needs the endorsement of the installed policy's own approvers, so the control plane cannot appoint approvers.

/** A policy as a device holds it, with the serial of the last endorsement it accepted (0 before any). */
export interface InstalledPolicy {
  readonly policy: QuorumPolicy;
  readonly serial: number;
  /**
   * True once a policy with at least MIN_PHYSICAL_K approvers was ever installed on this device. Until then the
   * installed policy is not yet in force and any valid one replaces it (§2.3); after, never again — otherwise a
   * control plane could shrink a policy below the threshold (a tightening) and then grow it with its own keys.
   */
  readonly wasInForce?: boolean;
}

/** Approvals of the installed policy's approvers over { v, tid, serial, policy } of a new policy. */
export const PolicyEndorsement = z.strictObject({
  /** Greater than the serial of every endorsement the device accepted before: an endorsement is used once. */
  serial: z
    .int()
    .min(1)
    .max(2 ** 48 - 1),
  approvals: z.array(Approval).min(1).max(MAX_APPROVALS),
});
export type PolicyEndorsement = z.infer<typeof PolicyEndorsement>;

function updateSigningBytes(policy: QuorumPolicy, serial: number): Uint8Array {
  return canonicalBytes({ v: QUORUM_VERSION, tid: policy.tid, serial, policy });
}

/** Signs, as approver `approverId` of the installed policy, that `policy` may replace it under `serial`. */
export function signPolicyUpdate(policy: QuorumPolicy, serial: number, approverId: string, seed: Uint8Array): Approval {
  const checked = parseQuorumPolicy(policy);
  if (!PolicyEndorsement.shape.serial.safeParse(serial).success) throw malformed('bad endorsement serial');
  if (!ApproverId.safeParse(approverId).success) throw malformed('bad approver id');
  return {
    approver: approverId,
    sig: toBase64Url(signEd25519(seed, QUORUM_POLICY_UPDATE_CONTEXT, updateSigningBytes(checked, serial))),
  };
}

const selectorOf = (r: QuorumPolicy['rules'][number]): string =>
  'tool' in r ? `tool:${r.tool}` : `class:${r.safetyClass}`;

/**
 * True when `next` trusts no key `current` does not and demands at least as many approvals for every call: its
 * approver keys are a subset of `current`'s, and every rule of `current` is in `next` with a k at least as large.
 * (requiredApprovals takes the largest k of the matching rules, so it can then only grow.)
 */
export function isPolicyNoWeaker(current: QuorumPolicy, next: QuorumPolicy): boolean {
  if (current.tid !== next.tid) return false;
  const keys = new Set(current.approvers.map((a) => a.publicKey));
  if (!next.approvers.every((a) => keys.has(a.publicKey))) return false;
  const nextK = new Map<string, number>();
  for (const r of next.rules) nextK.set(selectorOf(r), Math.max(nextK.get(selectorOf(r)) ?? 0, r.k));
  return current.rules.every((r) => (nextK.get(selectorOf(r)) ?? 0) >= r.k);
}

/** Endorsements a widening update needs: the strictest k the installed policy demands of any call. */
export function policyUpdateQuorum(policy: QuorumPolicy): number {
  return Math.max(MIN_PHYSICAL_K, ...policy.rules.map((r) => r.k));
}

/**
 * Decides whether `next` may replace the installed policy (quorum.md §2.3) and returns what to install. An update
 * that isPolicyNoWeaker is accepted as is (the serial stays). Any other needs `endorsement`: a serial above the
 * installed one and signatures of at least policyUpdateQuorum(installed) distinct approvers of the installed policy
 * over exactly `next`. Throws QUORUM_POLICY_INVALID, QUORUM_WRONG_TENANT, QUORUM_POLICY_UNAUTHORIZED (a widening
 * without endorsement), QUORUM_MALFORMED, QUORUM_POLICY_STALE, QUORUM_DUPLICATE_APPROVER, QUORUM_UNKNOWN_APPROVER,
 * QUORUM_BAD_SIGNATURE, QUORUM_TOO_FEW.
 */
export function checkPolicyUpdate(installed: InstalledPolicy, next: unknown, endorsement?: unknown): InstalledPolicy {
  const current = parseQuorumPolicy(installed.policy);
  if (!Number.isSafeInteger(installed.serial) || installed.serial < 0) throw malformed('bad installed serial');
  const policy = parseQuorumPolicy(next);
  if (policy.tid !== current.tid) throw new ProtocolError('QUORUM_WRONG_TENANT', 'policy is for another tenant');
  // A policy with fewer approvers than any physical quorum needs, on a device that never had one in force,
  // authorises nothing yet: replacing it is still the first use (§2.3), as an operator adds approvers one by one.
  if (current.approvers.length < MIN_PHYSICAL_K && installed.wasInForce !== true) {
    return { policy, serial: installed.serial };
  }
  if (endorsement === undefined) {
    if (isPolicyNoWeaker(current, policy)) return { policy, serial: installed.serial };
    throw new ProtocolError(
      'QUORUM_POLICY_UNAUTHORIZED',
      'the update trusts new keys or lowers a requirement; it needs the approvers’ endorsement',
    );
  }
  const e = PolicyEndorsement.safeParse(endorsement);
  if (!e.success) throw malformed(`policy endorsement: ${e.error.issues[0]?.message ?? 'invalid'}`);
  if (e.data.serial <= installed.serial) {
    throw new ProtocolError('QUORUM_POLICY_STALE', 'endorsement serial is not above the installed one', {
      details: { serial: e.data.serial, installed: installed.serial },
    });
  }
  const message = updateSigningBytes(policy, e.data.serial);
  const seen = new Set<string>();
  for (const a of e.data.approvals) {
    if (seen.has(a.approver)) {
      throw new ProtocolError('QUORUM_DUPLICATE_APPROVER', 'an approver endorsed twice', {
        details: { approver: a.approver },
      });
    }
    seen.add(a.approver);
    const member = current.approvers.find((p) => p.id === a.approver);
    if (!member) {
      throw new ProtocolError('QUORUM_UNKNOWN_APPROVER', 'endorser is not an approver of the installed policy', {
        details: { approver: a.approver },
      });
    }
    if (!verifyEd25519(fromBase64Url(member.publicKey), QUORUM_POLICY_UPDATE_CONTEXT, message, fromBase64Url(a.sig))) {
      throw new ProtocolError('QUORUM_BAD_SIGNATURE', 'an endorsement does not verify', {
        details: { approver: a.approver },
      });
    }
  }
  const k = policyUpdateQuorum(current);
  if (seen.size < k) {
    throw new ProtocolError('QUORUM_TOO_FEW', `${seen.size} of ${k} required endorsements`, {
      details: { k, have: seen.size },
    });
  }
  return { policy, serial: e.data.serial };
}
