// The device's end of the LoRa path (docs/protocol/lora-frames.md §8.2): telemetry packed many readings to a frame,
// tool results, heartbeats and enrollment go out sealed under the session's uplink key, never more often than the
// radio's airtime law and this device's share of it allow; downlink frames (acks, tool calls, control messages,
// enroll responses) are checked, replay-protected (the window persisted before anything acts on a frame),
// reassembled and dispatched. A gateway in between relays but can neither read nor forge any of it.

import { rnodeAirtimeMs } from '../firmware-bridge/airtime.ts';
import { createDutyCycleAccountant, type DutyCycleAccountant } from '../firmware-bridge/duty-cycle.ts';
import { meshtasticAirtimeMs } from '../firmware-bridge/meshtastic/lora-params.ts';
import { createData, encodeData } from '../firmware-bridge/meshtastic/protobuf.ts';
import type { Radio, RadioParams, ReceivedPacket } from '../firmware-bridge/radio.ts';
import type { Clock } from '../protocol/clock.ts';
import { isOutpostError } from '../protocol/errors.ts';
import type { Logger } from '../protocol/log.ts';
import {
  createLoraReassembler,
  createReplayWindow,
  decodeBeacon,
  decodeControl,
  decodeLoraHeader,
  decodeTelemetryAck,
  decodeToolCall,
  type EnrollResponse,
  encodeHeartbeat,
  encodeToolResult,
  LORA_OVERHEAD_BYTES,
  type LoraControl,
  type LoraFrameType,
  type LoraSession,
  type LoraTelemetryRecord,
  type LoraToolCall,
  type LoraToolResult,
  loraFrameCount,
  loraPayloadCapacity,
  openEnrollResponse,
  openLoraFrame,
  packTelemetry,
  type ReplayWindowState,
  type SeqRange,
  sealEnrollRequest,
  sealLoraFrame,
  sealLoraMessage,
} from '../protocol/lora.ts';
import type { Ed25519KeyPair } from '../protocol/signing.ts';

/** Numbers that never repeat for this device's uplink (store/sequence with max 2^32 − 1). */
export interface UplinkSeqSource {
  take(count: number): { first: number; count: number };
}

/** Timers in the device's time (scaled when the air is simulated faster than real time). */
export interface LinkTimers {
  nowMs(): number;
  setTimer(delayMs: number, fn: () => void): () => void;
}

export interface LoraLinkHandlers {
  /** Runs a call through the safety gate and executor; its result goes back the same way. */
  toolCall(call: LoraToolCall): Promise<Omit<LoraToolResult, 'callId'>>;
  /** A CONTROL message (policy, JWK Set, revocation) from the control plane. */
  control?(message: LoraControl): void;
}

export interface LoraLinkOptions {
  readonly radio: Radio;
  /** The radio's modulation and region; RNode: from configuration; Meshtastic: from its status once ready. */
  readonly params?: RadioParams;
  /** lora-frames.md §6 profile: 254 (RNode), 233 (Meshtastic). */
  readonly maxFrameBytes: number;
  /** Absent until enrolled (enrollment over LoRa works without it); setSession() supplies it later. */
  readonly session?: LoraSession;
  readonly seq: UplinkSeqSource;
  /** Downlink replay window: its last persisted state, and where to persist it (synchronously, durably). */
  readonly downlinkWindow?: { readonly state?: ReplayWindowState; save(state: ReplayWindowState): void };
  readonly handlers: LoraLinkHandlers;
  readonly timers: LinkTimers;
  readonly clock: Clock;
  readonly log: Logger;
  /** Fraction (0..1] of the regional duty-cycle budget this device lets itself use (default 0.5: room for others). */
  readonly dutyCycleShare?: number;
  /** Send a heartbeat (with L set) after this long without any uplink, 0 = never (default 0). */
  readonly heartbeatIntervalMs?: number;
  /** Results of this many recent calls are kept, so a repeated call is answered without running again (default 64). */
  readonly resultCacheSize?: number;
  /** A call retransmitted by the gateway is answered again from the stored result at most this often (default 10 s). */
  readonly resultResendMs?: number;
}

export interface LinkStats {
  framesSent: number;
  framesReceived: number;
  airtimeMs: number;
  /** Downlink frames refused, by reason (not for us, replay, auth, malformed …). */
  readonly refused: Record<string, number>;
  toolCalls: number;
  repeatedCalls: number;
  /** Results sent again because the gateway retransmitted their call. */
  resentResults: number;
  acks: number;
}

export interface TelemetrySendResult {
  /** Records put on the air, in frames. */
  readonly sent: readonly LoraTelemetryRecord[];
  /** Not sent now (budget or frame limit): send them later. */
  readonly leftover: readonly LoraTelemetryRecord[];
  /** Records no frame of this profile can carry. */
  readonly oversize: readonly LoraTelemetryRecord[];
}

export interface LoraLink {
  start(): void;
  stop(): Promise<void>;
  ready(): boolean;
  /**
   * Packs `records` (caller's priority order) into as many frames as the airtime budget allows now (at most
   * `maxFrames`) and sends them. Resolves once they are on the air; acknowledgements arrive through onAck.
   */
  sendTelemetry(
    records: readonly LoraTelemetryRecord[],
    options?: { maxFrames?: number },
  ): Promise<TelemetrySendResult>;
  /** Called with the record ranges of every telemetry.ack (and the control plane's time, a lower bound). */
  onAck(listener: (ranges: readonly SeqRange[], timeS: number | undefined) => void): () => void;
  /** Sends a heartbeat now (L set: the gateway may deliver queued downlink right after it). */
  heartbeat(queuedRecords: number): Promise<void>;
  /** How long until one more frame of `bytes` may go (0: now; Infinity: never, or radio not ready). */
  waitMs(bytes: number): number;
  /**
   * Enrollment over LoRa (lora-frames.md §4.10): sends enroll.request every `retryMs` until a response to one of them
   * arrives or `timeoutMs` passes. The token never goes on air. Throws LORA_ENROLL_INVALID on a forged response.
   */
  enroll(input: {
    readonly keys: Ed25519KeyPair;
    readonly x25519Public: Uint8Array;
    readonly token: string;
    readonly manifestHash: Uint8Array;
    readonly retryMs: number;
    readonly timeoutMs: number;
  }): Promise<EnrollResponse | undefined>;
  /** Uses `session` from now on (after enrollment over LoRa, or a re-key). */
  setSession(session: LoraSession, downlinkWindow?: ReplayWindowState): void;
  stats(): LinkStats;
}

interface Outgoing {
  readonly priority: number;
  readonly type: LoraFrameType;
  /** Builds the frames at send time, with seqs taken then (so seqs rise in transmission order). */
  readonly build: () => Uint8Array[];
  readonly frameBytes: readonly number[];
  readonly resolve: (ok: boolean) => void;
}

const PRIORITY = { result: 0, enroll: 1, heartbeat: 2, telemetry: 3 } as const;

function meshtasticDataBytes(payloadBytes: number): number {
  return encodeData(createData({ portnum: 256, payload: new Uint8Array(payloadBytes) })).length;
}

export function createLoraLink(options: LoraLinkOptions): LoraLink {
  const { radio, timers, clock } = options;
  const log = options.log.child({ lora: radio.path });
  const share = options.dutyCycleShare ?? 0.5;
  if (!(share > 0 && share <= 1)) throw new RangeError('dutyCycleShare must be in (0, 1]');
  let session = options.session;
  let window = createReplayWindow(options.downlinkWindow?.state ? { state: options.downlinkWindow.state } : {});
  const reassembler = createLoraReassembler({ clock: { nowMs: () => clock.nowMs(), monotonicMs: timers.nowMs } });
  const accountants = new Map<string, DutyCycleAccountant>();
  const ackListeners = new Set<(ranges: readonly SeqRange[], timeS: number | undefined) => void>();
  const results = new Map<string, Omit<LoraToolResult, 'callId'>>();
  const running = new Set<string>();
  const resultCacheSize = options.resultCacheSize ?? 64;
  const enrollWaiters = new Set<(frame: Uint8Array) => void>();
  const queue: Outgoing[] = [];
  const stats: LinkStats = {
    framesSent: 0,
    framesReceived: 0,
    airtimeMs: 0,
    refused: {},
    toolCalls: 0,
    repeatedCalls: 0,
    resentResults: 0,
    acks: 0,
  };
  let started = false;
  let stopped = false;
  let wake: (() => void) | undefined;
  let lastUplinkMs = timers.nowMs();
  let heartbeatCancel: (() => void) | undefined;
  let pumpDone: Promise<void> = Promise.resolve();

  const refuse = (reason: string) => {
    stats.refused[reason] = (stats.refused[reason] ?? 0) + 1;
  };

  function params(): RadioParams | undefined {
    const s = radio.status();
    return s.state === 'ready' ? s.params : options.params;
  }

  function accountant(p: RadioParams): DutyCycleAccountant {
    const key = `${p.region}:${p.freqHz}:${p.bandwidthHz}`;
    let a = accountants.get(key);
    if (!a) {
      // This device's share of the budget: the law's window with a proportionally shorter allowance.
      a = createDutyCycleAccountant({ region: p.region, defaultBandwidthHz: p.bandwidthHz });
      accountants.set(key, a);
    }
    return a;
  }

  function airtimeOf(bytes: number, p: RadioParams): number {
    if (radio.kind === 'rnode') {
      return rnodeAirtimeMs(bytes, {
        spreadingFactor: p.spreadingFactor,
        bandwidthHz: p.bandwidthHz,
        codingRate: p.codingRate,
      });
    }
    return meshtasticAirtimeMs(meshtasticDataBytes(bytes), p);
  }

  /** ms until frames of these sizes may go back to back; Infinity when never (or the radio is not ready). */
  function waitFor(frameBytes: readonly number[]): number {
    const p = params();
    if (!p || radio.status().state !== 'ready') return Number.POSITIVE_INFINITY;
    let airtimes: number[];
    try {
      airtimes = frameBytes.map((b) => airtimeOf(b, p));
    } catch {
      return Number.POSITIVE_INFINITY;
    }
    const acc = accountant(p);
    const now = timers.nowMs();
    if (p.region === 'US915') {
      for (const ms of airtimes) {
        const d = acc.canTransmit(p.freqHz, ms, now, p.bandwidthHz);
        if (!d.allowed) return d.retryAfterMs ?? Number.POSITIVE_INFINITY;
      }
      return 0;
    }
    const total = airtimes.reduce((a, b) => a + b, 0);
    if (p.region === 'EU868') {
      // Our share of the budget: our own airtime counts 1/share times (recorded so too), so we use at most
      // share × budget of any window.
      const d = acc.canTransmit(p.freqHz, total / share, now, p.bandwidthHz);
      return d.allowed ? 0 : (d.retryAfterMs ?? Number.POSITIVE_INFINITY);
    }
    return 0;
  }

  async function sendFrames(frames: readonly Uint8Array[]): Promise<boolean> {
    const p = params();
    if (!p) return false;
    for (const f of frames) {
      const airtime = airtimeOf(f.length, p);
      const outcome = await radio.send(f, { wantAck: false });
      if (outcome.state === 'failed') {
        log.warning('lora.send_failed', { code: outcome.code, reason: outcome.reason });
        return false;
      }
      // Recorded on confirmation, as the gateway does: never earlier than it really went out. With a share
      // below 1, the airtime is recorded inflated so the share holds in the law's own window.
      accountant(p).record(p.freqHz, p.region === 'EU868' ? airtime / share : airtime, timers.nowMs(), p.bandwidthHz);
      stats.framesSent++;
      stats.airtimeMs += airtime;
      lastUplinkMs = timers.nowMs();
    }
    return true;
  }

  function kick(): void {
    const w = wake;
    wake = undefined;
    w?.();
  }

  async function pump(): Promise<void> {
    try {
      while (!stopped) {
        queue.sort((a, b) => a.priority - b.priority);
        const next = queue[0];
        if (!next) {
          await new Promise<void>((r) => {
            wake = r;
          });
          continue;
        }
        const waitMs = waitFor(next.frameBytes);
        if (waitMs > 0) {
          // Not ready, or over the budget: wait for the law (or a status change, which kicks), then re-plan.
          await new Promise<void>((r) => {
            const cancel = timers.setTimer(Number.isFinite(waitMs) ? waitMs : 1_000, () => {
              wake = undefined;
              r();
            });
            wake = () => {
              cancel();
              r();
            };
          });
          continue;
        }
        queue.shift();
        let ok = false;
        try {
          ok = await sendFrames(next.build());
        } catch (e) {
          log.error('lora.send_error', { type: next.type, error: e });
        }
        next.resolve(ok);
      }
    } finally {
      for (const q of queue.splice(0)) q.resolve(false);
    }
  }

  function enqueue(o: Omit<Outgoing, 'resolve'>): Promise<boolean> {
    return new Promise<boolean>((resolve) => {
      if (stopped) return resolve(false);
      queue.push({ ...o, resolve });
      kick();
    });
  }

  /** Sizes of the frames a payload becomes (lora-frames.md §7.1): one frame, or 2..16 fragments. */
  function frameBytesOf(payloadBytes: number): number[] {
    const count = loraFrameCount(payloadBytes, options.maxFrameBytes);
    if (count === 1) return [payloadBytes + LORA_OVERHEAD_BYTES];
    const per = loraPayloadCapacity(options.maxFrameBytes).perFragment;
    return Array.from({ length: count }, (_, i) => Math.min(per, payloadBytes - i * per) + LORA_OVERHEAD_BYTES + 1);
  }

  function sealMessage(
    type: 'tool.result' | 'telemetry' | 'heartbeat',
    payload: Uint8Array,
    listen = false,
  ): Uint8Array[] {
    if (!session) throw new Error('no LoRa session');
    const count = frameBytesOf(payload.length).length;
    const { first } = options.seq.take(count);
    return sealLoraMessage(session, { type, firstSeq: first, listen }, payload, {
      maxFrameBytes: options.maxFrameBytes,
    });
  }

  // ---- downlink ----

  /** First seq of each call message answered → its call id (bounded like the result cache). */
  const answered = new Map<number, string>();
  const lastResent = new Map<string, number>();

  function resendResult(frame: Uint8Array, firstSeq: number): void {
    const callId = answered.get(firstSeq);
    const result = callId === undefined ? undefined : results.get(callId);
    if (!session || callId === undefined || !result) return;
    const now = timers.nowMs();
    if (now - (lastResent.get(callId) ?? Number.NEGATIVE_INFINITY) < (options.resultResendMs ?? 10_000)) return;
    try {
      openLoraFrame(frame, session, { expect: 'downlink', maxFrameBytes: 508 });
    } catch {
      return; // not from the control plane: a forgery gets nothing
    }
    lastResent.set(callId, now);
    if (lastResent.size > resultCacheSize) lastResent.delete(lastResent.keys().next().value as string);
    stats.resentResults++;
    const payload = encodeToolResult({ callId, ...result });
    void enqueue({
      priority: PRIORITY.result,
      type: 'tool.result',
      frameBytes: frameBytesOf(payload.length),
      build: () => sealMessage('tool.result', payload, true),
    });
  }

  async function onToolCall(call: LoraToolCall, firstSeq: number): Promise<void> {
    answered.set(firstSeq, call.callId);
    if (answered.size > resultCacheSize) answered.delete(answered.keys().next().value as number);
    stats.toolCalls++;
    let result = results.get(call.callId);
    if (result) stats.repeatedCalls++;
    else if (running.has(call.callId))
      return; // a retransmission while it runs: the result will go out once
    else {
      running.add(call.callId);
      try {
        result = await options.handlers.toolCall(call);
      } catch (e) {
        result = {
          status: 'error',
          durationMs: 0,
          value: { code: isOutpostError(e) ? e.code : 'INTERNAL', message: 'the call failed on the device' },
        };
      } finally {
        running.delete(call.callId);
      }
      results.set(call.callId, result);
      if (results.size > resultCacheSize) results.delete(results.keys().next().value as string);
    }
    const payload = encodeToolResult({ callId: call.callId, ...result });
    await enqueue({
      priority: PRIORITY.result,
      type: 'tool.result',
      frameBytes: frameBytesOf(payload.length),
      build: () => sealMessage('tool.result', payload, true),
    });
  }

  function onPacket(packet: ReceivedPacket): void {
    const frame = packet.payload;
    let header: ReturnType<typeof decodeLoraHeader>['header'];
    try {
      header = decodeLoraHeader(frame, { maxFrameBytes: 508 }).header;
    } catch {
      refuse('malformed');
      return;
    }
    if (header.type === 'beacon') {
      try {
        const b = decodeBeacon(frame);
        const own = session?.shortId;
        if (own && b.pending.some((id) => Buffer.compare(id, own) === 0)) {
          // A hint only: a heartbeat with L lets the gateway deliver what it holds for us.
          if (timers.nowMs() - lastUplinkMs > 10_000) void link.heartbeat(0);
        }
      } catch {
        refuse('malformed');
      }
      return;
    }
    if (header.direction !== 'downlink') {
      refuse('not_downlink');
      return;
    }
    if (header.type === 'enroll.response') {
      for (const w of enrollWaiters) w(frame);
      return;
    }
    if (!session || Buffer.compare(header.shortId, session.shortId) !== 0) {
      refuse('not_for_us');
      return;
    }
    if (window.check(header.seq) !== 'fresh') {
      refuse('replay');
      // A call frame seen before: the gateway is retrying because our result did not reach the control plane.
      // Answer again from the stored result (authenticated first, at most once per resendMs per call).
      if (header.type === 'tool.call') resendResult(frame, header.seq - (header.fragment?.index ?? 0));
      return;
    }
    let opened: ReturnType<typeof openLoraFrame>;
    try {
      opened = openLoraFrame(frame, session, { expect: 'downlink', maxFrameBytes: 508 });
    } catch {
      refuse('auth');
      return;
    }
    window.accept(header.seq);
    // Durable before anything acts on the frame (§10.2): a replay after a crash must not act twice.
    options.downlinkWindow?.save(window.state());
    stats.framesReceived++;
    const r = reassembler.add(opened);
    if (r.status !== 'complete') return;
    const m = r.message;
    try {
      switch (m.type) {
        case 'telemetry.ack': {
          const ack = decodeTelemetryAck(m.payload);
          stats.acks++;
          for (const l of ackListeners) l(ack.ranges, ack.timeS);
          return;
        }
        case 'tool.call':
          void onToolCall(decodeToolCall(m.payload), m.firstSeq).catch((e) =>
            log.error('lora.tool_call_failed', { error: e }),
          );
          return;
        case 'control':
          options.handlers.control?.(decodeControl(m.payload));
          return;
        default:
          refuse('unexpected_type');
      }
    } catch (e) {
      log.warning('lora.downlink_undecodable', { type: m.type, error: e });
      refuse('malformed');
    }
  }

  function scheduleHeartbeat(): void {
    heartbeatCancel?.();
    const interval = options.heartbeatIntervalMs ?? 0;
    if (interval <= 0 || stopped) return;
    const due = Math.max(0, lastUplinkMs + interval - timers.nowMs());
    heartbeatCancel = timers.setTimer(due, () => {
      if (stopped) return;
      const run = timers.nowMs() - lastUplinkMs >= interval && session ? link.heartbeat(0) : Promise.resolve();
      void run.finally(scheduleHeartbeat);
    });
  }

  const link: LoraLink = {
    start() {
      if (started) return;
      started = true;
      void (async () => {
        for await (const p of radio.packets()) {
          if (stopped) return;
          onPacket(p);
        }
      })().catch((e) => log.error('lora.receive_failed', { error: e }));
      void (async () => {
        for await (const _s of radio.statusChanges()) {
          if (stopped) return;
          kick();
        }
      })().catch((e) => log.error('lora.status_watch_failed', { error: e }));
      pumpDone = pump();
      scheduleHeartbeat();
    },
    async stop() {
      stopped = true;
      heartbeatCancel?.();
      kick();
      await pumpDone;
    },
    ready: () => radio.status().state === 'ready',
    async sendTelemetry(records, o = {}) {
      if (!session) return { sent: [], leftover: [...records], oversize: [] };
      // As many frames as the budget allows now; the rest waits for the next call.
      const full = packTelemetry(records, options.maxFrameBytes, {
        ...(o.maxFrames === undefined ? {} : { maxFrames: o.maxFrames }),
      });
      const sent: LoraTelemetryRecord[] = [];
      let frames = full.frames;
      let leftover = [...full.leftover];
      const allowed: typeof frames = [];
      const sizes: number[] = [];
      for (const f of frames) {
        const bytes = f.payload.length + LORA_OVERHEAD_BYTES;
        if (waitFor([...sizes, bytes]) > 0) break;
        allowed.push(f);
        sizes.push(bytes);
      }
      if (allowed.length < frames.length) {
        leftover = [...frames.slice(allowed.length).flatMap((f) => f.records), ...leftover];
        frames = allowed;
      }
      for (const f of frames) {
        const ok = await enqueue({
          priority: PRIORITY.telemetry,
          type: 'telemetry',
          frameBytes: [f.payload.length + LORA_OVERHEAD_BYTES],
          build: () => sealMessage('telemetry', f.payload),
        });
        if (ok) sent.push(...f.records);
        else leftover.unshift(...f.records);
      }
      return { sent, leftover, oversize: full.oversize };
    },
    onAck(listener) {
      ackListeners.add(listener);
      return () => ackListeners.delete(listener);
    },
    async heartbeat(queuedRecords) {
      const current = session;
      if (!current) return;
      const payload = encodeHeartbeat({
        uptimeS: Math.floor(timers.nowMs() / 1000),
        queuedRecords,
        timeS: Math.floor(clock.nowMs() / 1000),
      });
      await enqueue({
        priority: PRIORITY.heartbeat,
        type: 'heartbeat',
        frameBytes: [payload.length + LORA_OVERHEAD_BYTES],
        build: () => [
          sealLoraFrame(current, { type: 'heartbeat', seq: options.seq.take(1).first, listen: true }, payload),
        ],
      });
    },
    waitMs: (bytes) => waitFor([bytes]),
    async enroll(input) {
      const deadline = timers.nowMs() + input.timeoutMs;
      const requests: Uint8Array[] = [];
      return new Promise<EnrollResponse | undefined>((resolve, reject) => {
        let done = false;
        let cancelRetry = () => {};
        const finish = (r: EnrollResponse | undefined, e?: unknown) => {
          if (done) return;
          done = true;
          cancelRetry();
          enrollWaiters.delete(onResponse);
          if (e) reject(e);
          else resolve(r);
        };
        const onResponse = (frame: Uint8Array) => {
          for (const request of requests) {
            let response: EnrollResponse;
            try {
              response = openEnrollResponse(frame, { request, token: input.token });
            } catch {
              continue; // not the answer to this request (or forged): try the others
            }
            finish(response);
            return;
          }
          refuse('enroll_response_unmatched');
        };
        enrollWaiters.add(onResponse);
        const attempt = () => {
          if (done) return;
          if (timers.nowMs() >= deadline) return finish(undefined);
          const request = sealEnrollRequest({
            device: input.keys,
            deviceX25519Public: input.x25519Public,
            token: input.token,
            manifestHash: input.manifestHash,
            seq: options.seq.take(1).first,
            listen: true,
          });
          requests.push(request);
          if (requests.length > 8) requests.shift();
          void enqueue({
            priority: PRIORITY.enroll,
            type: 'enroll.request',
            frameBytes: [request.length],
            build: () => [request],
          });
          cancelRetry = timers.setTimer(input.retryMs, attempt);
        };
        attempt();
      });
    },
    setSession(next, state) {
      session = next;
      window = createReplayWindow(state ? { state } : {});
    },
    stats: () => ({ ...stats, refused: { ...stats.refused } }),
  };
  return link;
}
