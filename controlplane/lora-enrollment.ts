// Enrollment over LoRa of a device that never had IP (lora-frames.md §4.10). The operator registers the device's
// manifest with an enroll token (the manifest does not fit the air); the token is typed into the device, which sends
// its keys, the token's LoRa id, the manifest's hash, a MAC under the token and its signature. The token is derived
// from a stored nonce with the vault's MAC key, so the database never holds it, yet this control plane can recompute
// it to check the MAC and answer with a response only the token's holder can authenticate.

import { fromBase64Url, toBase64Url, toHex } from '../protocol/bytes.ts';
import { didKeyFromEd25519, shortIdOf } from '../protocol/did-key.ts';
import { isOutpostError } from '../protocol/errors.ts';
import {
  checkEnrollRequest,
  type EnrollStatus,
  loraEnrollTokenKeys,
  openEnrollRequest,
  sealEnrollResponse,
} from '../protocol/lora.ts';
import { manifestHash } from '../protocol/manifest.ts';
import { audit, type ControlPlaneContext } from './context.ts';
import { enrollTokenHash } from './credentials.ts';
import { publishServed } from './devices.ts';
import type { DeviceRecord, EnrollTokenRecord } from './ports.ts';

const LORA_TOKEN_CONTEXT = 'outpost/lora-enroll-token/v1';

/** The enroll token text a LoRa-capable token record stands for: the vault's MAC of its nonce. */
export function loraEnrollTokenText(ctx: ControlPlaneContext, nonce: Uint8Array): string {
  return `oet_${toBase64Url(ctx.vault.mac(LORA_TOKEN_CONTEXT, nonce))}`;
}

/** A new LoRa-capable token: its nonce, text and LoRa id. */
export function newLoraEnrollToken(ctx: ControlPlaneContext): { nonce: Uint8Array; text: string; loraId: string } {
  const nonce = ctx.random(16);
  const text = loraEnrollTokenText(ctx, nonce);
  return { nonce, text, loraId: toHex(loraEnrollTokenKeys(text).tokenId) };
}

export interface LoraEnrollAnswer {
  /** The sealed ENROLL_RESPONSE. */
  readonly frame: Uint8Array;
  /** Where it goes: the enrolling device (by short id) in the gateway's tenant. */
  readonly target: { readonly device: string; readonly tid: string; readonly shortIdHex: string };
  readonly status: EnrollStatus;
}

/**
 * Handles one ENROLL_REQUEST heard by `gateway` (of tenant `tid`). Returns the response to send, or undefined when
 * none can be sent (a malformed or forged frame, an unknown token: without the token there is no key to answer with).
 * Every outcome is audited.
 */
export async function enrollOverLora(
  ctx: ControlPlaneContext,
  frame: Uint8Array,
  gateway: string,
  tid: string,
): Promise<LoraEnrollAnswer | undefined> {
  const nowMs = ctx.clock.nowMs();
  let loraId = 'unknown';
  let device = 'unknown';
  const record = async (decision: 'allow' | 'deny', reason: string, details: Record<string, string> = {}) => {
    ctx.metrics.enrollments.inc({ outcome: decision === 'allow' ? 'enrolled' : reason });
    await audit(ctx, {
      kind: 'enroll',
      actor: device,
      subject: loraId,
      decision,
      reason,
      details: { via: 'lora', gateway, ...details },
    });
  };
  let token: EnrollTokenRecord | undefined;
  let text: string;
  let request: ReturnType<typeof openEnrollRequest>;
  try {
    const unchecked = checkEnrollRequest(frame);
    device = didKeyFromEd25519(unchecked.deviceEd25519);
    loraId = toHex(unchecked.tokenId);
    token = await ctx.store.getEnrollTokenByLoraId(loraId);
    if (!token?.lora || token.tid !== tid) {
      // Another tenant's token heard by this tenant's gateway is as unknown here as a made-up one.
      await record('deny', 'LORA_ENROLL_UNKNOWN_TOKEN');
      return undefined;
    }
    text = loraEnrollTokenText(ctx, token.lora.nonce);
    request = openEnrollRequest(frame, () => text);
  } catch (e) {
    await record('deny', isOutpostError(e) ? e.code : 'LORA_ENROLL_INVALID');
    return undefined;
  }
  const registered = token.lora!;
  const shortIdHex = toHex(shortIdOf(request.deviceEd25519));
  const answer = async (status: EnrollStatus): Promise<LoraEnrollAnswer> => {
    const seq = await ctx.store.takeLoraDownlinkSeqs(device, 1);
    return {
      status,
      target: { device, tid, shortIdHex },
      frame: sealEnrollResponse({
        request: frame,
        token: text,
        seq,
        status,
        ...(status === 'accepted' ? { controlPlaneX25519Public: ctx.vault.lora.publicKey, tid } : {}),
      }),
    };
  };
  if (token.role !== 'device') {
    await record('deny', 'FORBIDDEN', { tokenId: token.tokenId });
    return answer('refused'); // gateways enroll over IP (they hold the backhaul)
  }
  const hash = manifestHash(registered.manifest);
  if (toHex(request.manifestHash) !== hash.slice('sha256:'.length) || registered.manifest.device.id !== device) {
    await record('deny', 'MANIFEST_UNKNOWN', { tokenId: token.tokenId });
    return answer('manifest-unknown');
  }
  const x25519PublicKey = toBase64Url(request.deviceX25519);
  if (!ctx.vault.lora.isAcceptablePeer(request.deviceX25519)) {
    await record('deny', 'X25519_KEY_INVALID', { tokenId: token.tokenId });
    return answer('refused');
  }
  // A repeated request (the response was lost) gets the same answer; the token is spent already.
  const existing = await ctx.store.getDevice(device);
  if (
    token.usedMs !== undefined &&
    token.usedBy === device &&
    existing?.status === 'active' &&
    existing.x25519PublicKey !== undefined &&
    toHex(fromBase64Url(existing.x25519PublicKey)) === toHex(request.deviceX25519)
  ) {
    return answer('accepted');
  }
  const version = { hash, manifest: registered.manifest, sinceMs: nowMs };
  const next: DeviceRecord = {
    device,
    tid,
    name: registered.manifest.device.name,
    role: token.role,
    labels: { ...(registered.manifest.device.labels ?? {}), ...token.labels },
    x25519PublicKey,
    status: 'active',
    enrolledMs: nowMs,
    enrollTokenId: token.tokenId,
    ...(token.holdManifest ? { pending: version } : { accepted: version }),
  };
  const outcome = await ctx.store.completeEnrollment({ tokenHash: enrollTokenHash(text), nowMs, device: next });
  if (!outcome.ok) {
    await record('deny', outcome.reason, { tokenId: token.tokenId });
    return answer('refused');
  }
  await publishServed(ctx, tid);
  await record('allow', outcome.reenrolled ? 'REENROLLED' : 'OK', {
    tokenId: token.tokenId,
    tid,
    name: next.name,
    manifestHash: hash,
  });
  return answer('accepted');
}
