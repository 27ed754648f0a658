// Operator views and actions on devices: list and show (online state, accepted and pending manifests with what
// changed), accept a pending capability change, revoke. Revocation closes the session, refuses the device's tokens
// and enrollment, and is published to gateways (a `revoke` envelope now, GET /v1/revocations for catching up).

import type { RadioHealthReport } from '../protocol/lora-relay.ts';
import type { Principal } from './auth.ts';
import { requireOperator } from './auth.ts';
import { audit, type ControlPlaneContext } from './context.ts';
import { ControlPlaneError } from './errors.ts';
import { diffManifests } from './manifest-diff.ts';
import type { DeviceRecord, RevocationRecord } from './ports.ts';

export interface DeviceView {
  readonly device: string;
  readonly name: string;
  readonly tid: string;
  readonly role: string;
  readonly status: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly enrolledMs: number;
  readonly lastSeenMs: number | null;
  readonly revokedMs: number | null;
  readonly online: boolean;
  readonly session: {
    readonly connectedAtMs: number;
    readonly manifestHash: string;
    readonly callable: boolean;
  } | null;
  readonly manifest: {
    readonly accepted: string | null;
    readonly pending: {
      readonly hash: string;
      readonly sinceMs: number;
      readonly added: string[];
      readonly removed: string[];
      readonly reclassed: string[];
      readonly downgrades: string[];
      readonly renamed: boolean;
    } | null;
  };
  readonly tools: readonly { readonly name: string; readonly safetyClass: string }[];
  readonly streams: readonly string[];
  readonly x25519PublicKey: string | null;
  /** Reachable over LoRa now (no WSS session, a gateway of the tenant online); where it was heard last. */
  readonly lora: {
    readonly reachable: true;
    readonly heardVia: { readonly gateway: string; readonly radio: string; readonly atMs: number } | null;
  } | null;
  /** A gateway's latest radio-health report (lora-relay.md §6a), kept after it disconnects; `atMs` is when it came. */
  readonly gateway: {
    readonly atMs: number;
    readonly radios: readonly RadioHealthReport[];
    readonly uplinkBacklog: number;
    readonly downlinkBacklog: number;
  } | null;
}

/** The operator's view of one device record. */
export function deviceView(ctx: ControlPlaneContext, d: DeviceRecord): DeviceView {
  const session = ctx.sessions.get(d.device);
  const live = session && session.tid === d.tid ? session : undefined;
  const diff = d.pending ? diffManifests(d.accepted?.manifest, d.pending.manifest) : undefined;
  return {
    device: d.device,
    name: d.name,
    tid: d.tid,
    role: d.role,
    status: d.status,
    labels: d.labels,
    enrolledMs: d.enrolledMs,
    lastSeenMs: d.lastSeenMs ?? null,
    revokedMs: d.revokedMs ?? null,
    online: live !== undefined,
    session: live
      ? {
          connectedAtMs: live.connectedAtMs,
          manifestHash: live.manifestHash(),
          callable: d.accepted !== undefined && live.manifestHash() === d.accepted.hash,
        }
      : null,
    manifest: {
      accepted: d.accepted?.hash ?? null,
      pending: d.pending && diff ? { hash: d.pending.hash, sinceMs: d.pending.sinceMs, ...diff.summary } : null,
    },
    tools: (d.accepted?.manifest.tools ?? []).map((t) => ({ name: t.name, safetyClass: t.safety_class })),
    streams: (d.accepted?.manifest.streams ?? []).map((s) => s.name),
    x25519PublicKey: d.x25519PublicKey ?? null,
    // Without a WSS session a device may still be reached over LoRa through a gateway of its tenant.
    lora:
      !live && d.role === 'device' && d.status === 'active' && ctx.lora.reachable(d)
        ? { reachable: true, heardVia: ctx.lora.routeOf(d.device) ?? null }
        : null,
    gateway: d.role === 'gateway' ? (ctx.lora.healthOf(d.device) ?? null) : null,
  };
}

/** Resolves a device by did:key or by name within the principal's tenant; other tenants' devices are not found. */
export async function findTenantDevice(ctx: ControlPlaneContext, tid: string, ref: string): Promise<DeviceRecord> {
  const d = ref.startsWith('did:key:') ? await ctx.store.getDevice(ref) : await ctx.store.findDeviceByName(tid, ref);
  if (!d || d.tid !== tid) throw new ControlPlaneError('DEVICE_UNKNOWN', `no device ${ref} in this tenant`);
  return d;
}

export async function listDevices(ctx: ControlPlaneContext, principal: Principal): Promise<DeviceView[]> {
  requireOperator(principal);
  return (await ctx.store.listDevices(principal.tid)).map((d) => deviceView(ctx, d));
}

export async function showDevice(ctx: ControlPlaneContext, principal: Principal, ref: string): Promise<DeviceView> {
  requireOperator(principal);
  return deviceView(ctx, await findTenantDevice(ctx, principal.tid, ref));
}

/**
 * Accepts the device's pending manifest `hash` (capability-change approval). Throws NO_PENDING_MANIFEST,
 * MANIFEST_HASH_MISMATCH (the operator looked at another version), DEVICE_NAME_TAKEN (a rename onto a taken name).
 */
export async function acceptManifest(
  ctx: ControlPlaneContext,
  principal: Principal,
  ref: string,
  hash: string,
): Promise<DeviceView> {
  requireOperator(principal);
  const d = await findTenantDevice(ctx, principal.tid, ref);
  if (d.accepted?.hash === hash && !d.pending) return deviceView(ctx, d);
  if (!d.pending) throw new ControlPlaneError('NO_PENDING_MANIFEST', `${d.name} has no pending manifest`);
  if (d.pending.hash !== hash) {
    throw new ControlPlaneError('MANIFEST_HASH_MISMATCH', `${d.name}'s pending manifest is ${d.pending.hash}`, {
      details: { pending: d.pending.hash },
    });
  }
  const newName = d.pending.manifest.device.name;
  if (newName !== d.name) {
    const other = await ctx.store.findDeviceByName(d.tid, newName);
    if (other && other.device !== d.device) {
      throw new ControlPlaneError('DEVICE_NAME_TAKEN', `another device of the tenant is named ${newName}`);
    }
  }
  const diff = diffManifests(d.accepted?.manifest, d.pending.manifest);
  const updated = await ctx.store.acceptManifest(d.device, { ...d.pending, sinceMs: ctx.clock.nowMs() });
  await audit(ctx, {
    kind: 'manifest.accept',
    actor: principal.subject,
    subject: d.device,
    decision: 'allow',
    reason: 'OK',
    details: { hash, previous: d.accepted?.hash ?? null, ...diff.summary },
  });
  const session = ctx.sessions.get(d.device);
  if (session && session.manifestHash() === hash)
    session.send('manifest.ack', { manifestHash: hash, status: 'accepted' });
  return deviceView(ctx, updated);
}

/** Tells the tenant's gateways which LoRa devices they serve; a failure is logged, the gateways catch up later. */
export async function publishServed(ctx: ControlPlaneContext, tid: string): Promise<void> {
  try {
    await ctx.lora.publishServed(tid);
  } catch (e) {
    ctx.log.warning('lora.publish_failed', { tid, err: e as Error });
  }
}

/** Revokes a device: session closed, tokens and re-enrollment refused, gateways told. Idempotent. */
export async function revokeDevice(
  ctx: ControlPlaneContext,
  principal: Principal,
  ref: string,
  reason: string,
): Promise<{ device: DeviceView; revocation: RevocationRecord | null }> {
  requireOperator(principal);
  const d = await findTenantDevice(ctx, principal.tid, ref);
  const revocation =
    d.status === 'revoked' ? undefined : await ctx.store.revokeDevice(d.device, ctx.clock.nowMs(), reason);
  await audit(ctx, {
    kind: 'device.revoke',
    actor: principal.subject,
    subject: d.device,
    decision: 'allow',
    reason: revocation ? 'OK' : 'ALREADY_REVOKED',
    details: { reason, name: d.name },
  });
  const session = ctx.sessions.get(d.device);
  if (session) {
    session.send('revoke', { kind: 'device', device: d.device });
    session.close('FORBIDDEN', 'this device was revoked');
  }
  for (const s of ctx.sessions.online(d.tid)) {
    if (s.role === 'gateway' && s.device !== d.device) s.send('revoke', { kind: 'device', device: d.device });
  }
  await publishServed(ctx, d.tid);
  const after = (await ctx.store.getDevice(d.device)) ?? d;
  return { device: deviceView(ctx, after), revocation: revocation ?? null };
}

/** Revocations of the principal's tenant after `afterSeq` (gateways and operators page through them). */
export async function listRevocations(
  ctx: ControlPlaneContext,
  principal: Principal,
  afterSeq: number,
  limit: number,
): Promise<RevocationRecord[]> {
  if (principal.kind === 'token' && principal.role !== 'gateway' && principal.role !== 'admin') {
    throw new ControlPlaneError('FORBIDDEN', 'revocations are for gateways and operators');
  }
  return ctx.store.listRevocations(principal.tid, afterSeq, limit);
}
