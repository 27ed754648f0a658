// The reference control plane's LoRa endpoint: the host-independent relay (lora-relay.ts) over this control plane's
// own ports — devices and their X25519 keys from the store, session keys derived inside the vault, replay windows
// and downlink seqs stored durably, telemetry into the same exactly-once store as WSS telemetry, frames out through
// the gateway sessions of the hub. It also publishes each tenant's served-device list to its gateways and gives
// tool calls a way to reach a device that has no WSS session but was heard through a gateway. It keeps the latest
// radio-health report of each gateway in memory (lora.health, lora-relay.md §6a).

import { fromBase64Url, toHex } from '../protocol/bytes.ts';
import type { JsonValue } from '../protocol/canonical-json.ts';
import { canonicalize } from '../protocol/canonical-json.ts';
import type { Clock } from '../protocol/clock.ts';
import { type BodyOf, newMessageId } from '../protocol/envelope.ts';
import { isOutpostError } from '../protocol/errors.ts';
import type { JwkSet } from '../protocol/jwks.ts';
import type { Logger } from '../protocol/log.ts';
import type { LoraControl, LoraSession } from '../protocol/lora.ts';
import { toLoraQuorum } from '../protocol/lora-quorum.ts';
import type { LoraHealth, RadioHealthReport } from '../protocol/lora-relay.ts';
import { quorumTokenFromText } from '../protocol/quorum.ts';
import { ControlPlaneError } from './errors.ts';
import type { LoraEnrollAnswer } from './lora-enrollment.ts';
import { createLoraRelay, type IngestRecord, type LoraDevice, type LoraRelay } from './lora-relay.ts';
import type {
  ControlPlaneStore,
  DeviceRecord,
  KeyVault,
  LoraProvisioned,
  ProvisionedKind,
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

/** Trust material is sent again this long after the last send, in case every transmission of it was lost. */
export const PROVISION_REFRESH_MS = 24 * 3_600_000;
/** Trust material waits at most this long at a gateway for its device. */
const PROVISION_TTL_MS = 24 * 3_600_000;
/**
 * Rounds sent again after the first of a change, each on a later hearing of the device once the previous round left
 * the gateway: at 20 % frame loss a two-frame CONTROL sent twice is lost with p = 0.36² ≈ 13 %; three rounds make it
 * ≈ 0.2 %, and the daily refresh catches the rest.
 */
export const PROVISION_REPEATS = 2;
/** A round the gateway has not reported on for this long no longer holds back the next one. */
const IN_FLIGHT_MAX_MS = 15 * 60_000;

/** A gateway's latest `lora.health` report and when this control plane received it (its wall clock). */
export interface GatewayHealth {
  readonly atMs: number;
  readonly radios: readonly RadioHealthReport[];
  readonly uplinkBacklog: number;
  readonly downlinkBacklog: number;
}

/** Gateways whose latest report is kept; past this the longest-silent one is forgotten. */
const MAX_HEALTH_GATEWAYS = 10_000;

export interface LoraEndpoint {
  /** A lora.uplink from the gateway session `gateway` of tenant `tid`; resolves once every frame is durable. */
  onUplink(gateway: string, tid: string, body: BodyOf<'lora.uplink'>): Promise<void>;
  onReport(gateway: string, body: BodyOf<'lora.downlink.report'>): void;
  /** A lora.health from the gateway session `gateway` (named `name`): replaces its previous report. */
  onHealth(gateway: string, name: string, body: LoraHealth): void;
  /** The gateway's latest report, kept after it disconnects (its `atMs` then shows its age). */
  healthOf(gateway: string): GatewayHealth | undefined;
  /** Every kept report with the gateway's name, for the metrics. */
  healthReports(): readonly (GatewayHealth & { readonly gateway: string; readonly name: string })[];
  /** A gateway session opened: it gets the tenant's served-device list. */
  gatewayOpened(gateway: string, tid: string): Promise<void>;
  gatewayGone(gateway: string): void;
  /** Sends the served-device list to every gateway of the tenant (after an enrollment or a revocation). */
  publishServed(tid: string): Promise<void>;
  /** True when a call to `device` can go over LoRa now: it has a LoRa key and a gateway of its tenant is online. */
  reachable(device: DeviceRecord): boolean;
  /** Sends a tool call over LoRa and resolves with the device's result as a tool.result body. */
  callTool(device: DeviceRecord, call: ToolCallRequest & { readonly callId: string }): Promise<ToolResultBody>;
  /** Records that `device` just got the current trust material another way (an IP enrollment's answer). */
  noteProvisioned(device: string, tid: string): Promise<void>;
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
  const health = new Map<string, GatewayHealth & { readonly gateway: string; readonly name: string }>();

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

  // What each LoRa device was last sent of the trust material is kept in the store (digests only), so a restart of
  // the control plane does not send everything to every device again. A WSS session carries its own updates, so
  // devices with one are skipped.
  const provisioning = new Map<string, Promise<void>>();

  async function currentMaterial(tid: string) {
    const policy = await store.getPolicy(tid);
    const jwks = deps.jwks();
    const issuer = deps.tokenIssuer();
    return { policy, jwks, issuer, jwksText: canonicalize(jwks), issuerText: canonicalize(issuer) };
  }

  /** Brings the device's trust material up to date; concurrent callers share one run. */
  function provision(deviceId: string, force = false): Promise<void> {
    if (sessions.get(deviceId)) return Promise.resolve();
    let run = provisioning.get(deviceId);
    if (!run) {
      run = provisionNow(deviceId, force).finally(() => provisioning.delete(deviceId));
      provisioning.set(deviceId, run);
    }
    return run;
  }

  // CONTROL rounds whose frames are still queued at a gateway, by device: a repeat waits until the gateway reported
  // the previous round done (expired or out of attempts), so that repeats never pile up behind the duty cycle.
  const inFlight = new Map<string, Map<string, number>>();
  const controlDevice = new Map<string, string>();

  function busy(deviceId: string): boolean {
    const ids = inFlight.get(deviceId);
    if (!ids) return false;
    const now = clock.monotonicMs();
    for (const [id, sentMs] of ids) {
      // A round the gateway never reports on (its queue refused it, it lost its state) stops holding the device.
      if (now - sentMs < IN_FLIGHT_MAX_MS) return true;
      ids.delete(id);
      controlDevice.delete(id);
    }
    inFlight.delete(deviceId);
    return false;
  }

  function roundLeftGateway(downlinkId: string): void {
    const deviceId = controlDevice.get(downlinkId);
    if (!deviceId) return;
    controlDevice.delete(downlinkId);
    const ids = inFlight.get(deviceId);
    ids?.delete(downlinkId);
    if (ids?.size === 0) inFlight.delete(deviceId);
  }

  async function provisionNow(deviceId: string, force: boolean): Promise<void> {
    try {
      const d = await store.getDevice(deviceId);
      const ld = d && d.status === 'active' && d.role === 'device' ? loraDevice(d) : undefined;
      if (!d || !ld) return;
      const now = clock.nowMs();
      const had = force ? undefined : await store.loraProvisioned(deviceId);
      const stale = !had || now - had.atMs >= PROVISION_REFRESH_MS || now < had.atMs;
      const m = await currentMaterial(d.tid);
      const next: { -readonly [K in keyof LoraProvisioned]: LoraProvisioned[K] } = {
        policyVersion: had?.policyVersion ?? -1,
        jwks: had?.jwks ?? '',
        issuer: had?.issuer ?? '',
        atMs: had?.atMs ?? now,
        ...(had?.repeat ? { repeat: had.repeat } : {}),
      };
      const sent: ProvisionedKind[] = [];
      const send = async (kind: ProvisionedKind, control: LoraControl) => {
        const id = await relay.sendControl(ld, control, PROVISION_TTL_MS);
        if (!id) return false;
        sent.push(kind);
        const ids = inFlight.get(deviceId) ?? new Map<string, number>();
        ids.set(id, clock.monotonicMs());
        inFlight.set(deviceId, ids);
        controlDevice.set(id, deviceId);
        return true;
      };
      const issuerControl: LoraControl = { kind: 'issuer', value: { ...m.issuer } };
      const jwksControl: LoraControl = { kind: 'jwks', value: m.jwks as unknown as JsonValue };
      if (stale || m.issuerText !== next.issuer) {
        if (await send('issuer', issuerControl)) Object.assign(next, { issuer: m.issuerText, atMs: now });
      }
      if (m.policy && (stale || m.policy.version !== next.policyVersion)) {
        const value = m.policy.policy as unknown as JsonValue;
        if (await send('quorum-policy', { kind: 'quorum-policy', value }))
          Object.assign(next, { policyVersion: m.policy.version, atMs: now });
      }
      if (stale || m.jwksText !== next.jwks) {
        if (await send('jwks', jwksControl)) Object.assign(next, { jwks: m.jwksText, atMs: now });
      }
      if (sent.length > 0) {
        next.repeat = { kinds: sent, left: PROVISION_REPEATS };
      } else if (had?.repeat && had.repeat.left > 0 && !busy(deviceId)) {
        // Nothing changed since: the same material again, for the case every transmission of a round was lost.
        const again: ProvisionedKind[] = [];
        for (const kind of had.repeat.kinds) {
          if (kind === 'quorum-policy' && !m.policy) continue;
          const control: LoraControl =
            kind === 'issuer'
              ? issuerControl
              : kind === 'jwks'
                ? jwksControl
                : { kind: 'quorum-policy', value: m.policy!.policy as unknown as JsonValue };
          if (await send(kind, control)) again.push(kind);
        }
        if (again.length > 0)
          log.info('lora.provision_repeated', { device: deviceId, kinds: again, left: had.repeat.left - 1 });
        next.repeat = { kinds: had.repeat.kinds, left: had.repeat.left - (again.length > 0 ? 1 : 0) };
      }
      if (next.repeat && next.repeat.left <= 0) delete next.repeat;
      if (!had || JSON.stringify(next) !== JSON.stringify(had)) await store.saveLoraProvisioned(deviceId, next);
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
    onReport(gateway, body) {
      relay.handleReport(gateway, body);
      for (const r of body.reports) if (r.state !== 'transmitted') roundLeftGateway(r.downlinkId);
    },
    onHealth(gateway, name, body) {
      // Re-inserted so the map's order is by last report: the oldest one goes first when full.
      health.delete(gateway);
      health.set(gateway, { gateway, name, atMs: clock.nowMs(), ...body });
      if (health.size > MAX_HEALTH_GATEWAYS) health.delete(health.keys().next().value as string);
    },
    healthOf(gateway) {
      const h = health.get(gateway);
      if (!h) return undefined;
      const { atMs, radios, uplinkBacklog, downlinkBacklog } = h;
      return { atMs, radios, uplinkBacklog, downlinkBacklog };
    },
    healthReports: () => [...health.values()],
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
          await provision(device.device, true);
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
    async noteProvisioned(device, tid) {
      // An IP enrollment's answer carried all of it: nothing to send over the air until something changes.
      const m = await currentMaterial(tid);
      await store.saveLoraProvisioned(device, {
        policyVersion: m.policy?.version ?? -1,
        jwks: m.jwksText,
        issuer: m.issuerText,
        atMs: clock.nowMs(),
      });
    },
    stats: () => relay.stats(),
  };
}
