// A tenant's approval policy (quorum.md §2): who approves physical actuation and how many must. Changed only by
// operators, validated by protocol/quorum.ts, versioned, and pushed to every online device as policy.update.

import { isOutpostError } from '../protocol/errors.ts';
import { parseQuorumPolicy, type QuorumPolicy } from '../protocol/quorum.ts';
import type { PolicyRequest } from './api-schemas.ts';
import { type Principal, requireOperator } from './auth.ts';
import { audit, type ControlPlaneContext } from './context.ts';
import { ControlPlaneError } from './errors.ts';

export interface PolicyView {
  readonly policy: QuorumPolicy | null;
  readonly version: number;
}

export async function getPolicy(ctx: ControlPlaneContext, principal: Principal): Promise<PolicyView> {
  if (principal.kind === 'token' && principal.role !== 'admin' && principal.role !== 'approver') {
    throw new ControlPlaneError('FORBIDDEN', 'the policy is for operators and approvers');
  }
  const p = await ctx.store.getPolicy(principal.tid);
  return { policy: p?.policy ?? null, version: p?.version ?? 0 };
}

/**
 * Replaces the tenant's policy. Throws POLICY_INVALID (quorum.md §2.1: unique ids and keys, k within the
 * approvers, physical_actuation k ≥ 2) and BAD_REQUEST for a stale `ifVersion`.
 */
export async function setPolicy(
  ctx: ControlPlaneContext,
  principal: Principal,
  req: PolicyRequest,
): Promise<PolicyView> {
  requireOperator(principal);
  const current = await ctx.store.getPolicy(principal.tid);
  if (req.ifVersion !== undefined && req.ifVersion !== (current?.version ?? 0)) {
    throw new ControlPlaneError('BAD_REQUEST', `the policy changed meanwhile (now version ${current?.version ?? 0})`, {
      details: { version: current?.version ?? 0 },
    });
  }
  let policy: QuorumPolicy;
  try {
    policy = parseQuorumPolicy({ v: 1, tid: principal.tid, approvers: req.approvers, rules: req.rules });
  } catch (e) {
    if (!isOutpostError(e)) throw e;
    throw new ControlPlaneError('POLICY_INVALID', e.message, { cause: e });
  }
  const version = await ctx.store.setPolicy(principal.tid, policy, ctx.clock.nowMs());
  await audit(ctx, {
    kind: 'policy.set',
    actor: principal.subject,
    subject: principal.tid,
    decision: 'allow',
    reason: 'OK',
    details: {
      version,
      approvers: policy.approvers.map((a) => `${a.id}:${a.publicKey}`),
      rules: policy.rules.map((r) => ('tool' in r ? `tool ${r.tool} k=${r.k}` : `class ${r.safetyClass} k=${r.k}`)),
    },
  });
  for (const s of ctx.sessions.online(principal.tid)) s.send('policy.update', { policy });
  return { policy, version };
}
