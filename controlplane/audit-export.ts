// The control plane's audit: a signed JSON export of its keyed chain (store/audit.ts lines, checked against the MAC
// key before signing), and anchoring of devices' signed audit checkpoints so a device cannot later rewrite history
// it already vouched for. docs/controlplane.md §Audit.

import { fromBase64Url, toBase64Url } from '../protocol/bytes.ts';
import { canonicalBytes, type JsonValue } from '../protocol/canonical-json.ts';
import { didKeyFromEd25519, ed25519FromDidKey } from '../protocol/did-key.ts';
import { verifyEd25519 } from '../protocol/signing.ts';
import type { AnchorRequest } from './api-schemas.ts';
import type { Principal } from './auth.ts';
import { audit, type ControlPlaneContext } from './context.ts';
import { ControlPlaneError } from './errors.ts';

/** Context label of the export signature. */
export const AUDIT_EXPORT_CONTEXT = 'outpost/cp-audit-export/v1';
/** Context label of agents' audit checkpoints; the same value as store/audit.ts AUDIT_CHECKPOINT_CONTEXT. */
export const DEVICE_CHECKPOINT_CONTEXT = 'outpost/audit-checkpoint/v1';

export interface SignedAuditExport {
  readonly v: 1;
  readonly issuer: string;
  /** did:key of the control plane's identity key, which signed this export. */
  readonly signer: string;
  readonly exportedAtMs: number;
  readonly headSeq: number;
  /** The chain verified against the control plane's MAC key when exported. */
  readonly chainVerified: boolean;
  /** store/audit.ts export lines (entries, each checkpoint after its head), parsed. */
  readonly lines: readonly JsonValue[];
  /** base64url Ed25519 signature over the canonical bytes of every member but this one. */
  readonly signature: string;
}

/** The whole chain, signed. Only root operator keys may export (the chain spans every tenant). */
export async function exportAuditSigned(ctx: ControlPlaneContext, principal: Principal): Promise<SignedAuditExport> {
  if (principal.kind !== 'operator' || !principal.root) {
    throw new ControlPlaneError('FORBIDDEN', 'the audit chain spans all tenants: only a root operator key exports it');
  }
  const { lines, verified, headSeq } = await ctx.store.exportAudit();
  const unsigned = {
    v: 1 as const,
    issuer: ctx.settings.issuer,
    signer: didKeyFromEd25519(ctx.vault.identity.publicKey),
    exportedAtMs: Math.floor(ctx.clock.nowMs()),
    headSeq,
    chainVerified: verified,
    lines: lines.map((l) => JSON.parse(l) as JsonValue),
  };
  const signature = toBase64Url(ctx.vault.identity.sign(AUDIT_EXPORT_CONTEXT, canonicalBytes(unsigned)));
  await audit(ctx, {
    kind: 'audit.export',
    actor: principal.subject,
    subject: String(headSeq),
    decision: 'allow',
    reason: verified ? 'OK' : 'CHAIN_BROKEN',
  });
  return { ...unsigned, signature };
}

export interface RecentAudit {
  readonly headSeq: number;
  /** The whole chain verified against the control plane's MAC key just now. */
  readonly chainVerified: boolean;
  /** The last entries, oldest first (store/audit.ts export lines without checkpoints). */
  readonly entries: readonly JsonValue[];
}

/**
 * The newest `limit` audit entries and whether the chain verifies, for live views. Root operators only, as the
 * export (the chain spans every tenant). Reading is not itself audited: it changes nothing and is polled.
 */
export async function recentAudit(ctx: ControlPlaneContext, principal: Principal, limit: number): Promise<RecentAudit> {
  if (principal.kind !== 'operator' || !principal.root) {
    throw new ControlPlaneError('FORBIDDEN', 'the audit chain spans all tenants: only a root operator key reads it');
  }
  const { lines, verified, headSeq } = await ctx.store.exportAudit();
  const entries: JsonValue[] = [];
  for (let i = lines.length - 1; i >= 0 && entries.length < limit; i--) {
    const line = JSON.parse(lines[i]!) as { [key: string]: JsonValue };
    if (line.type === 'audit-entry') entries.push(line);
  }
  return { headSeq, chainVerified: verified, entries: entries.reverse() };
}

/** True when `doc` carries a valid signature by the did:key it names (and, when given, that key is `expected`). */
export function verifyAuditExportSignature(doc: SignedAuditExport, expectedSigner?: string): boolean {
  if (expectedSigner !== undefined && doc.signer !== expectedSigner) return false;
  try {
    const { signature, ...unsigned } = doc;
    return verifyEd25519(
      ed25519FromDidKey(doc.signer),
      AUDIT_EXPORT_CONTEXT,
      canonicalBytes(unsigned),
      fromBase64Url(signature),
    );
  } catch {
    return false; // a malformed document is not a signed one
  }
}

/**
 * Anchors a device's signed checkpoint: its signature must verify with the device's key; a second checkpoint for an
 * anchored head with another MAC, or one below the highest anchored head, is refused and audited (history rewritten).
 */
export async function anchorCheckpoint(
  ctx: ControlPlaneContext,
  principal: Principal,
  req: AnchorRequest,
): Promise<{ anchored: boolean; duplicate: boolean; headSeq: number }> {
  if (principal.kind !== 'token' || principal.role !== 'device') {
    throw new ControlPlaneError('FORBIDDEN', 'devices anchor their own audit checkpoints');
  }
  const device = principal.subject;
  const { body, signature } = req.checkpoint;
  const ok = verifyEd25519(
    ed25519FromDidKey(device),
    DEVICE_CHECKPOINT_CONTEXT,
    canonicalBytes(body),
    fromBase64Url(signature),
  );
  if (!ok) {
    await audit(ctx, {
      kind: 'audit.anchor',
      actor: device,
      subject: String(body.head_seq),
      decision: 'deny',
      reason: 'BAD_SIGNATURE',
    });
    throw new ControlPlaneError('PROOF_INVALID', 'the checkpoint signature does not verify with this device’s key');
  }
  const outcome = await ctx.store.anchorCheckpoint({
    device,
    tid: principal.tid,
    headSeq: body.head_seq,
    headMac: body.head_mac,
    body: body as unknown as { [key: string]: JsonValue },
    signature,
    receivedMs: ctx.clock.nowMs(),
  });
  if (!outcome.ok) {
    ctx.log.warning('audit.anchor_refused', { device, reason: outcome.reason, headSeq: body.head_seq });
    await audit(ctx, {
      kind: 'audit.anchor',
      actor: device,
      subject: String(body.head_seq),
      decision: 'deny',
      reason: outcome.reason,
      details: { anchoredHeadSeq: outcome.anchoredHeadSeq },
    });
    throw new ControlPlaneError(
      'ANCHOR_CONFLICT',
      `checkpoint refused: ${outcome.reason.toLowerCase()} of an anchored head`,
      {
        details: { reason: outcome.reason, anchoredHeadSeq: outcome.anchoredHeadSeq },
      },
    );
  }
  if (!outcome.duplicate) {
    await audit(ctx, {
      kind: 'audit.anchor',
      actor: device,
      subject: String(body.head_seq),
      decision: 'allow',
      reason: 'OK',
      details: { headMac: body.head_mac },
    });
  }
  return { anchored: true, duplicate: outcome.duplicate, headSeq: body.head_seq };
}
