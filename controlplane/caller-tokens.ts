// Tokens for people and services (MCP callers, approvers, admins): minted by an operator for its tenant, with
// scopes that never leave the tenant; revocable by jti. Revocations reach the tenant's devices as `revoke` envelopes.

import { isOutpostError } from '../protocol/errors.ts';
import { formatScope, parseScope, type Scope } from '../protocol/scopes.ts';
import type { MintTokenRequest } from './api-schemas.ts';
import { type Principal, requireOperator } from './auth.ts';
import { audit, type ControlPlaneContext } from './context.ts';
import { ControlPlaneError } from './errors.ts';
import { CONTROL_PLANE_AUDIENCE } from './settings.ts';

/** Default scopes of a role over every device and tool of the tenant. */
export function defaultScopes(tid: string, role: MintTokenRequest['role']): Scope[] {
  const all = (action: Scope['action']): Scope => ({ tenant: tid, device: '*', tool: '*', action });
  switch (role) {
    case 'viewer':
    case 'operator':
    case 'actuator':
      return [all('call'), all('read')];
    case 'approver':
      return [all('approve'), all('read')];
    case 'admin':
      return [all('admin'), all('read')];
  }
}

export interface MintedCallerToken {
  readonly token: string;
  readonly jti: string;
  readonly subject: string;
  readonly role: string;
  readonly scopes: readonly string[];
  readonly expiresAtMs: number;
}

/** Mints a caller token for the principal's tenant. Throws FORBIDDEN, BAD_REQUEST (a scope outside the tenant). */
export async function mintCallerToken(
  ctx: ControlPlaneContext,
  principal: Principal,
  req: MintTokenRequest,
): Promise<MintedCallerToken> {
  requireOperator(principal);
  let scopes: Scope[];
  try {
    scopes = req.scopes ? req.scopes.map(parseScope) : defaultScopes(principal.tid, req.role);
  } catch (e) {
    if (!isOutpostError(e)) throw e;
    throw new ControlPlaneError('BAD_REQUEST', e.message, { cause: e });
  }
  if (scopes.some((s) => s.tenant !== principal.tid)) {
    throw new ControlPlaneError('BAD_REQUEST', 'a scope names another tenant');
  }
  const text = [...new Set(scopes.map(formatScope))];
  const ttlMs = Math.min((req.ttlSeconds ?? 3600) * 1000, ctx.settings.maxCallerTokenTtlMs);
  const issued = await ctx.issuer.issue(
    { aud: CONTROL_PLANE_AUDIENCE, sub: req.subject, tid: principal.tid, role: req.role, scope: text.join(' ') },
    ttlMs,
  );
  await audit(ctx, {
    kind: 'token.mint',
    actor: principal.subject,
    subject: req.subject,
    decision: 'allow',
    reason: 'OK',
    details: { role: req.role, scopes: text, jti: issued.claims.jti, exp: issued.claims.exp },
  });
  return {
    token: issued.token,
    jti: issued.claims.jti,
    subject: req.subject,
    role: req.role,
    scopes: text,
    expiresAtMs: issued.claims.exp * 1000,
  };
}

/** Revokes a token id until `untilMs` (default: the longest token lifetime from now); tells online devices. */
export async function revokeToken(
  ctx: ControlPlaneContext,
  principal: Principal,
  req: { jti: string; untilMs?: number; reason?: string },
): Promise<{ seq: number; untilMs: number }> {
  requireOperator(principal);
  const nowMs = ctx.clock.nowMs();
  const untilMs = req.untilMs ?? nowMs + ctx.settings.rotation.maxTokenLifetimeMs;
  const r = await ctx.store.addRevocation({
    tid: principal.tid,
    kind: 'token',
    subject: req.jti,
    untilMs,
    atMs: nowMs,
    reason: req.reason ?? 'revoked by operator',
  });
  ctx.issuer.revokeJti(req.jti, untilMs);
  await audit(ctx, {
    kind: 'token.revoke',
    actor: principal.subject,
    subject: req.jti,
    decision: 'allow',
    reason: 'OK',
    details: { untilMs },
  });
  for (const s of ctx.sessions.online(principal.tid)) s.send('revoke', { kind: 'token', jti: req.jti, untilMs });
  return { seq: r.seq, untilMs };
}
