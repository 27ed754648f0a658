// Tenants: named by a did:web under the control plane's own (`<cp did>:tenants:<name>`), identified by the
// UUIDv5 of that DID. Creating one mints its first operator key, shown once.

import { tenantIdFromDidWeb } from '../protocol/tokens.ts';
import type { Principal } from './auth.ts';
import { audit, type ControlPlaneContext } from './context.ts';
import { mintOperatorKey } from './credentials.ts';
import { ControlPlaneError } from './errors.ts';
import type { TenantRecord } from './ports.ts';
import { tenantDid } from './settings.ts';

export interface CreatedTenant {
  readonly tenant: TenantRecord;
  /** The operator key's full text: print it once, store it 0600; it is not kept. */
  readonly operatorKey: string;
  readonly keyId: string;
}

/**
 * Creates tenant `name` and its first operator key (`root`: may create further tenants). Throws TENANT_EXISTS,
 * BAD_REQUEST for a bad name.
 */
export async function createTenant(
  ctx: Pick<ControlPlaneContext, 'store' | 'clock' | 'settings' | 'random'> & Partial<ControlPlaneContext>,
  name: string,
  options: { root: boolean; by: string },
): Promise<CreatedTenant> {
  const did = tenantDid(ctx.settings.did, name);
  const tid = tenantIdFromDidWeb(did);
  if (await ctx.store.getTenant(tid)) throw new ControlPlaneError('TENANT_EXISTS', `tenant ${name} exists`);
  const nowMs = ctx.clock.nowMs();
  const tenant: TenantRecord = { tid, did, name, createdMs: nowMs };
  await ctx.store.createTenant(tenant);
  const key = mintOperatorKey(ctx.random);
  await ctx.store.addOperatorKey({
    keyId: key.keyId,
    tid,
    secretHash: key.secretHash,
    label: `first key of ${name}`,
    root: options.root,
    createdMs: nowMs,
  });
  await ctx.store.audit([
    { kind: 'tenant.create', actor: options.by, subject: tid, decision: 'allow', reason: 'OK', details: { did } },
    {
      kind: 'operator_key.create',
      actor: options.by,
      subject: key.keyId,
      decision: 'allow',
      reason: 'OK',
      details: { tid, root: options.root },
    },
  ]);
  return { tenant, operatorKey: key.text, keyId: key.keyId };
}

/** Creates a tenant through the API: only root operator keys may. */
export async function createTenantAs(ctx: ControlPlaneContext, principal: Principal, name: string) {
  if (principal.kind !== 'operator' || !principal.root) {
    await audit(ctx, {
      kind: 'tenant.create',
      actor: principal.subject,
      subject: name,
      decision: 'deny',
      reason: 'FORBIDDEN',
    });
    throw new ControlPlaneError('FORBIDDEN', 'only a root operator key may create tenants');
  }
  return createTenant(ctx, name, { root: false, by: principal.subject });
}
