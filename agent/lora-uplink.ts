// The agent's LoRa uplink: the same outbox as every uplink, carried over the device's own radio (RNode or
// Meshtastic) to a gateway and on to the control plane. Units from the outbox are unpacked into readings and packed
// many to a frame (protocol/lora-telemetry.ts) in priority order, sent as the airtime budget allows, and acknowledged
// end to end by the control plane; what is not acknowledged in time is sent again in a later lease. Tool calls
// arrive as authenticated downlink and go through the same safety gate as any call; the result goes back the same
// way. physical_actuation still needs the quorum token, rebuilt on the device and verified by the gate.

import type { Radio, RadioParams } from '../firmware-bridge/radio.ts';
import { fromUtf8 } from '../protocol/bytes.ts';
import type { Clock } from '../protocol/clock.ts';
import { isOutpostError, OutpostError } from '../protocol/errors.ts';
import type { Logger } from '../protocol/log.ts';
import type { LoraTelemetryRecord, LoraToolCall, LoraToolResult } from '../protocol/lora.ts';
import { fromLoraQuorum } from '../protocol/lora-quorum.ts';
import { quorumTokenToText } from '../protocol/quorum.ts';
import { decodeTelemetryUnit } from '../protocol/telemetry.ts';
import type { Lease, SeqRange } from '../store/outbox.ts';
import { createSequence } from '../store/sequence.ts';
import { createLoraLink, type LinkStats, type LinkTimers, type LoraLink } from './lora-link.ts';
import { applyLoraIssuer, loraSessionFor, readDownlinkWindow, writeDownlinkWindow } from './lora-session.ts';
import { applyJwksUpdate, applyPolicyUpdate } from './trust-updates.ts';
import type { Uplink, UplinkContext, UplinkState } from './uplink.ts';

export interface LoraUplinkOptions {
  readonly name?: string;
  readonly radio: Radio;
  /** RNode: the configured modulation; Meshtastic: learnt from the radio once ready (leave undefined). */
  readonly params?: RadioParams;
  readonly maxFrameBytes: number;
  readonly clock: Clock;
  /** Device time (scaled only with a simulated air). */
  readonly timers: LinkTimers;
  readonly log: Logger;
  /** Share of the regional duty-cycle budget this device uses (default 0.5). */
  readonly dutyCycleShare?: number;
  /** Heartbeat after this long without uplink (0 = never; default 0). */
  readonly heartbeatIntervalMs?: number;
  /** How long a delivery waits for the control plane's ack before the pump may send again (default 30 s). */
  readonly ackTimeoutMs?: number;
  /** Frames per delivery (default 4). */
  readonly framesPerDelivery?: number;
}

export interface LoraUplink extends Uplink {
  stats(): (LinkStats & { readonly enrolled: boolean; readonly radio: string }) | undefined;
}

/** Record seqs remembered as acknowledged, so a late ack still spares a resend. */
const MAX_REMEMBERED_ACKS = 100_000;

export function createLoraUplink(options: LoraUplinkOptions): LoraUplink {
  const name = options.name ?? 'lora0';
  const log = options.log.child({ uplink: name });
  const ackTimeoutMs = options.ackTimeoutMs ?? 30_000;
  const framesPerDelivery = options.framesPerDelivery ?? 4;
  const listeners = new Set<(s: UplinkState) => void>();
  const acked = new Set<number>();
  let link: LoraLink | undefined;
  let context: UplinkContext | undefined;
  let tid: string | undefined;
  let current: UplinkState = 'disconnected';
  let stopped = false;
  let ackWaiters = new Set<() => void>();

  function compute(): UplinkState {
    return link && tid !== undefined && options.radio.status().state === 'ready' ? 'connected' : 'disconnected';
  }

  function update(): void {
    const next = compute();
    if (next === current) return;
    current = next;
    log.info('lora.uplink_state', { state: next });
    for (const l of listeners) l(next);
  }

  function remember(ranges: readonly SeqRange[] | readonly { from: number; to: number }[]): void {
    for (const r of ranges) for (let s = r.from; s <= r.to && s - r.from < 100_000; s++) acked.add(s);
    if (acked.size > MAX_REMEMBERED_ACKS) {
      const drop = acked.size - MAX_REMEMBERED_ACKS;
      let i = 0;
      for (const s of acked) {
        if (i++ >= drop) break;
        acked.delete(s);
      }
    }
  }

  async function runCall(call: LoraToolCall): Promise<Omit<LoraToolResult, 'callId'>> {
    const ctx = context;
    const started = options.timers.nowMs();
    const done = (status: LoraToolResult['status'], value: LoraToolResult['value']) => ({
      status,
      durationMs: Math.max(0, Math.round(options.timers.nowMs() - started)),
      value,
    });
    if (!ctx || tid === undefined) return done('error', { code: 'NOT_READY', message: 'the agent is starting' });
    const tool = 'name' in call.tool ? call.tool.name : ctx.manifest.manifest.tools[call.tool.index]?.name;
    if (tool === undefined) return done('denied', { code: 'TOOL_UNKNOWN', message: 'no tool at that index' });
    if (call.deadlineMs !== undefined && options.clock.nowMs() > call.deadlineMs) {
      return done('denied', { code: 'DEADLINE_PASSED', message: 'the call arrived after its deadline' });
    }
    if (call.args === null || typeof call.args !== 'object' || Array.isArray(call.args)) {
      return done('denied', { code: 'ARGS_INVALID', message: 'arguments must be an object' });
    }
    const args = call.args as Record<string, unknown>;
    let quorum: string | undefined;
    if (call.quorum) {
      try {
        quorum = quorumTokenToText(
          fromLoraQuorum(call.quorum, {
            tid,
            device: ctx.did,
            tool,
            args,
            ...(ctx.trust ? { policy: ctx.trust.policy } : {}),
          }),
        );
      } catch (e) {
        return done('denied', { code: 'QUORUM_INVALID', message: isOutpostError(e) ? e.message : 'bad quorum token' });
      }
    }
    try {
      const r = await ctx.callTool({
        tool,
        args,
        source: 'upstream',
        callId: call.callId,
        ...(call.token ? { token: call.token } : {}),
        ...(quorum ? { quorum } : {}),
      });
      return { status: 'ok', durationMs: r.duration_ms, value: (r.result ?? null) as LoraToolResult['value'] };
    } catch (e) {
      if (isOutpostError(e, 'GATE_DENIED')) {
        const reason = typeof e.details.reason === 'string' ? e.details.reason : 'DENIED';
        return done('denied', { code: reason, message: e.message.slice(0, 200) });
      }
      return done('error', {
        code: isOutpostError(e) ? e.code : 'INTERNAL',
        message: (e instanceof Error ? e.message : String(e)).slice(0, 200),
      });
    }
  }

  function waitForAcks(seqs: readonly number[], timeoutMs: number): Promise<void> {
    return new Promise((resolve) => {
      const check = () => {
        if (!seqs.every((s) => acked.has(s))) return;
        finish();
      };
      const finish = () => {
        cancel();
        ackWaiters.delete(check);
        resolve();
      };
      const cancel = options.timers.setTimer(timeoutMs, finish);
      ackWaiters.add(check);
      check();
    });
  }

  const uplink: LoraUplink = {
    name,
    state: () => current,
    onStateChange(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    bind(binding) {
      context = binding.agent;
    },
    async start() {
      const ctx = context;
      if (!ctx) throw new OutpostError('LINK_DOWN', 'the LoRa uplink needs the agent context to start');
      const s = loraSessionFor(ctx.stateDir, ctx.did);
      if (!s) log.warning('lora.not_enrolled', { hint: 'outpost agent lora-enroll --token-file -' });
      tid = s?.tid;
      const seq = createSequence(ctx.db, 'lora-uplink', { max: 0xffff_ffff, blockSize: 64 });
      const windowState = readDownlinkWindow(ctx.stateDir);
      link = createLoraLink({
        radio: options.radio,
        ...(options.params ? { params: options.params } : {}),
        maxFrameBytes: options.maxFrameBytes,
        ...(s ? { session: s.session } : {}),
        seq: { take: (count) => seq.take(count) },
        downlinkWindow: {
          ...(windowState ? { state: windowState } : {}),
          save: (state) => writeDownlinkWindow(ctx.stateDir, state),
        },
        handlers: {
          toolCall: runCall,
          // Trust material over the air (lora-frames.md §4.11): installed under the same rules as over WSS.
          control(message) {
            if (message.kind === 'revoke') {
              log.notice('lora.revoke', { revoke: message.value });
              return;
            }
            if (message.kind === 'issuer') {
              const r = applyLoraIssuer(ctx.stateDir, message.value);
              if (r.installed) log.info('lora.trust_updated', { kind: 'issuer' });
              else log.warning('lora.trust_refused', { kind: 'issuer', message: r.message });
              return;
            }
            const r =
              message.kind === 'quorum-policy'
                ? applyPolicyUpdate(ctx.stateDir, message.value, tid)
                : applyJwksUpdate(ctx.stateDir, message.value);
            if (r.installed) log.info('lora.trust_updated', { kind: message.kind, summary: r.summary });
            else log.warning('lora.trust_refused', { kind: message.kind, code: r.code, message: r.message });
          },
        },
        timers: options.timers,
        clock: options.clock,
        log,
        ...(options.dutyCycleShare === undefined ? {} : { dutyCycleShare: options.dutyCycleShare }),
        ...(options.heartbeatIntervalMs === undefined ? {} : { heartbeatIntervalMs: options.heartbeatIntervalMs }),
      });
      link.onAck((ranges) => {
        remember(ranges);
        for (const w of [...ackWaiters]) w();
      });
      link.start();
      void (async () => {
        for await (const _ of options.radio.statusChanges()) {
          if (stopped) return;
          update();
        }
      })().catch((e) => log.error('lora.status_watch_failed', { error: e }));
      void options.radio.open().catch((e) => log.error('lora.radio_open_failed', { error: e }));
      update();
    },
    async stop() {
      stopped = true;
      for (const w of [...ackWaiters]) w();
      ackWaiters = new Set();
      await link?.stop();
      await options.radio.close();
      current = 'disconnected';
    },
    async deliver(lease: Lease) {
      const l = link;
      const ctx = context;
      if (!l || !ctx || compute() !== 'connected')
        throw new OutpostError('LINK_DOWN', 'the LoRa uplink is not connected');
      const streamIndex = new Map(ctx.manifest.manifest.streams?.map((s, i) => [s.name, i] as const) ?? []);
      // Outbox item → the record seqs it holds; records that cannot travel over LoRa count as done.
      const items: { stream: string; seq: number; records: number[] }[] = [];
      const records: LoraTelemetryRecord[] = [];
      const done = new Set<number>();
      for (const item of lease.items) {
        const seqs: number[] = [];
        try {
          const unit = decodeTelemetryUnit(fromUtf8(item.payload, 'telemetry unit'));
          for (const r of unit.records) {
            seqs.push(r.seq);
            const index = streamIndex.get(r.stream);
            if (index === undefined) {
              done.add(r.seq); // a stream no longer in the manifest: LoRa names streams by index only
              continue;
            }
            if (acked.has(r.seq)) continue;
            records.push({
              seq: r.seq,
              stream: index,
              ts: r.ts,
              value: r.value,
              ...(r.quality && r.quality.length > 0 ? { quality: r.quality } : {}),
            });
          }
        } catch (e) {
          log.warning('lora.unit_unreadable', { stream: item.stream, seq: item.seq, error: e });
        }
        items.push({ stream: item.stream, seq: item.seq, records: seqs });
      }
      if (records.length > 0) {
        const r = await l.sendTelemetry(records, { maxFrames: framesPerDelivery });
        for (const x of r.oversize) done.add(x.seq);
        if (r.oversize.length > 0) log.warning('lora.records_too_large', { records: r.oversize.length });
        if (r.sent.length > 0) {
          await waitForAcks(
            r.sent.map((x) => x.seq),
            ackTimeoutMs,
          );
        } else {
          // Nothing fitted the budget now: wait until one frame would, so the pump does not spin.
          const wait = l.waitMs(options.maxFrameBytes);
          await new Promise<void>((resolve) =>
            options.timers.setTimer(Math.min(Number.isFinite(wait) ? wait : 5_000, ackTimeoutMs), resolve),
          );
        }
      }
      return items
        .filter((i) => i.records.every((s) => acked.has(s) || done.has(s)))
        .map((i) => ({ stream: i.stream, from: i.seq, to: i.seq }));
    },
    stats: () => (link ? { ...link.stats(), enrolled: tid !== undefined, radio: options.radio.path } : undefined),
  };
  return uplink;
}
