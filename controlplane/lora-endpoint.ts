// The reference control plane's LoRa endpoint: the host-independent relay (lora-relay.ts) over this control plane's
// own ports — devices and their X25519 keys from the store, session keys derived inside the vault, replay windows
// and downlink seqs stored durably, telemetry into the same exactly-once store as WSS telemetry, frames out through
// the gateway sessions of the hub. It also publishes each tenant's served-device list to its gateways and gives
// tool calls a way to reach a device that has no WSS session but was heard through a gateway.

import { fromBase64Url, toHex } from '../protocol/bytes.ts';
import type { JsonValue } from '../protocol/canonical-json.ts';
import { canonicalize } from '../protocol/canonical-json.ts';
import type { Clock } from '../protocol/clock.ts';
import { type BodyOf, newMessageId } from '../protocol/envelope.ts';
import { isOutpostError } from '../protocol/errors.ts';
import type { JwkSet } from '../protocol/jwks.ts';
import type { Logger } from '../protocol/log.ts';
import type { LoraSession } from '../protocol/lora.ts';
import { toLoraQuorum } from '../protocol/lora-quorum.ts';
import { quorumTokenFromText } from '../protocol/quorum.ts';
import { ControlPlaneError } from './errors.ts';
import type { LoraEnrollAnswer } from './lora-enrollment.ts';
import { createLoraRelay, type IngestRecord, type LoraDevice, type LoraRelay } from './lora-relay.ts';
import type {
  ControlPlaneStore,
  DeviceRecord,
  KeyVault,
  Scheduler,
  SessionRegistry,
  ToolCallRequest,
  ToolResultBody,
} from './ports.ts';
import { storedRecord, streamIndex } from './telemetry-ingest.ts';

export interface LoraEndpointDeps {
  readonly store: ControlPlaneStore;
  readonly vault: KeyVault;
  readonly sessions: SessionRegistry;
  readonly scheduler: Scheduler;
  readonly clock: Clock;
  readonly log: Logger;
  /** Wait this long for more frames of a device before acknowledging them together (default 2 s). */
  readonly ackDelayMs?: number;
  /** The JWK Set devices verify per-call tokens against (the issuer's, current). */
  readonly jwks: () => JwkSet;
  /** `iss` and device `aud` of per-call tokens: a device enrolled over LoRa learns them from a CONTROL message. */
  readonly tokenIssuer: () => { readonly issuer: string; readonly audience: string };
  /** Enrollment over LoRa (lora-enrollment.ts): the response to send for an ENROLL_REQUEST, if any. */
  readonly enroll?: (frame: Uint8Array, gateway: string, tid: string) => Promise<LoraEnrollAnswer | undefined>;
}

/** A device that was sent trust material is sent it again after this long, in case every transmission was lost. */
export const PROVISION_REFRESH_MS = 24 * 3_600_000;
/** Trust material waits at most this long at a gateway for its device. */
const PROVISION_TTL_MS = 24 * 3_600_000;

export interface LoraEndpoint {
  /** A lora.uplink from the gateway session `gateway` of tenant `tid`; resolves once every frame is durable. */
  onUplink(gateway: string, tid: string, body: BodyOf<'lora.uplink'>): Promise<void>;
  onReport(gateway: string, body: BodyOf<'lora.downlink.report'>): void;
  /** A gateway session opened: it gets the tenant's served-device list. */
  gatewayOpened(gateway: string, tid: string): Promise<void>;
  gatewayGone(gateway: string): void;
  /** Sends the served-device list to every gateway of the tenant (after an enrollment or a revocation). */
  publishServed(tid: string): Promise<void>;
  /** True when a call to `device` can go over LoRa now: it has a LoRa key and a gateway of its tenant is online. */
  reachable(device: DeviceRecord): boolean;
  /** Sends a tool call over LoRa and resolves with the device's result as a tool.result body. */
  callTool(device: DeviceRecord, call: ToolCallRequest & { readonly callId: string }): Promise<ToolResultBody>;
  /** Where the device was heard last, if since this process started. */
  routeOf(device: string): { gateway: string; radio: string; atMs: number } | undefined;
  stats(): Readonly<Record<string, number>>;
}

/** How often the short-id index may be rebuilt on a miss (a frame from an unknown short id must stay cheap). */
const INDEX_REBUILD_MIN_MS = 1_000;

export function createLoraEndpoint(deps: LoraEndpointDeps): LoraEndpoint {
  const { store, vault, sessions, clock, log } = deps;
  const sessionKeys = new Map<string, { key: string; session: LoraSession }>();
  let byShortId = new Map<string, Set<string>>();
  let indexBuiltMs = Number.NEGATIVE_INFINITY;

  function sessionOf(d: DeviceRecord): LoraSession | undefined {
    if (!d.x25519PublicKey) return undefined;
    const cached = sessionKeys.get(d.device);
    if (cached?.key === d.x25519PublicKey) return cached.session;
    try {
      const session = vault.lora.session({
        devicePublicKey: fromBase64Url(d.x25519PublicKey),
        tid: d.tid,
        deviceId: d.device,
      });
      sessionKeys.set(d.device, { key: d.x25519PublicKey, session });
      return session;
    } catch (e) {
      log.warning('lora.session_unusable', { device: d.device, code: isOutpostError(e) ? e.code : 'INTERNAL' });
      return undefined;
    }
  }

  function loraDevice(d: DeviceRecord): LoraDevice | undefined {
    const session = sessionOf(d);
    if (!session) return undefined;
    const manifest = d.accepted?.manifest;
    return {
      device: d.device,
      tid: d.tid,
      shortIdHex: toHex(session.shortId),
      session,
      streams: (manifest?.streams ?? []).map((s) => s.name),
      tools: (manifest?.tools ?? []).map((t) => t.name),
      revoked: d.status !== 'active',
    };
  }

  async function rebuildIndex(): Promise<void> {
    const next = new Map<string, Set<string>>();
    for (const t of await store.listTenants()) {
      for (const d of await store.listDevices(t.tid)) {
        if (d.role !== 'device') continue;
        const session = sessionOf(d);
        if (!session) continue;
        const id = toHex(session.shortId);
        const set = next.get(id) ?? new Set<string>();
        set.add(d.device);
        next.set(id, set);
      }
    }
    byShortId = next;
    indexBuiltMs = clock.monotonicMs();
  }

  async function devicesByShortId(shortIdHex: string): Promise<LoraDevice[]> {
    if (!byShortId.has(shortIdHex) && clock.monotonicMs() - indexBuiltMs >= INDEX_REBUILD_MIN_MS) {
      await rebuildIndex();
    }
    const out: LoraDevice[] = [];
    for (const id of byShortId.get(shortIdHex) ?? []) {
      // The record is read fresh: a revocation takes effect on the next frame.
      const d = await store.getDevice(id);
      const ld = d ? loraDevice(d) : undefined;
      if (ld) out.push(ld);
    }
    return out;
  }

  async function ingest(device: string, records: readonly IngestRecord[]) {
    const d = await store.getDevice(device);
    if (!d || d.status !== 'active') return { stored: 0, duplicates: 0 };
    const streams = streamIndex(d);
    const rows = records.map((r) => storedRecord(streams.get(r.stream), r));
    const result = await store.ingestTelemetry({
      tid: d.tid,
      receivedMs: clock.nowMs(),
      units: [{ device, records: rows }],
    });
    if (result.conflicts.length > 0) {
      log.warning('lora.telemetry_conflict', { device, seqs: result.conflicts.slice(0, 8).map((c) => c.seq) });
    }
    await store.touchDevice(device, clock.nowMs());
    return { stored: result.stored, duplicates: result.duplicates + result.conflicts.length };
  }

  // What each LoRa device was last sent of the trust material (in memory: after a restart it is sent again, which
  // the device takes as a no-op). A WSS session carries its own updates, so devices with one are skipped.
  const provisioned = new Map<string, { policyVersion: number; jwks: string; issuer: string; atMs: number }>();
  const provisioning = new Map<string, Promise<void>>();

  /** Brings the device's trust material up to date; concurrent callers share one run. */
  function provision(deviceId: string): Promise<void> {
    if (sessions.get(deviceId)) return Promise.resolve();
    let run = provisioning.get(deviceId);
    if (!run) {
      run = provisionNow(deviceId).finally(() => provisioning.delete(deviceId));
      provisioning.set(deviceId, run);
    }
    return run;
  }

  async function provisionNow(deviceId: string): Promise<void> {
    try {
      const d = await store.getDevice(deviceId);
      const ld = d && d.status === 'active' && d.role === 'device' ? loraDevice(d) : undefined;
      if (!d || !ld) return;
      const now = clock.monotonicMs();
      const had = provisioned.get(deviceId);
      const stale = !had || now - had.atMs >= PROVISION_REFRESH_MS;
      const policy = await store.getPolicy(d.tid);
      const jwks = deps.jwks();
      const jwksText = canonicalize(jwks);
      const next = {
        policyVersion: had?.policyVersion ?? -1,
        jwks: had?.jwks ?? '',
        issuer: had?.issuer ?? '',
        atMs: had?.atMs ?? now,
      };
      const issuer = deps.tokenIssuer();
      const issuerText = canonicalize(issuer);
      if (stale || issuerText !== next.issuer) {
        const id = await relay.sendControl(ld, { kind: 'issuer', value: { ...issuer } }, PROVISION_TTL_MS);
        if (id) Object.assign(next, { issuer: issuerText, atMs: now });
      }
      if (policy && (stale || policy.version !== next.policyVersion)) {
        const id = await relay.sendControl(
          ld,
          { kind: 'quorum-policy', value: policy.policy as unknown as JsonValue },
          PROVISION_TTL_MS,
        );
        if (id) Object.assign(next, { policyVersion: policy.version, atMs: now });
      }
      if (stale || jwksText !== next.jwks) {
        const id = await relay.sendControl(ld, { kind: 'jwks', value: jwks as unknown as JsonValue }, PROVISION_TTL_MS);
        if (id) Object.assign(next, { jwks: jwksText, atMs: now });
      }
      provisioned.set(deviceId, next);
    } catch (e) {
      log.warning('lora.provision_failed', { device: deviceId, code: isOutpostError(e) ? e.code : 'INTERNAL' });
    }
  }

  const gatewaysOf = (tid: string) =>
    sessions
      .online(tid)
      .filter((s) => s.role === 'gateway')
      .map((s) => s.device);

  const relay: LoraRelay = createLoraRelay({
    clock,
    log: log.child({ part: 'lora' }),
    after: (ms, fn) => deps.scheduler.after(ms, fn),
    ...(deps.ackDelayMs === undefined ? {} : { ackDelayMs: deps.ackDelayMs }),
    ports: {
      devicesByShortId,
      loadWindow: (device) => store.loraWindow(device),
      saveWindow: (device, state) => store.saveLoraWindow(device, state),
      ingestTelemetry: ingest,
      takeDownlinkSeqs: (device, count) => store.takeLoraDownlinkSeqs(device, count),
      sendToGateway(gateway, type, body) {
        const s = sessions.get(gateway);
        if (!s || s.role !== 'gateway') return false;
        s.send(type, body as never);
        return true;
      },
      gatewaysOf,
      // Hearing a device is the moment to bring its trust material up to date: a gateway has a route to it.
      noteDevice: (device) => void provision(device),
    },
  });

  async function servedList(tid: string): Promise<BodyOf<'lora.devices'>['devices']> {
    const out: { device: string; shortId: string; standing: 'served' | 'revoked' }[] = [];
    for (const d of await store.listDevices(tid)) {
      if (d.role !== 'device') continue;
      const session = sessionOf(d);
      if (!session) continue;
      out.push({
        device: d.device,
        shortId: toHex(session.shortId),
        standing: d.status === 'active' ? 'served' : 'revoked',
      });
    }
    return out;
  }

  return {
    async onUplink(gateway, tid, body) {
      const r = await relay.handleUplink(gateway, tid, body);
      for (const req of r.enrollRequests) {
        const answer = await deps.enroll?.(req.frame, req.gateway, tid).catch((e) => {
          log.error('lora.enroll_failed', { gateway, err: e as Error });
          return undefined;
        });
        if (!answer) continue;
        // Ahead of everything else for the device; the device repeats its request if this is lost.
        relay.sendFrames(answer.target, [answer.frame], { priority: 0, ttlMs: 600_000, maxAttempts: 3 });
        log.info('lora.enroll_answered', { device: answer.target.device, status: answer.status, gateway });
      }
    },
    onReport: (gateway, body) => relay.handleReport(gateway, body),
    async gatewayOpened(gateway, tid) {
      const s = sessions.get(gateway);
      if (!s || s.role !== 'gateway') return;
      s.send('lora.devices', { devices: await servedList(tid) });
    },
    gatewayGone: (gateway) => relay.gatewayGone(gateway),
    async publishServed(tid) {
      byShortId = new Map();
      indexBuiltMs = Number.NEGATIVE_INFINITY;
      const gateways = gatewaysOf(tid);
      if (gateways.length === 0) return;
      const devices = await servedList(tid);
      for (const g of gateways) sessions.get(g)?.send('lora.devices', { devices });
    },
    reachable(device) {
      return device.x25519PublicKey !== undefined && gatewaysOf(device.tid).length > 0;
    },
    async callTool(device, call) {
      const ld = loraDevice(device);
      if (!ld) throw new ControlPlaneError('DEVICE_OFFLINE', `${device.name} has no LoRa session`);
      // A call's token is signed with the current key: the device must know it (and the policy) before the call,
      // which the gateway then transmits after this trust material (same priority, queued first).
      await provision(device.device);
      const toolIndex = ld.tools.indexOf(call.tool);
      // Approvers named in the tenant's policy travel as 4-byte short ids (lora-frames.md §4.6.2).
      const policy = call.quorum ? await store.getPolicy(device.tid) : undefined;
      const quorum = call.quorum ? toLoraQuorum(quorumTokenFromText(call.quorum), policy?.policy) : undefined;
      const timeoutMs = Math.max(1_000, call.deadlineMs - clock.nowMs());
      const send = (callId: string) =>
        relay.callTool(
          ld,
          {
            callId,
            tool: toolIndex >= 0 ? { index: toolIndex } : { name: call.tool },
            deadlineMs: call.deadlineMs,
            token: call.token,
            ...(quorum ? { quorum } : {}),
            args: call.args as JsonValue,
          },
          { timeoutMs },
        );
      let r: Awaited<ReturnType<LoraRelay['callTool']>>;
      try {
        r = await send(call.callId);
        // The key set (or, for a device enrolled over LoRa, the issuer) went ahead of the call but did not arrive first
        // (frames lost): send it again and the call once more. The refused call consumed nothing on the device (its
        // token was not verified).
        // The gate reports them as TOKEN_INVALID naming the verifier's code.
        const v = r.value as { code?: unknown; message?: unknown } | null;
        const missingTrust = /\b(TOKEN_UNKNOWN_KEY|JWKS_UNAVAILABLE)\b/.test(
          `${String(v?.code)} ${String(v?.message)}`,
        );
        if (r.status !== 'ok' && missingTrust) {
          provisioned.delete(device.device);
          await provision(device.device);
          r = await send(newMessageId());
        }
      } catch (e) {
        if (e instanceof ControlPlaneError) throw e;
        const message = e instanceof Error ? e.message : String(e);
        throw new ControlPlaneError(/^no gateway/.test(message) ? 'DEVICE_OFFLINE' : 'DEVICE_TIMEOUT', message);
      }
      if (r.status === 'ok') return { callId: call.callId, ok: true, result: r.value, durationMs: r.durationMs };
      const v = r.value as { code?: unknown; message?: unknown } | null;
      const code = typeof v?.code === 'string' && /^[A-Z][A-Z0-9_]{0,63}$/.test(v.code) ? v.code : 'TOOL_FAILED';
      const message = typeof v?.message === 'string' ? v.message.slice(0, 1024) : `the device answered ${r.status}`;
      return { callId: call.callId, ok: false, error: { code, message }, durationMs: r.durationMs };
    },
    routeOf: (device) => relay.routeOf(device),
    stats: () => ({ ...relay.stats(), provisioned: provisioned.size }),
  };
}
