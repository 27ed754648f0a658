// Quorum approvals for physical actuation (quorum.md): a call that needs them opens an approval request naming the
// exact call; approvers sign it with keys only they hold (the server sees signatures, never keys); once k distinct
// approvals verify against the tenant's policy, the quorum token is assembled and goes with that caller's next
// identical call, once.

import { fromBase64Url, toBase64Url } from '../protocol/bytes.ts';
import type { JsonValue } from '../protocol/canonical-json.ts';
import { canonicalBytes } from '../protocol/canonical-json.ts';
import type { SafetyClass, ToolSpec } from '../protocol/manifest.ts';
import {
  type ApprovalRequest,
  argsHash,
  QUORUM_APPROVAL_CONTEXT,
  QUORUM_DENIAL_CONTEXT,
  quorumTokenToText,
  requiredApprovals,
  verifyQuorum,
} from '../protocol/quorum.ts';
import { verifyEd25519 } from '../protocol/signing.ts';
import type { ApproveRequest } from './api-schemas.ts';
import { type Principal, principalAllows } from './auth.ts';
import { audit, type ControlPlaneContext } from './context.ts';
import { ControlPlaneError } from './errors.ts';
import type { ApprovalRequestRecord, ApprovalStatus, DeviceRecord } from './ports.ts';

/** The signed request of quorum.md §3, rebuilt from a record. */
export function approvalRequestOf(r: ApprovalRequestRecord): ApprovalRequest {
  return {
    v: 1,
    tid: r.tid,
    requestId: r.requestId,
    device: r.device,
    tool: r.tool,
    argsHash: r.argsHash,
    nonce: r.nonce,
    expMs: r.expMs,
  };
}

export interface ApprovalView {
  readonly requestId: string;
  readonly status: ApprovalStatus;
  readonly request: ApprovalRequest;
  readonly deviceName: string;
  readonly tool: string;
  readonly safetyClass: string;
  readonly args: { readonly [key: string]: JsonValue };
  readonly requester: string;
  readonly createdMs: number;
  readonly expMs: number;
  readonly needed: number;
  readonly approvers: readonly string[];
  /** Who refused it, when it is denied. */
  readonly deniedBy: string | null;
}

function statusAt(r: ApprovalRequestRecord, nowMs: number): ApprovalStatus {
  return (r.status === 'pending' || r.status === 'approved') && nowMs >= r.expMs ? 'expired' : r.status;
}

export function approvalView(r: ApprovalRequestRecord, nowMs: number): ApprovalView {
  return {
    requestId: r.requestId,
    status: statusAt(r, nowMs),
    request: approvalRequestOf(r),
    deviceName: r.deviceName,
    tool: r.tool,
    safetyClass: r.safetyClass,
    args: r.args,
    requester: r.requester,
    createdMs: r.createdMs,
    expMs: r.expMs,
    needed: r.k,
    approvers: r.approvals.map((a) => a.approver),
    deniedBy: r.denial?.approver ?? null,
  };
}

/** 16 random bytes as base64url that do not start with `-` or `_`, so the id reads well as a CLI argument. */
function commandLineSafeId(ctx: ControlPlaneContext): string {
  for (;;) {
    const id = toBase64Url(ctx.random(16));
    if (/^[A-Za-z0-9]/.test(id)) return id;
  }
}

/**
 * The approval request for this caller's exact call: the open one if there is, else a new one. Throws
 * POLICY_MISSING when the tenant has no approvers yet.
 */
export async function openApprovalRequest(
  ctx: ControlPlaneContext,
  input: { device: DeviceRecord; tool: ToolSpec; args: { readonly [key: string]: JsonValue }; requester: string },
): Promise<ApprovalRequestRecord> {
  const { device, tool, args, requester } = input;
  const policy = await ctx.store.getPolicy(device.tid);
  if (!policy) {
    throw new ControlPlaneError(
      'POLICY_MISSING',
      'this tenant has no approvers yet: an operator must set the approval policy (outpost controlplane policy add-approver)',
    );
  }
  const nowMs = ctx.clock.nowMs();
  const hash = argsHash(args);
  const key = { tid: device.tid, device: device.device, tool: tool.name, argsHash: hash, requester };
  const open = await ctx.store.findPendingRequest(key, nowMs);
  if (open) return open;
  const record: ApprovalRequestRecord = {
    requestId: commandLineSafeId(ctx),
    tid: device.tid,
    device: device.device,
    deviceName: device.name,
    tool: tool.name,
    safetyClass: tool.safety_class,
    args,
    argsHash: hash,
    nonce: toBase64Url(ctx.random(16)),
    expMs: nowMs + ctx.settings.approvalTtlMs,
    requester,
    createdMs: nowMs,
    k: requiredApprovals(policy.policy, tool.name, tool.safety_class),
    status: 'pending',
    approvals: [],
  };
  await ctx.store.putApprovalRequest(record);
  ctx.metrics.approvals.inc({ event: 'requested' });
  await audit(ctx, {
    kind: 'approval.request',
    actor: requester,
    subject: record.requestId,
    decision: 'hold',
    reason: 'NEEDS_APPROVAL',
    details: { device: device.device, name: device.name, tool: tool.name, argsHash: hash, k: record.k },
  });
  return record;
}

/** A request of the principal's tenant it may see; others are "not found" whatever they are. */
async function visibleRequest(
  ctx: ControlPlaneContext,
  principal: Principal,
  id: string,
): Promise<ApprovalRequestRecord> {
  const r = await ctx.store.getApprovalRequest(id);
  if (!r || r.tid !== principal.tid) throw new ControlPlaneError('APPROVAL_UNKNOWN', 'no such approval request');
  const mayApprove = principalAllows(principal, r.device, r.tool, 'approve');
  const isRequester = principal.kind === 'token' && principal.subject === r.requester;
  if (!mayApprove && !isRequester && !(principal.kind === 'token' && principal.role === 'admin')) {
    throw new ControlPlaneError('FORBIDDEN', 'this needs an approve scope over the tool, or an operator key');
  }
  return r;
}

export async function getApproval(ctx: ControlPlaneContext, principal: Principal, id: string): Promise<ApprovalView> {
  return approvalView(await visibleRequest(ctx, principal, id), ctx.clock.nowMs());
}

export async function listApprovals(
  ctx: ControlPlaneContext,
  principal: Principal,
  status: ApprovalStatus | undefined,
): Promise<ApprovalView[]> {
  if (principal.kind === 'token' && principal.role !== 'admin' && principal.role !== 'approver') {
    throw new ControlPlaneError('FORBIDDEN', 'approvals are listed for operators and approvers');
  }
  const nowMs = ctx.clock.nowMs();
  // Expiry is computed, not stored: ask for pending and approved when filtering on expired.
  const rows = await ctx.store.listApprovalRequests(principal.tid, status === 'expired' ? undefined : status, 500);
  return rows.map((r) => approvalView(r, nowMs)).filter((v) => status === undefined || v.status === status);
}

/**
 * Records one approver's signature over request `id`. Throws APPROVAL_UNKNOWN, FORBIDDEN, APPROVAL_EXPIRED,
 * APPROVAL_CLOSED, APPROVAL_INVALID (approver not in the policy, or the signature does not verify with its key).
 */
export async function approve(
  ctx: ControlPlaneContext,
  principal: Principal,
  id: string,
  req: ApproveRequest,
): Promise<ApprovalView> {
  const r = await visibleRequest(ctx, principal, id);
  if (!principalAllows(principal, r.device, r.tool, 'approve')) {
    throw new ControlPlaneError('FORBIDDEN', 'this needs an approve scope over the tool, or an operator key');
  }
  const nowMs = ctx.clock.nowMs();
  const deny = async (code: ControlPlaneError['code'], message: string) => {
    ctx.metrics.approvals.inc({ event: 'refused' });
    await audit(ctx, {
      kind: 'approval.add',
      actor: `${principal.subject} as ${req.approver}`,
      subject: r.requestId,
      decision: 'deny',
      reason: code,
    });
    return new ControlPlaneError(code, message);
  };
  const status = statusAt(r, nowMs);
  if (status === 'expired') throw await deny('APPROVAL_EXPIRED', 'this approval request has expired');
  if (status !== 'pending') throw await deny('APPROVAL_CLOSED', `this approval request is already ${status}`);
  const policy = await ctx.store.getPolicy(r.tid);
  const member = policy?.policy.approvers.find((a) => a.id === req.approver);
  if (!policy || !member) throw await deny('APPROVAL_INVALID', `${req.approver} is not an approver of this tenant`);
  const request = approvalRequestOf(r);
  const ok = verifyEd25519(
    fromBase64Url(member.publicKey),
    QUORUM_APPROVAL_CONTEXT,
    canonicalBytes(request),
    fromBase64Url(req.sig),
  );
  if (!ok) throw await deny('APPROVAL_INVALID', `the signature does not verify with ${req.approver}'s key`);
  const updated = await ctx.store.addApproval(r.requestId, { approver: req.approver, sig: req.sig, atMs: nowMs });
  if (!updated) throw new ControlPlaneError('APPROVAL_UNKNOWN', 'no such approval request');
  ctx.metrics.approvals.inc({ event: 'approved' });
  await audit(ctx, {
    kind: 'approval.add',
    actor: `${principal.subject} as ${req.approver}`,
    subject: r.requestId,
    decision: 'allow',
    reason: 'OK',
    details: { approvers: updated.approvals.map((a) => a.approver) },
  });
  // Count only approvals that still verify against the current policy (approvers may have been removed).
  const valid = updated.approvals.filter((a) => policy.policy.approvers.some((p) => p.id === a.approver));
  const k = requiredApprovals(policy.policy, r.tool, r.safetyClass as SafetyClass);
  if (valid.length < k) return approvalView(updated, nowMs);
  const token = { request, approvals: valid.slice(0, 16).map((a) => ({ approver: a.approver, sig: a.sig })) };
  // Verify as the device will, so a token that would be refused is never handed out.
  verifyQuorum(token, {
    policy: policy.policy,
    tid: r.tid,
    device: r.device,
    tool: r.tool,
    args: r.args,
    safetyClass: r.safetyClass as SafetyClass,
    clock: ctx.clock,
  });
  const text = quorumTokenToText(token);
  await ctx.store.markApproved(r.requestId, text);
  ctx.metrics.approvals.inc({ event: 'quorum' });
  await audit(ctx, {
    kind: 'approval.quorum',
    actor: principal.subject,
    subject: r.requestId,
    decision: 'allow',
    reason: 'QUORUM_REACHED',
    details: { approvers: token.approvals.map((a) => a.approver), k },
  });
  return approvalView({ ...updated, status: 'approved', quorum: text }, nowMs);
}

/**
 * Records one approver's refusal of request `id` (quorum.md §4.1): signed like an approval under its own context label,
 * so it is attributable and can never count as an approval. The request closes as `denied`. Throws as `approve` does.
 */
export async function denyApproval(
  ctx: ControlPlaneContext,
  principal: Principal,
  id: string,
  req: ApproveRequest,
): Promise<ApprovalView> {
  const r = await visibleRequest(ctx, principal, id);
  if (!principalAllows(principal, r.device, r.tool, 'approve')) {
    throw new ControlPlaneError('FORBIDDEN', 'this needs an approve scope over the tool, or an operator key');
  }
  const nowMs = ctx.clock.nowMs();
  const refuse = async (code: ControlPlaneError['code'], message: string) => {
    await audit(ctx, {
      kind: 'approval.deny',
      actor: `${principal.subject} as ${req.approver}`,
      subject: r.requestId,
      decision: 'deny',
      reason: code,
    });
    return new ControlPlaneError(code, message);
  };
  const status = statusAt(r, nowMs);
  if (status === 'expired') throw await refuse('APPROVAL_EXPIRED', 'this approval request has expired');
  if (status !== 'pending') throw await refuse('APPROVAL_CLOSED', `this approval request is already ${status}`);
  const policy = await ctx.store.getPolicy(r.tid);
  const member = policy?.policy.approvers.find((a) => a.id === req.approver);
  if (!member) throw await refuse('APPROVAL_INVALID', `${req.approver} is not an approver of this tenant`);
  const ok = verifyEd25519(
    fromBase64Url(member.publicKey),
    QUORUM_DENIAL_CONTEXT,
    canonicalBytes(approvalRequestOf(r)),
    fromBase64Url(req.sig),
  );
  if (!ok) throw await refuse('APPROVAL_INVALID', `the denial does not verify with ${req.approver}'s key`);
  const denial = { approver: req.approver, sig: req.sig, atMs: nowMs };
  if (!(await ctx.store.markDenied(r.requestId, denial))) {
    throw await refuse('APPROVAL_CLOSED', 'this approval request was closed meanwhile');
  }
  ctx.metrics.approvals.inc({ event: 'denied' });
  await audit(ctx, {
    kind: 'approval.deny',
    actor: `${principal.subject} as ${req.approver}`,
    subject: r.requestId,
    decision: 'allow',
    reason: 'DENIED',
    details: { device: r.device, tool: r.tool },
  });
  return approvalView({ ...r, status: 'denied', denial }, nowMs);
}
