// Who is calling over HTTP: an operator API key (hashed, compared in constant time) or a runtime token this
// control plane issued. Failures count against the caller's address; too many lock it out.

import { isOutpostError } from '../protocol/errors.ts';
import type { Role } from '../protocol/roles.ts';
import { type Scope, type ScopeAction, scopesAllow } from '../protocol/scopes.ts';
import type { RuntimeClaims } from '../protocol/tokens.ts';
import { audit, type ControlPlaneContext } from './context.ts';
import { constantTimeEqual, isOperatorKeyText, parseOperatorKey } from './credentials.ts';
import { ControlPlaneError } from './errors.ts';
import { CONTROL_PLANE_AUDIENCE } from './settings.ts';

export type Principal =
  | {
      readonly kind: 'operator';
      readonly tid: string;
      readonly keyId: string;
      readonly root: boolean;
      /** How audit entries name it. */
      readonly subject: string;
    }
  | {
      readonly kind: 'token';
      readonly tid: string;
      readonly subject: string;
      readonly role: Role;
      readonly scopes: readonly Scope[];
      readonly claims: RuntimeClaims;
    };

/** The bearer credential of an `Authorization` header, or undefined. */
export function bearer(header: string | null | undefined): string | undefined {
  if (typeof header !== 'string') return undefined;
  const m = /^Bearer ([\x21-\x7e]{1,8192})$/.exec(header.trim());
  return m?.[1];
}

function lockedOut(waitMs: number): ControlPlaneError {
  return new ControlPlaneError('LOCKED_OUT', 'too many failed attempts from this address; try again later', {
    details: { retryAfterMs: waitMs },
  });
}

/** Throws LOCKED_OUT when `address` is locked out. */
export function checkNotLockedOut(ctx: ControlPlaneContext, address: string): void {
  const wait = ctx.limiter.check(address);
  if (wait > 0) throw lockedOut(wait);
}

/** Counts an authentication failure of `kind` from `address`, audits it, and returns the error to throw. */
export async function authFailure(
  ctx: ControlPlaneContext,
  address: string,
  kind: string,
  error: ControlPlaneError,
): Promise<ControlPlaneError> {
  const lockout = ctx.limiter.fail(address);
  ctx.metrics.authFailures.inc({ kind });
  await audit(ctx, {
    kind: 'auth',
    actor: `address:${address}`,
    subject: kind,
    decision: 'deny',
    reason: error.code,
    details: { lockedOutMs: lockout },
  });
  return lockout > 0 ? lockedOut(lockout) : error;
}

/**
 * Authenticates a bearer credential. Throws UNAUTHENTICATED (no or bad credential), LOCKED_OUT, TOKEN_REVOKED.
 * A token must be for the control plane's audience; machine roles (device, gateway) are accepted only when
 * `allowMachine` (device endpoints), and their device must be enrolled and active.
 */
export async function authenticate(
  ctx: ControlPlaneContext,
  authorization: string | null | undefined,
  address: string,
  options: { allowMachine?: boolean } = {},
): Promise<Principal> {
  checkNotLockedOut(ctx, address);
  const credential = bearer(authorization);
  if (credential === undefined) {
    throw new ControlPlaneError('UNAUTHENTICATED', 'send Authorization: Bearer <operator key or token>');
  }
  if (isOperatorKeyText(credential)) {
    const parsed = parseOperatorKey(credential);
    const record = parsed ? await ctx.store.getOperatorKey(parsed.keyId) : undefined;
    // Compare even when the key id is unknown, so timing does not tell which ids exist.
    const ok = constantTimeEqual(parsed?.secretHash ?? new Uint8Array(32), record?.secretHash ?? new Uint8Array(32));
    if (!parsed || !record || !ok || record.revokedMs !== undefined) {
      throw await authFailure(
        ctx,
        address,
        'operator_key',
        new ControlPlaneError('UNAUTHENTICATED', 'operator key refused'),
      );
    }
    ctx.limiter.succeed(address);
    return {
      kind: 'operator',
      tid: record.tid,
      keyId: record.keyId,
      root: record.root,
      subject: `operator:${record.keyId}`,
    };
  }
  let verified: Awaited<ReturnType<typeof ctx.issuer.verify>>;
  try {
    verified = await ctx.issuer.verify(credential, { audience: CONTROL_PLANE_AUDIENCE });
  } catch (e) {
    const code = isOutpostError(e) ? e.code : 'TOKEN_INVALID';
    throw await authFailure(
      ctx,
      address,
      'token',
      new ControlPlaneError(code === 'TOKEN_REVOKED' ? 'TOKEN_REVOKED' : 'UNAUTHENTICATED', `token refused (${code})`, {
        details: { reason: code },
      }),
    );
  }
  const { claims } = verified;
  if (claims.role === 'device' || claims.role === 'gateway') {
    if (!options.allowMachine) throw new ControlPlaneError('FORBIDDEN', 'device tokens cannot call this endpoint');
    const device = await ctx.store.getDevice(claims.sub);
    if (!device || device.tid !== claims.tid) throw new ControlPlaneError('UNAUTHENTICATED', 'unknown device');
    if (device.status !== 'active') throw new ControlPlaneError('DEVICE_REVOKED', 'this device is revoked');
  }
  ctx.limiter.succeed(address);
  return {
    kind: 'token',
    tid: claims.tid,
    subject: claims.sub,
    role: claims.role,
    scopes: verified.scopes,
    claims,
  };
}

/** Operator keys, and admin tokens with an admin scope over the tenant's devices. Throws FORBIDDEN. */
export function requireOperator(p: Principal): void {
  if (p.kind === 'operator') return;
  const adminAll = scopesAllow(p.scopes, { tenant: p.tid, device: '*', tool: '*', action: 'admin' });
  if (p.role === 'admin' && (adminAll || p.scopes.some((s) => s.action === 'admin' && s.device === '*'))) return;
  throw new ControlPlaneError('FORBIDDEN', 'this needs an operator key or an admin token');
}

/** True when the principal may take `action` on (device, tool) of its tenant. Operators may do anything. */
export function principalAllows(p: Principal, device: string, tool: string, action: ScopeAction): boolean {
  if (p.kind === 'operator') return true;
  return scopesAllow(p.scopes, { tenant: p.tid, device, tool, action });
}
