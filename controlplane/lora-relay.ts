// The control plane's end of the LoRa path (docs/protocol/lora-relay.md, lora-frames.md §8.2): frames that gateways
// relay are opened with the device's session, replay-checked (window persisted before acting), reassembled, and
// handled — telemetry stored exactly once per (device, seq) and acknowledged by range, tool results completing
// their calls, heartbeats noted. Downlink (acks, tool calls, control) is sealed here and routed to the gateway that
// heard the device last, with retries left to the gateway and cancellation once the device has answered.
// Host-independent: everything durable or networked goes through LoraRelayPorts.

import { randomBytes } from 'node:crypto';
import { fromBase64Url, toBase64Url } from '../protocol/bytes.ts';
import type { Clock } from '../protocol/clock.ts';
import type { BodyOf } from '../protocol/envelope.ts';
import type { Logger } from '../protocol/log.ts';
import {
  createLoraReassembler,
  createReplayWindow,
  decodeHeartbeat,
  decodeLoraHeader,
  decodeTelemetry,
  decodeToolResult,
  encodeControl,
  encodeTelemetryAck,
  encodeToolCall,
  type LoraControl,
  type LoraMessage,
  type LoraReassembler,
  type LoraSession,
  type LoraTelemetryRecord,
  type LoraToolCall,
  type LoraToolResult,
  loraFrameCount,
  normalizeSeqRanges,
  openLoraFrame,
  type ReplayWindowState,
  type SeqRange,
  sealLoraMessage,
} from '../protocol/lora.ts';

/** A device the control plane can reach over LoRa. */
export interface LoraDevice {
  readonly device: string;
  readonly tid: string;
  readonly shortIdHex: string;
  /** The device's session keys (derived with the control plane's X25519 key, which never leaves its vault). */
  readonly session: LoraSession;
  /** Stream names of the accepted manifest, in order: telemetry stream indexes map to them. */
  readonly streams: readonly string[];
  /** Tool names of the accepted manifest, in order: calls name tools by index. */
  readonly tools: readonly string[];
  readonly revoked: boolean;
}

export interface IngestRecord {
  readonly seq: number;
  readonly stream: string;
  readonly ts: number;
  readonly value: null | boolean | number | string;
  readonly quality?: readonly string[];
}

/** Durable state and the network, as the host provides them. Every method is atomic. */
export interface LoraRelayPorts {
  /** Active and revoked devices with this short id (usually one; a collision yields several). */
  devicesByShortId(shortIdHex: string): Promise<readonly LoraDevice[]>;
  loadWindow(device: string): Promise<ReplayWindowState | undefined>;
  saveWindow(device: string, state: ReplayWindowState): Promise<void>;
  /** Stores records exactly once per (device, seq); returns which seqs were new and which were held already. */
  ingestTelemetry(device: string, records: readonly IngestRecord[]): Promise<{ stored: number; duplicates: number }>;
  /** `count` downlink seqs for `device`, never handed out before (persisted before returned), below 2^32. */
  takeDownlinkSeqs(device: string, count: number): Promise<number>;
  /** Sends an envelope to a connected gateway; false when it is not connected. */
  sendToGateway(gateway: string, type: 'lora.downlink' | 'lora.downlink.cancel', body: unknown): boolean;
  /** Connected gateways of the tenant (fallback route for a device not heard since start). */
  gatewaysOf(tid: string): readonly string[];
  /** Something the device said that the host may want (liveness, audit). */
  noteDevice?(device: string, event: { kind: 'heard'; gateway: string; radio: string; rssiDbm: number | null }): void;
}

export interface LoraRelayOptions {
  readonly ports: LoraRelayPorts;
  readonly clock: Clock;
  readonly log: Logger;
  /** Wait this long for more frames of a device before sending one ack covering them all (default 2 s). */
  readonly ackDelayMs?: number;
  /** Timers (host scheduler). */
  readonly after: (ms: number, fn: () => void) => () => void;
  /** Ack downlink: time to live and attempts (defaults 10 min, 2). */
  readonly ackTtlMs?: number;
  readonly ackAttempts?: number;
  /** Ranges acknowledged within this long are repeated in every later ack, so a newer ack supersedes older ones. */
  readonly ackMemoryMs?: number;
  /** Frame limit of the smallest radio profile on the route (default 233: fits both profiles). */
  readonly maxFrameBytes?: number;
}

export type FrameOutcome =
  | 'stored'
  | 'duplicate'
  | 'fragment'
  | 'malformed'
  | 'unknown_device'
  | 'revoked'
  | 'auth_failed'
  | 'replay'
  | 'payload_invalid'
  | 'enroll';

export interface UplinkResult {
  readonly outcomes: Readonly<Partial<Record<FrameOutcome, number>>>;
  /** Enroll requests, for the host's enrollment logic (lora-frames.md §4.10). */
  readonly enrollRequests: readonly { readonly frame: Uint8Array; readonly gateway: string }[];
}

export interface LoraCallOptions {
  readonly priority?: number;
  readonly timeoutMs: number;
  readonly maxAttempts?: number;
}

export interface LoraRelay {
  /** Handles one lora.uplink from `gateway`; resolves once every frame is durably handled (then ack the envelope). */
  handleUplink(gateway: string, tid: string, body: BodyOf<'lora.uplink'>): Promise<UplinkResult>;
  /** A delivery report from a gateway (informational: delivery is what the device answers). */
  handleReport(gateway: string, body: BodyOf<'lora.downlink.report'>): void;
  /** A gateway disconnected: routes through it are forgotten. */
  gatewayGone(gateway: string): void;
  /** Sends a tool call over LoRa and resolves with the device's result; rejects after `timeoutMs`. */
  callTool(device: LoraDevice, call: LoraToolCall, options: LoraCallOptions): Promise<LoraToolResult>;
  /**
   * Sends a CONTROL message (policy, JWK Set, revocation), transmitted `maxAttempts` times (default 6: the device does
   * not acknowledge it, so every attempt goes on the air; six make a loss of all unlikely even on a poor link, and
   * the host re-sends later what may still not have arrived). Returns the downlink id.
   */
  sendControl(
    device: LoraDevice,
    control: LoraControl,
    ttlMs: number,
    maxAttempts?: number,
  ): Promise<string | undefined>;
  /** Sends already sealed frames (e.g. an enroll response) towards a short id. */
  sendFrames(
    target: { device: string; tid: string; shortIdHex: string },
    frames: readonly Uint8Array[],
    o: { priority: number; ttlMs: number; maxAttempts: number },
  ): string | undefined;
  /** Where a device was heard last. */
  routeOf(device: string): { gateway: string; radio: string; atMs: number } | undefined;
  stats(): Readonly<Record<string, number>>;
}

interface PendingAck {
  readonly device: LoraDevice;
  ranges: SeqRange[];
  cancel: () => void;
}

interface RecentRanges {
  ranges: { range: SeqRange; atMs: number }[];
  /** Downlink ids of acks sent and not yet superseded. */
  outstanding: string[];
}

function newId(): string {
  return toBase64Url(randomBytes(16));
}

export function createLoraRelay(options: LoraRelayOptions): LoraRelay {
  const { ports, clock, log } = options;
  const ackDelayMs = options.ackDelayMs ?? 2_000;
  const ackTtlMs = options.ackTtlMs ?? 600_000;
  const ackAttempts = options.ackAttempts ?? 2;
  const ackMemoryMs = options.ackMemoryMs ?? 600_000;
  const maxFrameBytes = options.maxFrameBytes ?? 233;
  const windows = new Map<string, ReturnType<typeof createReplayWindow>>();
  const reassemblers = new Map<string, LoraReassembler>();
  const routes = new Map<string, { gateway: string; radio: string; atMs: number }>();
  const pendingAcks = new Map<string, PendingAck>();
  const recent = new Map<string, RecentRanges>();
  const calls = new Map<
    string,
    { device: string; resolve: (r: LoraToolResult) => void; downlinkId?: string; gateway?: string }
  >();
  const downlinks = new Map<string, { device: string; gateway: string }>();
  const counters: Record<string, number> = {};
  const count = (k: string, n = 1) => {
    counters[k] = (counters[k] ?? 0) + n;
  };

  async function windowOf(device: string) {
    let w = windows.get(device);
    if (!w) {
      const state = await ports.loadWindow(device);
      w = createReplayWindow(state ? { state } : {});
      windows.set(device, w);
    }
    return w;
  }

  function reassemblerOf(device: string): LoraReassembler {
    let r = reassemblers.get(device);
    if (!r) {
      // Per device, so one device's fragments can never push out another's.
      r = createLoraReassembler({ clock, maxMessages: 4, maxMessagesPerSource: 2, maxBytes: 16 * 1024 });
      reassemblers.set(device, r);
    }
    return r;
  }

  /** Seals `payload` for `device` and routes it; returns the downlink id. */
  async function sendDown(
    device: LoraDevice,
    type: 'telemetry.ack' | 'tool.call' | 'control',
    payload: Uint8Array,
    o: { priority: number; ttlMs: number; maxAttempts: number; listen?: boolean },
  ): Promise<{ id: string; gateways: string[] } | undefined> {
    const n = loraFrameCount(payload.length, maxFrameBytes);
    const first = await ports.takeDownlinkSeqs(device.device, n);
    const frames = sealLoraMessage(device.session, { type, firstSeq: first, listen: o.listen ?? false }, payload, {
      maxFrameBytes,
    });
    const id = sendFramesTo(device, frames, o);
    return id;
  }

  function sendFramesTo(
    target: { device: string; tid: string; shortIdHex: string },
    frames: readonly Uint8Array[],
    o: { priority: number; ttlMs: number; maxAttempts: number },
  ): { id: string; gateways: string[] } | undefined {
    const id = newId();
    const r = routes.get(target.device);
    const gateways = r ? [r.gateway] : [...ports.gatewaysOf(target.tid)];
    const sentTo: string[] = [];
    for (const gateway of gateways) {
      const ok = ports.sendToGateway(gateway, 'lora.downlink', {
        downlinkId: id,
        device: target.device,
        shortId: target.shortIdHex,
        priority: o.priority,
        frames: frames.map((f) => toBase64Url(f)),
        ttlMs: Math.max(1, Math.min(Math.floor(o.ttlMs), 7 * 86_400_000)),
        maxAttempts: o.maxAttempts,
      });
      if (ok) {
        sentTo.push(gateway);
        downlinks.set(`${id}:${gateway}`, { device: target.device, gateway });
      }
    }
    if (sentTo.length === 0) {
      count('downlink_unroutable');
      return undefined;
    }
    count('downlink_sent');
    return { id, gateways: sentTo };
  }

  function cancel(id: string, gateways: readonly string[], reason: 'delivered' | 'superseded' | 'expired' | 'revoked') {
    for (const g of gateways) {
      ports.sendToGateway(g, 'lora.downlink.cancel', { downlinkIds: [id], reason });
      downlinks.delete(`${id}:${g}`);
    }
  }

  /** Collects ranges per device and sends one ack a little later, covering recent ranges too. */
  function scheduleAck(device: LoraDevice, ranges: readonly SeqRange[]): void {
    const p = pendingAcks.get(device.device);
    if (p) {
      p.ranges.push(...ranges);
      return;
    }
    const entry: PendingAck = { device, ranges: [...ranges], cancel: () => {} };
    entry.cancel = options.after(ackDelayMs, () => {
      pendingAcks.delete(device.device);
      void flushAck(entry).catch((e) => log.error('lora.ack_failed', { device: device.device, error: e }));
    });
    pendingAcks.set(device.device, entry);
  }

  async function flushAck(p: PendingAck): Promise<void> {
    const now = clock.monotonicMs();
    const mem = recent.get(p.device.device) ?? { ranges: [], outstanding: [] };
    mem.ranges = mem.ranges.filter((r) => now - r.atMs < ackMemoryMs);
    for (const r of p.ranges) mem.ranges.push({ range: r, atMs: now });
    recent.set(p.device.device, mem);
    let ranges = normalizeSeqRanges(mem.ranges.map((r) => r.range));
    // An ack must fit one frame: keep the newest ranges when there are too many.
    while (ranges.length > 1 && encodeTelemetryAck({ ranges }).length > maxFrameBytes - 40) ranges = ranges.slice(1);
    const payload = encodeTelemetryAck({ ranges, timeS: Math.floor(clock.nowMs() / 1000) });
    const sent = await sendDown(p.device, 'telemetry.ack', payload, {
      priority: 2,
      ttlMs: ackTtlMs,
      maxAttempts: ackAttempts,
    });
    if (!sent) return;
    count('acks_sent');
    // The new ack repeats every recent range: older ones still queued at gateways are superseded.
    for (const old of mem.outstanding) {
      const gws = [...downlinks.values()].filter((d) => d.device === p.device.device).map((d) => d.gateway);
      cancel(old, [...new Set(gws)], 'superseded');
    }
    mem.outstanding = [sent.id];
  }

  async function handleMessage(device: LoraDevice, m: LoraMessage, gateway: string): Promise<FrameOutcome> {
    switch (m.type) {
      case 'telemetry': {
        const records = decodeTelemetry(m.payload);
        const mapped: IngestRecord[] = [];
        for (const r of records) {
          const stream = device.streams[r.stream];
          if (stream === undefined || r.value instanceof Uint8Array) {
            count('telemetry_unmappable');
            continue;
          }
          mapped.push({ seq: r.seq, stream, ts: r.ts, value: r.value, ...(r.quality ? { quality: r.quality } : {}) });
        }
        const result = await ports.ingestTelemetry(device.device, mapped);
        count('telemetry_records_stored', result.stored);
        count('telemetry_records_duplicate', result.duplicates);
        // Acknowledge everything decoded (stored now or before), unmappable records too: resending cannot help them.
        scheduleAck(
          device,
          records.map((r: LoraTelemetryRecord) => ({ from: r.seq, to: r.seq })),
        );
        return result.stored > 0 ? 'stored' : 'duplicate';
      }
      case 'tool.result': {
        const result = decodeToolResult(m.payload);
        const pending = calls.get(result.callId);
        if (pending && pending.device === device.device) {
          calls.delete(result.callId);
          pending.resolve(result);
          count('tool_results');
        } else count('tool_results_late');
        return 'stored';
      }
      case 'heartbeat': {
        decodeHeartbeat(m.payload);
        count('heartbeats');
        // Answer with the time only when nothing else is on its way (the device learns we hear it).
        if (!pendingAcks.has(device.device)) scheduleAck(device, []);
        log.debug('lora.heartbeat', { device: device.device, gateway });
        return 'stored';
      }
      default:
        return 'payload_invalid';
    }
  }

  async function handleFrame(
    gateway: string,
    tid: string,
    f: BodyOf<'lora.uplink'>['frames'][number],
    enrollRequests: { frame: Uint8Array; gateway: string }[],
  ): Promise<FrameOutcome> {
    let frame: Uint8Array;
    let header: ReturnType<typeof decodeLoraHeader>['header'];
    try {
      frame = fromBase64Url(f.frame);
      header = decodeLoraHeader(frame).header;
    } catch {
      return 'malformed';
    }
    if (header.direction !== 'uplink') return 'malformed';
    if (header.type === 'enroll.request') {
      enrollRequests.push({ frame, gateway });
      return 'enroll';
    }
    const shortIdHex = Buffer.from(header.shortId).toString('hex');
    const candidates = (await ports.devicesByShortId(shortIdHex)).filter((d) => d.tid === tid);
    if (candidates.length === 0) return 'unknown_device';
    for (const device of candidates) {
      const w = await windowOf(device.device);
      if (w.check(header.seq) !== 'fresh') {
        // Only meaningful for the device whose key opens it; try the others first.
        if (candidates.length === 1) return 'replay';
        continue;
      }
      let opened: ReturnType<typeof openLoraFrame>;
      try {
        opened = openLoraFrame(frame, device.session, { expect: 'uplink' });
      } catch {
        continue; // not this device's session (short-id collision, forged, tampered)
      }
      if (device.revoked) return 'revoked';
      if (w.check(header.seq) !== 'fresh') return 'replay'; // accepted by a concurrent call meanwhile
      w.accept(header.seq);
      await ports.saveWindow(device.device, w.state());
      routes.set(device.device, { gateway, radio: f.radio, atMs: clock.monotonicMs() });
      ports.noteDevice?.(device.device, { kind: 'heard', gateway, radio: f.radio, rssiDbm: f.rssiDbm });
      const r = reassemblerOf(device.device).add(opened);
      if (r.status === 'duplicate') return 'duplicate';
      if (r.status !== 'complete') return 'fragment';
      try {
        return await handleMessage(device, r.message, gateway);
      } catch (e) {
        log.warning('lora.payload_invalid', { device: device.device, type: r.message.type, error: e });
        return 'payload_invalid';
      }
    }
    return candidates.some((c) => windows.get(c.device)?.check(header.seq) !== 'fresh') ? 'replay' : 'auth_failed';
  }

  return {
    async handleUplink(gateway, tid, body) {
      const outcomes: Partial<Record<FrameOutcome, number>> = {};
      const enrollRequests: { frame: Uint8Array; gateway: string }[] = [];
      for (const f of body.frames) {
        const o = await handleFrame(gateway, tid, f, enrollRequests);
        outcomes[o] = (outcomes[o] ?? 0) + 1;
        count(`frames_${o}`);
      }
      return { outcomes, enrollRequests };
    },
    handleReport(gateway, body) {
      for (const r of body.reports) {
        count(`report_${r.state}`);
        if (r.state !== 'transmitted') downlinks.delete(`${r.downlinkId}:${gateway}`);
      }
    },
    gatewayGone(gateway) {
      for (const [device, r] of routes) if (r.gateway === gateway) routes.delete(device);
    },
    callTool(device, call, o) {
      return new Promise<LoraToolResult>((resolve, reject) => {
        const payload = encodeToolCall(call);
        const entry: {
          device: string;
          resolve: (r: LoraToolResult) => void;
          downlinkId?: string;
          gateways?: string[];
        } = {
          device: device.device,
          resolve: (r) => {
            cancelTimer();
            if (entry.downlinkId && entry.gateways) cancel(entry.downlinkId, entry.gateways, 'delivered');
            resolve(r);
          },
        };
        const cancelTimer = options.after(o.timeoutMs, () => {
          if (calls.get(call.callId) !== entry) return;
          calls.delete(call.callId);
          if (entry.downlinkId && entry.gateways) cancel(entry.downlinkId, entry.gateways, 'expired');
          count('tool_calls_timed_out');
          reject(new Error(`no result from ${device.device} within ${o.timeoutMs} ms`));
        });
        calls.set(call.callId, entry);
        void sendDown(device, 'tool.call', payload, {
          priority: o.priority ?? 1,
          ttlMs: o.timeoutMs,
          maxAttempts: o.maxAttempts ?? 10,
        })
          .then((sent) => {
            if (!sent) {
              calls.delete(call.callId);
              cancelTimer();
              reject(new Error(`no gateway reaches ${device.device}`));
              return;
            }
            entry.downlinkId = sent.id;
            entry.gateways = sent.gateways;
            count('tool_calls_sent');
          })
          .catch((e) => {
            calls.delete(call.callId);
            cancelTimer();
            reject(e);
          });
      });
    },
    async sendControl(device, control, ttlMs, maxAttempts = 6) {
      // Priority 0: ahead of calls (1), which may need what it carries (a key, the issuer) to pass the device's gate.
      const sent = await sendDown(device, 'control', encodeControl(control), { priority: 0, ttlMs, maxAttempts });
      return sent?.id;
    },
    sendFrames: (target, frames, o) => sendFramesTo(target, frames, o)?.id,
    routeOf: (device) => routes.get(device),
    stats: () => ({ ...counters }),
  };
}
