// The gateway daemon's core: radios → cheap checks → durable store → upstream in acknowledged batches while the
// backhaul is up; downlink from the control plane → durable queue → radios under the airtime law, retried until
// cancelled or expired, with delivery reports. The link state is computed from facts on every tick. Only cli/
// builds the concrete radios, store and time; everything here takes them as dependencies.

import type { RadioStatus, ReceivedPacket } from '../firmware-bridge/radio.ts';
import { fromBase64Url, toBase64Url } from '../protocol/bytes.ts';
import { didKeyFromEd25519, ed25519FromDidKey, shortIdOf } from '../protocol/did-key.ts';
import type { Envelope } from '../protocol/envelope.ts';
import type { Logger } from '../protocol/log.ts';
import { encodeBeacon, LORA_MAX_FRAME_BYTES } from '../protocol/lora.ts';
import { type CapabilityManifest, manifestHash } from '../protocol/manifest.ts';
import { ed25519KeyPair } from '../protocol/signing.ts';
import type { SeqRange } from '../store/outbox.ts';
import { initialBucket, type TokenBucketConfig, type TokenBucketState, take } from '../store/token-bucket.ts';
import { type PlanCandidate, type PlanRadio, planDownlink } from './downlink-planner.ts';
import type { DownlinkFailure, DownlinkReport, RetryPolicy } from './downlink-queue.ts';
import { GatewayError } from './errors.ts';
import type { GatewayStore } from './gateway-store.ts';
import { loraHealthBody } from './health-report.ts';
import { type LinkFacts, type LinkState, linkState } from './link-state.ts';
import type { GatewayMetrics } from './metrics.ts';
import { createRadioLink, type RadioHealth, type RadioLink, type RadioLinkOptions } from './radio-link.ts';
import type { GatewayTime } from './time.ts';
import { createUplinkFilter, shortIdHex, type UplinkFilterOptions } from './uplink-filter.ts';
import type { UplinkQueueStats } from './uplink-queue.ts';
import { openUpstreamSession, type UpstreamFacts, type UpstreamSession } from './upstream.ts';

export interface GatewayRadio {
  readonly name: string;
  readonly radio: RadioLinkOptions['radio'];
  readonly maxFrameBytes: number;
  readonly params?: RadioLinkOptions['params'];
}

/** Where the gateway's runtime token comes from and goes to (a file under the state directory in production). */
export interface TokenStore {
  read(): string | undefined;
  write(token: string): void;
}

export interface UpstreamConfig {
  readonly url: string;
  readonly tid: string;
  readonly tokens: TokenStore;
  readonly ca?: string | Buffer;
  /** Heartbeat until hello.ack says otherwise (default 30 s). */
  readonly heartbeatMs?: number;
  readonly handshakeTimeoutMs?: number;
  /** Reconnect backoff (defaults 1 s, doubling to 60 s, ±20 % jitter). */
  readonly backoffInitialMs?: number;
  readonly backoffMaxMs?: number;
  /**
   * Gets a fresh runtime token when the current one has expired (e.g. after an outage longer than its lifetime):
   * tried with backoff (1 min doubling to 30 min) while the token is unusable. Absent: an operator re-enrolls.
   */
  readonly renewToken?: () => Promise<string>;
}

export interface GatewayLimits {
  /** Frames per lora.uplink envelope (default 32, at most 64). */
  readonly batchFrames: number;
  /** Envelopes awaiting lora.ack at once (default 4). */
  readonly maxInFlightBatches: number;
  /** Replay rate towards the control plane (default 50 frames/s, burst 200). */
  readonly replay: TokenBucketConfig;
  /** How long a batch's frames stay leased if no ack arrives (store time, default 120 s). */
  readonly leaseMs: number;
  readonly retry: RetryPolicy;
  /** Supervisor tick (default 500 ms). */
  readonly tickMs: number;
  /** Send a beacon this often on each ready radio, 0 = never (default 0). */
  readonly beaconIntervalMs: number;
}

export const DEFAULT_GATEWAY_LIMITS: GatewayLimits = Object.freeze({
  batchFrames: 32,
  maxInFlightBatches: 4,
  replay: { ratePerSec: 50, burst: 200 },
  leaseMs: 120_000,
  retry: { retryInitialMs: 10_000, retryMaxMs: 300_000 },
  tickMs: 500,
  beaconIntervalMs: 0,
});

export interface GatewayOptions {
  readonly name: string;
  readonly identitySeed: Uint8Array;
  readonly agentVersion: string;
  readonly manifest: CapabilityManifest;
  readonly radios: readonly GatewayRadio[];
  readonly store: GatewayStore;
  /** Absent: not enrolled yet; the gateway stores what it hears and forwards nothing. */
  readonly upstream?: UpstreamConfig;
  readonly time: GatewayTime;
  readonly log: Logger;
  /** Families from createGatewayMetrics(registry); the store's drop callback feeds uplinkDropped. */
  readonly metrics: GatewayMetrics;
  readonly limits?: Partial<GatewayLimits>;
  readonly filter?: Partial<Omit<UplinkFilterOptions, 'directory' | 'maxFrameBytes'>>;
  readonly random?: () => number;
}

export interface GatewayStatus {
  readonly name: string;
  readonly id: string;
  readonly shortId: string;
  readonly startedAtWallMs: number;
  readonly uptimeMs: number;
  readonly link: LinkState & {
    readonly facts: UpstreamFacts & { readonly enrolled: boolean; readonly tokenUsable: boolean };
    readonly sessions: number;
    readonly lastError: string | null;
  };
  readonly radios: readonly RadioHealth[];
  readonly uplink: UplinkQueueStats & { readonly forwarded: number; readonly inFlightBatches: number };
  readonly downlink: ReturnType<GatewayStore['downlink']['stats']> & {
    readonly received: number;
    readonly transmissions: number;
  };
  readonly devices: { readonly served: number; readonly revoked: number };
  readonly manifestHash: string;
}

export interface Gateway {
  start(): Promise<void>;
  stop(): Promise<void>;
  status(): GatewayStatus;
  linkState(): LinkState;
  /** Resolves on the next link-state change (for tests and the CLI's watch mode). */
  nextLinkChange(): Promise<LinkState>;
}

interface InFlightBatch {
  readonly kind: 'uplink';
  readonly leaseId: number;
  readonly ranges: SeqRange[];
  readonly frames: number;
}

interface InFlightReports {
  readonly kind: 'reports';
  readonly reports: DownlinkReport[];
}

/** Expiry (`exp`, seconds) of a runtime token, read without verifying it: only to schedule a refresh. */
export function tokenExpiryMs(token: string): number | undefined {
  try {
    const payload = JSON.parse(Buffer.from(fromBase64Url(token.split('.')[1] ?? '')).toString('utf8')) as {
      exp?: unknown;
      iat?: unknown;
    };
    return typeof payload.exp === 'number' ? payload.exp * 1000 : undefined;
  } catch {
    return undefined;
  }
}

function tokenIssuedMs(token: string): number | undefined {
  try {
    const payload = JSON.parse(Buffer.from(fromBase64Url(token.split('.')[1] ?? '')).toString('utf8')) as {
      iat?: unknown;
    };
    return typeof payload.iat === 'number' ? payload.iat * 1000 : undefined;
  } catch {
    return undefined;
  }
}

export function createGateway(options: GatewayOptions): Gateway {
  const limits: GatewayLimits = { ...DEFAULT_GATEWAY_LIMITS, ...options.limits };
  const { store, time } = options;
  const { timers, clock } = time;
  const log = options.log.child({ gateway: options.name });
  const metrics = options.metrics;
  const random = options.random ?? Math.random;
  const publicKey = ed25519KeyPair(options.identitySeed).publicKey;
  const did = didKeyFromEd25519(publicKey);
  const ownShortId = shortIdOf(publicKey);
  const mHash = manifestHash(options.manifest);
  const startedAtWallMs = clock.nowMs();
  const startedAtMs = timers.nowMs();

  const links: RadioLink[] = options.radios.map((r) =>
    createRadioLink({
      name: r.name,
      radio: r.radio,
      maxFrameBytes: r.maxFrameBytes,
      ...(r.params ? { params: r.params } : {}),
      timers,
      metrics,
      log,
      wallMs: () => clock.nowMs(),
    }),
  );
  const filter = createUplinkFilter({
    directory: store.devices,
    maxFrameBytes: LORA_MAX_FRAME_BYTES,
    ...options.filter,
  });
  /** Which radio last heard each device, and when (gateway ms); bounded by the served list in practice. */
  const lastHeard = new Map<string, { radio: string; atMs: number }>();

  let running = false;
  let session: UpstreamSession | undefined;
  let sessions = 0;
  let lastError: string | null = null;
  let connectAttempts = 0;
  let nextConnectAtMs = 0;
  let heartbeatMs = options.upstream?.heartbeatMs ?? 30_000;
  let tokenRefreshSentAtMs: number | undefined;
  let renewing = false;
  let renewAttempts = 0;
  let nextRenewAtMs = 0;
  const inFlight = new Map<string, InFlightBatch | InFlightReports>();
  let replayBucket: TokenBucketState = initialBucket(limits.replay, timers.nowMs());
  let forwarded = 0;
  let downlinkReceived = 0;
  let transmissions = 0;
  let current: LinkState | undefined;
  let linkWaiters: ((s: LinkState) => void)[] = [];
  const cancelTimers = new Set<() => void>();
  let wakeDispatcher: (() => void) | undefined;
  let wakeForwarder: (() => void) | undefined;
  let dispatcherDone: Promise<void> | undefined;
  let forwarderDone: Promise<void> | undefined;

  // ---- facts and link state ----

  function tokenUsable(): boolean {
    const token = options.upstream?.tokens.read();
    if (!token) return false;
    const exp = tokenExpiryMs(token);
    return exp === undefined || exp > clock.nowMs();
  }

  function upstreamFacts(): UpstreamFacts {
    return (
      session?.facts() ?? {
        socketOpen: false,
        sessionEstablished: false,
        receiveSilenceMs: null,
        sendSilenceMs: null,
        heartbeatMs: null,
      }
    );
  }

  function facts(): LinkFacts {
    const u = upstreamFacts();
    return {
      // Enrolled = knows its control plane; a missing or expired token is "unauthorised" (renewable), not this.
      enrolled: options.upstream !== undefined,
      tokenUsable: tokenUsable(),
      socketOpen: u.socketOpen,
      sessionEstablished: u.sessionEstablished,
      receiveSilenceMs: u.receiveSilenceMs,
      sendSilenceMs: u.sendSilenceMs,
      heartbeatMs,
      handshakeTimeoutMs: options.upstream?.handshakeTimeoutMs ?? 10_000,
      radios: links.map((l) => ({ name: l.name, state: l.status().state })),
    };
  }

  function evaluate(): LinkState {
    const s = linkState(facts());
    if (!current || current.summary !== s.summary || current.backhaul !== s.backhaul || current.radios !== s.radios) {
      log.notice('gateway.link', { summary: s.summary, backhaul: s.backhaul, radios: s.radios });
      current = s;
      metrics.backhaulUp.set({}, s.forward ? 1 : 0);
      const waiters = linkWaiters;
      linkWaiters = [];
      for (const w of waiters) w(s);
    }
    current = s;
    return s;
  }

  // ---- radios → store ----

  function onPacket(link: RadioLink, packet: ReceivedPacket): void {
    const frame = packet.payload;
    if (frame.length > link.maxFrameBytes) {
      link.noteDropped('too_long');
      return;
    }
    const verdict = filter.check(frame, timers.nowMs());
    if (!verdict.accept) {
      link.noteDropped(verdict.reason);
      log.debug('gateway.frame_dropped', { radio: link.name, reason: verdict.reason, shortId: verdict.shortIdHex });
      return;
    }
    try {
      store.uplink.store(
        {
          radio: link.name,
          rssiDbm: packet.rssiDbm,
          snrDb: packet.snrDb,
          rxWallMs: Math.max(0, Math.floor(packet.receivedAtMs)),
          frame,
        },
        verdict.class,
      );
    } catch (e) {
      // Disk full or I/O error: the frame is lost here, and the device retransmits what is never acked.
      link.noteDropped('store_failed');
      log.error('gateway.store_failed', { radio: link.name, error: e });
      return;
    }
    link.noteStored();
    lastHeard.set(verdict.shortIdHex, { radio: link.name, atMs: timers.nowMs() });
    if (store.downlink.deviceHeard(verdict.shortIdHex) > 0) wakeDispatcher?.();
    wakeForwarder?.();
  }

  function onRadioStatus(_link: RadioLink, _s: RadioStatus): void {
    evaluate();
    wakeDispatcher?.();
  }

  // ---- upstream session ----

  /** The shortest interval between two lora.health reports, in real ms (lora-relay.md §6a). */
  const MIN_HEALTH_INTERVAL_MS = 5_000;
  let cancelHealth: (() => void) | undefined;

  function sendHealth(s: UpstreamSession): void {
    try {
      s.send(
        'lora.health',
        loraHealthBody(
          links.map((l) => l.health()),
          store.uplink.stats().frames,
          store.downlink.stats().items,
        ),
      );
    } catch (e) {
      // Not stored and not retried: the next heartbeat's report replaces this one.
      log.debug('gateway.health_send_failed', { error: e });
    }
  }

  /** Reports radio health now and then once per heartbeat interval while `s` is the session. */
  function startHealthReports(s: UpstreamSession): void {
    cancelHealth?.();
    const tick = () => {
      if (!running || session !== s) return;
      sendHealth(s);
      // Gateway timers run timeScale× faster against a simulated air; the interval is real time on the backhaul.
      const cancel = timers.setTimer(Math.max(heartbeatMs, MIN_HEALTH_INTERVAL_MS) * timers.timeScale, () => {
        cancelTimers.delete(cancel);
        tick();
      });
      cancelTimers.add(cancel);
      cancelHealth = () => {
        cancel();
        cancelTimers.delete(cancel);
      };
    };
    tick();
  }

  function releaseInFlight(): void {
    for (const b of inFlight.values()) if (b.kind === 'uplink') store.uplink.release(b.leaseId);
    inFlight.clear();
  }

  function connect(): void {
    const up = options.upstream;
    const token = up?.tokens.read();
    if (!up || !token) return;
    connectAttempts++;
    sessions++;
    log.info('gateway.connecting', { url: up.url, attempt: connectAttempts });
    const s = openUpstreamSession({
      url: up.url,
      tid: up.tid,
      token,
      seed: options.identitySeed,
      agentVersion: options.agentVersion,
      manifestHash: mHash,
      timers,
      wallMs: () => clock.nowMs(),
      log,
      ...(up.ca === undefined ? {} : { ca: up.ca }),
      onEnvelope: (env) => onEnvelope(s, env),
      onEstablished: (info) => {
        connectAttempts = 0;
        heartbeatMs = info.heartbeatMs;
        metrics.backhaulConnects.inc();
        lastError = null;
        tokenRefreshSentAtMs = undefined;
        try {
          s.send('manifest.announce', { manifest: options.manifest, manifestHash: mHash });
        } catch (e) {
          log.warning('gateway.announce_failed', { error: e });
        }
        startHealthReports(s);
        evaluate();
        wakeForwarder?.();
      },
      onClosed: (info) => {
        if (session === s) {
          session = undefined;
          cancelHealth?.();
          cancelHealth = undefined;
        }
        releaseInFlight();
        if (info.error) lastError = `${info.error.code}: ${info.error.message}`;
        const backoffInitial = up.backoffInitialMs ?? 1_000;
        const backoffMax = up.backoffMaxMs ?? 60_000;
        const base = Math.min(backoffMax, backoffInitial * 2 ** Math.max(0, connectAttempts - 1));
        nextConnectAtMs = timers.nowMs() + base * (0.8 + 0.4 * random());
        log.info('gateway.disconnected', { code: info.code, reason: info.reason.slice(0, 200) });
        evaluate();
      },
    });
    session = s;
  }

  function ack(s: UpstreamSession, inReplyTo: string): void {
    try {
      s.send('lora.ack', { inReplyTo });
    } catch {
      // The session closed meanwhile: the control plane resends what it has no ack for.
    }
  }

  function onEnvelope(s: UpstreamSession, env: Envelope): void {
    switch (env.type) {
      case 'lora.ack': {
        const b = inFlight.get(env.body.inReplyTo);
        if (!b) return;
        inFlight.delete(env.body.inReplyTo);
        if (b.kind === 'uplink') {
          const n = store.uplink.ack(b.ranges);
          store.uplink.release(b.leaseId);
          forwarded += n;
          metrics.uplinkForwarded.inc({}, n);
        } else {
          store.downlink.reported(b.reports);
        }
        wakeForwarder?.();
        return;
      }
      case 'lora.downlink': {
        downlinkReceived++;
        metrics.downlinkReceived.inc();
        let frames: Uint8Array[];
        try {
          frames = env.body.frames.map((f) => fromBase64Url(f));
          store.downlink.add({
            id: env.body.downlinkId,
            shortIdHex: env.body.shortId,
            priority: env.body.priority,
            frames,
            // The control plane's ttl is real time; the store's clock runs timeScale× faster against a simulated air.
            ttlMs: Math.round(env.body.ttlMs * timers.timeScale),
            maxAttempts: env.body.maxAttempts,
          });
        } catch (e) {
          log.warning('gateway.downlink_refused', { id: env.body.downlinkId, error: e });
          try {
            s.send('error', {
              code: 'RATE_LIMITED',
              message: e instanceof GatewayError ? e.message : 'downlink could not be stored',
              inReplyTo: env.id,
            });
          } catch {
            // closing anyway
          }
          return;
        }
        ack(s, env.id);
        wakeDispatcher?.();
        return;
      }
      case 'lora.downlink.cancel': {
        const n = store.downlink.cancel(env.body.downlinkIds);
        metrics.downlinkOutcomes.inc({ outcome: env.body.reason }, n);
        wakeDispatcher?.();
        return;
      }
      case 'lora.devices': {
        store.devices.replace(
          env.body.devices.map((d) => ({ shortIdHex: d.shortId, device: d.device, standing: d.standing })),
        );
        const c = store.devices.counts();
        log.info('gateway.devices', c);
        return;
      }
      case 'revoke': {
        if (env.body.kind === 'device') {
          try {
            store.devices.revoke(shortIdHex(shortIdOf(ed25519FromDidKey(env.body.device))), env.body.device);
            log.notice('gateway.device_revoked', { device: env.body.device });
          } catch (e) {
            log.warning('gateway.revoke_failed', { error: e });
          }
        }
        return;
      }
      case 'token.refreshed': {
        options.upstream?.tokens.write(env.body.token);
        tokenRefreshSentAtMs = undefined;
        log.info('gateway.token_refreshed');
        return;
      }
      case 'tool.call': {
        // A gateway declares no tools (its manifest says so); answer as envelope.md §6.2 requires.
        try {
          s.send('tool.result', {
            callId: env.body.callId,
            ok: false,
            error: { code: 'UNKNOWN_TOOL', message: 'a gateway has no tools' },
            durationMs: 0,
          });
        } catch {
          // closing
        }
        return;
      }
      case 'error':
        lastError = `${env.body.code}: ${env.body.message}`;
        log.warning('gateway.upstream_error', { code: env.body.code, message: env.body.message });
        return;
      default:
        // manifest.ack, policy.update, telemetry.ack: nothing for a gateway to do.
        log.debug('gateway.envelope_ignored', { type: env.type });
    }
  }

  function maybeRefreshToken(s: UpstreamSession): void {
    const token = options.upstream?.tokens.read();
    if (!token) return;
    const exp = tokenExpiryMs(token);
    if (exp === undefined) return;
    const iat = tokenIssuedMs(token) ?? exp - 3_600_000;
    const now = clock.nowMs();
    // Refresh when two thirds of the lifetime has passed; ask again at most once a minute.
    if (now < exp - (exp - iat) / 3) return;
    if (tokenRefreshSentAtMs !== undefined && timers.nowMs() - tokenRefreshSentAtMs < 60_000) return;
    try {
      s.send('token.refresh', { token });
      tokenRefreshSentAtMs = timers.nowMs();
    } catch {
      // not established
    }
  }

  function maybeRenewToken(renew: () => Promise<string>): void {
    if (renewing || timers.nowMs() < nextRenewAtMs) return;
    renewing = true;
    renewAttempts++;
    void renew()
      .then((token) => {
        options.upstream?.tokens.write(token);
        renewAttempts = 0;
        log.notice('gateway.token_renewed');
      })
      .catch((e) => {
        const delay = Math.min(1_800_000, 60_000 * 2 ** (renewAttempts - 1));
        nextRenewAtMs = timers.nowMs() + delay * (0.8 + 0.4 * random());
        lastError = `token renewal: ${(e as Error).message}`;
        log.warning('gateway.token_renewal_failed', { error: e, retryInMs: Math.round(delay) });
      })
      .finally(() => {
        renewing = false;
        evaluate();
      });
  }

  // ---- forwarding stored uplink and reports ----

  async function forwarder(): Promise<void> {
    while (running) {
      const s = session;
      const state = evaluate();
      let sentSomething = false;
      let throttled = false;
      if (s && state.forward) {
        // Delivery reports first: they are small and unblock the control plane's decisions.
        if (![...inFlight.values()].some((b) => b.kind === 'reports')) {
          const reports = store.downlink.pendingReports(256);
          if (reports.length > 0) {
            try {
              const id = s.send('lora.downlink.report', {
                reports: reports.map((r) => ({
                  downlinkId: r.id,
                  state: r.state === 'queued' ? 'transmitted' : r.state,
                  attempts: r.attempts,
                  reason: (r.reason as DownlinkFailure | undefined) ?? null,
                  lastTxMs: r.lastTxWallMs ?? null,
                  radio: r.radio ?? null,
                })),
              });
              inFlight.set(id, { kind: 'reports', reports });
              sentSomething = true;
            } catch (e) {
              log.debug('gateway.report_send_failed', { error: e });
            }
          }
        }
        const batches = [...inFlight.values()].filter((b) => b.kind === 'uplink').length;
        if (batches < limits.maxInFlightBatches && s.bufferedBytes() < 1 << 20) {
          const now = timers.nowMs();
          const allowance = take(replayBucket, limits.replay, 0, now).state.tokens;
          const want = Math.min(limits.batchFrames, Math.floor(allowance));
          if (want < 1) throttled = true;
          else {
            const lease = store.uplink.lease(want, 256 * 1024, limits.leaseMs);
            if (lease.frames.length === 0) store.uplink.release(lease.id);
            else {
              replayBucket = take(replayBucket, limits.replay, lease.frames.length, now).state;
              try {
                const id = s.send('lora.uplink', {
                  frames: lease.frames.map((f) => ({
                    stream: f.stream,
                    seq: f.seq,
                    frame: toBase64Url(f.record.frame),
                    radio: f.record.radio,
                    rssiDbm: Number.isFinite(f.record.rssiDbm) ? f.record.rssiDbm : null,
                    snrDb: Number.isFinite(f.record.snrDb) ? f.record.snrDb : null,
                    rxMs: f.record.rxWallMs,
                  })),
                });
                inFlight.set(id, {
                  kind: 'uplink',
                  leaseId: lease.id,
                  ranges: lease.frames.map((f) => ({ stream: f.stream, from: f.seq, to: f.seq })),
                  frames: lease.frames.length,
                });
                sentSomething = true;
              } catch (e) {
                store.uplink.release(lease.id);
                log.debug('gateway.uplink_send_failed', { error: e });
              }
            }
          }
        }
      }
      if (sentSomething) continue;
      // Wait for a new frame, an ack, a link change, or (when throttled) the replay bucket to refill.
      const waitMs = throttled ? Math.ceil(1000 / limits.replay.ratePerSec) : limits.tickMs;
      await new Promise<void>((resolve) => {
        const cancel = timers.setTimer(waitMs, () => {
          cancelTimers.delete(cancel);
          wakeForwarder = undefined;
          resolve();
        });
        cancelTimers.add(cancel);
        wakeForwarder = () => {
          cancel();
          cancelTimers.delete(cancel);
          wakeForwarder = undefined;
          resolve();
        };
      });
    }
  }

  // ---- downlink dispatch ----

  function planRadio(link: RadioLink): PlanRadio {
    return {
      name: link.name,
      idle: link.ready() && !link.busy(),
      ready: link.ready(),
      maxFrameBytes: link.maxFrameBytes,
      airtimesMs: (bytes) => link.airtimesMs(bytes),
      verdict: (airtimes) => link.verdict(airtimes),
    };
  }

  function startTransmit(link: RadioLink, id: string, frames: readonly Uint8Array[]): void {
    void link
      .transmit(frames)
      .then((r) => {
        if (r.ok) {
          transmissions++;
          metrics.downlinkTransmissions.inc({ radio: link.name });
          const item = store.downlink.transmitted(id, link.name, limits.retry);
          if (item?.state === 'failed') metrics.downlinkOutcomes.inc({ outcome: `failed_${item.reason}` });
          log.debug('gateway.downlink_sent', { id, radio: link.name, attempts: item?.attempts });
          wakeForwarder?.();
        } else {
          log.warning('gateway.downlink_send_failed', { id, radio: link.name, code: r.code, sent: r.sent });
        }
      })
      .catch((e) => log.error('gateway.transmit_failed', { id, error: e }))
      .finally(() => wakeDispatcher?.());
  }

  let lastBeaconAtMs = Number.NEGATIVE_INFINITY;

  function maybeBeacon(): void {
    if (limits.beaconIntervalMs <= 0 || timers.nowMs() - lastBeaconAtMs < limits.beaconIntervalMs) return;
    lastBeaconAtMs = timers.nowMs();
    const pending = store.downlink
      .pendingDevices()
      .slice(0, 48)
      .map((h) => Uint8Array.from(Buffer.from(h, 'hex')));
    let frame: Uint8Array;
    try {
      frame = encodeBeacon({
        gatewayShortId: ownShortId,
        seq: store.beaconSeq.next(),
        timeS: Math.floor(clock.nowMs() / 1000),
        pending,
      });
    } catch (e) {
      log.warning('gateway.beacon_failed', { error: e });
      return;
    }
    for (const link of links) {
      if (!link.ready() || link.busy() || frame.length > link.maxFrameBytes) continue;
      const airtimes = link.airtimesMs([frame.length]);
      if (!airtimes || !link.verdict(airtimes).allowed) continue;
      void link.transmit([frame]).finally(() => wakeDispatcher?.());
    }
  }

  async function dispatcher(): Promise<void> {
    while (running) {
      let waitMs = 60_000;
      try {
        const expired = store.downlink.sweep();
        if (expired > 0) {
          metrics.downlinkOutcomes.inc({ outcome: 'expired' }, expired);
          wakeForwarder?.();
        }
        maybeBeacon();
        const storeNow = store.db.time.nowMs();
        for (;;) {
          const active = store.downlink.active();
          const candidates: PlanCandidate[] = active.map((i) => ({
            id: i.id,
            shortIdHex: i.shortIdHex,
            priority: i.priority,
            dueInMs: i.nextAttemptAtStoreMs - storeNow,
            frameBytes: i.frames.map((f) => f.length),
            attempts: i.attempts,
          }));
          const step = planDownlink({
            candidates,
            radios: links.map(planRadio),
            lastHeardOn: (id) => lastHeard.get(id)?.radio,
          });
          if (step.kind === 'send') {
            const link = links.find((l) => l.name === step.radio)!;
            const item = active.find((i) => i.id === step.id)!;
            startTransmit(link, item.id, item.frames);
            continue;
          }
          if (step.kind === 'fail') {
            store.downlink.fail(step.id, step.reason);
            metrics.downlinkOutcomes.inc({ outcome: `failed_${step.reason}` });
            log.warning('gateway.downlink_failed', { id: step.id, reason: step.reason });
            wakeForwarder?.();
            continue;
          }
          if (step.kind === 'wait') waitMs = Math.min(waitMs, Math.max(step.inMs, 5));
          break;
        }
      } catch (e) {
        log.error('gateway.dispatch_failed', { error: e });
        waitMs = 1_000;
      }
      if (limits.beaconIntervalMs > 0) waitMs = Math.min(waitMs, limits.beaconIntervalMs);
      await new Promise<void>((resolve) => {
        const cancel = timers.setTimer(waitMs, () => {
          cancelTimers.delete(cancel);
          wakeDispatcher = undefined;
          resolve();
        });
        cancelTimers.add(cancel);
        wakeDispatcher = () => {
          cancel();
          cancelTimers.delete(cancel);
          wakeDispatcher = undefined;
          resolve();
        };
      });
    }
  }

  // ---- supervisor tick ----

  function tick(): void {
    if (!running) return;
    try {
      const s = evaluate();
      if (s.reconnect && session) {
        log.notice('gateway.reconnect', { backhaul: s.backhaul });
        session.close(1001, s.backhaul);
      } else if (s.connect && !session && timers.nowMs() >= nextConnectAtMs) {
        connect();
      } else if (s.ping && session) {
        try {
          session.send('ping', {});
        } catch {
          // closed meanwhile
        }
      }
      if (session && s.forward) maybeRefreshToken(session);
      if (s.backhaul === 'unauthorised' && options.upstream?.renewToken) maybeRenewToken(options.upstream.renewToken);
      const st = store.uplink.stats();
      metrics.uplinkStoredFrames.set({}, st.frames);
      metrics.uplinkStoredBytes.set({}, st.bytes);
      metrics.uplinkOldestAgeSeconds.set({}, (st.oldestAgeMs ?? 0) / 1000);
      const d = store.downlink.stats();
      for (const [state, n] of Object.entries(d.byState)) metrics.downlinkQueued.set({ state }, n);
      const c = store.devices.counts();
      metrics.devicesServed.set({ standing: 'served' }, c.served);
      metrics.devicesServed.set({ standing: 'revoked' }, c.revoked);
      for (const l of links) l.health();
    } catch (e) {
      log.error('gateway.tick_failed', { error: e });
    }
    const cancel = timers.setTimer(limits.tickMs, () => {
      cancelTimers.delete(cancel);
      tick();
    });
    cancelTimers.add(cancel);
  }

  const gateway: Gateway = {
    async start() {
      if (running) return;
      running = true;
      for (const l of links) {
        l.start(
          (p) => onPacket(l, p),
          (st) => onRadioStatus(l, st),
        );
        // open() keeps retrying in the driver; a radio that is not there yet must not hold the gateway back.
        void l.open().catch((e) => log.error('gateway.radio_open_failed', { radio: l.name, error: e }));
      }
      log.notice('gateway.started', { id: did, radios: links.length, enrolled: options.upstream !== undefined });
      tick();
      dispatcherDone = dispatcher();
      forwarderDone = forwarder();
    },
    async stop() {
      if (!running) return;
      running = false;
      for (const c of cancelTimers) c();
      cancelTimers.clear();
      wakeDispatcher?.();
      wakeForwarder?.();
      await Promise.all([dispatcherDone, forwarderDone]);
      const s = session;
      if (s) {
        s.close(1001, 'shutting down');
        await s.closed;
      }
      releaseInFlight();
      await Promise.all(links.map((l) => l.close().catch(() => undefined)));
      log.notice('gateway.stopped');
    },
    status() {
      const s = evaluate();
      const u = upstreamFacts();
      return {
        name: options.name,
        id: did,
        shortId: shortIdHex(ownShortId),
        startedAtWallMs,
        uptimeMs: timers.nowMs() - startedAtMs,
        link: {
          ...s,
          facts: { ...u, enrolled: options.upstream !== undefined, tokenUsable: tokenUsable() },
          sessions,
          lastError,
        },
        radios: links.map((l) => l.health()),
        uplink: {
          ...store.uplink.stats(),
          forwarded,
          inFlightBatches: [...inFlight.values()].filter((b) => b.kind === 'uplink').length,
        },
        downlink: { ...store.downlink.stats(), received: downlinkReceived, transmissions },
        devices: store.devices.counts(),
        manifestHash: mHash,
      };
    },
    linkState: () => evaluate(),
    nextLinkChange: () => new Promise((resolve) => linkWaiters.push(resolve)),
  };
  return gateway;
}
