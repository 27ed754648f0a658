// One radio as the gateway uses it: the driver (RNode or Meshtastic, behind the common Radio interface), the
// gateway's own airtime accounting under the radio's regional law, and its health (state, frames in/out and
// dropped by reason, RSSI/SNR histograms, airtime). The driver reopens an unplugged radio with backoff by
// itself; the link only watches its status and never lets a radio failure stop the rest of the gateway.

import { rnodeAirtimeMs } from '../firmware-bridge/airtime.ts';
import { createDutyCycleAccountant, type DutyCycleAccountant } from '../firmware-bridge/duty-cycle.ts';
import { meshtasticAirtimeMs } from '../firmware-bridge/meshtastic/lora-params.ts';
import { createData, encodeData } from '../firmware-bridge/meshtastic/protobuf.ts';
import type { Radio, RadioKind, RadioParams, RadioStatus, ReceivedPacket } from '../firmware-bridge/radio.ts';
import type { Logger } from '../protocol/log.ts';
import type { AirtimeVerdict } from './downlink-planner.ts';
import { type GatewayMetrics, RSSI_BUCKETS_DBM, SNR_BUCKETS_DB } from './metrics.ts';
import type { Timers } from './time.ts';

/** Our private Meshtastic port (PRIVATE_APP, RADIO_PROTOCOLS §2.4): what the airtime of a Data is computed with. */
export const MESHTASTIC_PORTNUM = 256;

export interface HistogramSnapshot {
  /** Cumulative counts per upper bound, Prometheus style; the last bound is +Inf. */
  readonly buckets: readonly { readonly le: number | '+Inf'; readonly count: number }[];
  readonly count: number;
  readonly sum: number;
}

export interface RadioHealth {
  readonly name: string;
  readonly kind: RadioKind;
  readonly path: string;
  readonly state: RadioStatus['state'];
  readonly reason?: string;
  readonly firmware?: string;
  readonly params?: RadioParams;
  readonly present: boolean;
  readonly ready: boolean;
  /** Times the radio became ready (1 after a clean start; more after unplug/replug or resets). */
  readonly readyTransitions: number;
  readonly maxFrameBytes: number;
  readonly airtime: { readonly totalMs: number; readonly windowMs: number; readonly budgetUsed: number };
  readonly frames: {
    readonly received: number;
    readonly stored: number;
    readonly dropped: Readonly<Record<string, number>>;
    readonly sent: number;
    readonly sendFailed: Readonly<Record<string, number>>;
  };
  readonly rssiDbm: HistogramSnapshot;
  readonly snrDb: HistogramSnapshot;
  readonly lastRxWallMs: number | null;
  readonly lastTxWallMs: number | null;
}

export interface TransmitResult {
  /** Frames handed to the air. */
  readonly sent: number;
  readonly ok: boolean;
  readonly code?: string;
}

export interface RadioLink {
  readonly name: string;
  readonly kind: RadioKind;
  readonly maxFrameBytes: number;
  open(): Promise<void>;
  close(): Promise<void>;
  status(): RadioStatus;
  ready(): boolean;
  /** A transmission is under way. */
  busy(): boolean;
  /** Airtime of each frame on this radio, or undefined while its modulation is unknown. */
  airtimesMs(frameBytes: readonly number[]): number[] | undefined;
  /** What the radio's law says about sending these frames back to back now. */
  verdict(airtimesMs: readonly number[]): AirtimeVerdict;
  /** Sends the frames one after another, recording their airtime; stops at the first failure. */
  transmit(frames: readonly Uint8Array[]): Promise<TransmitResult>;
  /** Calls `handler` for every packet until close(); and `onStatus` on every status change. */
  start(handler: (packet: ReceivedPacket) => void, onStatus: (status: RadioStatus) => void): void;
  noteStored(): void;
  noteDropped(reason: string): void;
  health(): RadioHealth;
}

export interface RadioLinkOptions {
  readonly name: string;
  readonly radio: Radio;
  /** lora-frames.md §6 profile limit: 254 RNode, 233 Meshtastic. */
  readonly maxFrameBytes: number;
  /** Known before the radio is ready (RNode: from configuration); Meshtastic learns them at its handshake. */
  readonly params?: RadioParams;
  readonly timers: Timers;
  readonly metrics: GatewayMetrics;
  readonly log: Logger;
  readonly wallMs: () => number;
}

function histogram(bounds: readonly number[]): {
  observe(v: number): void;
  snapshot(): HistogramSnapshot;
} {
  const counts = bounds.map(() => 0);
  let count = 0;
  let sum = 0;
  return {
    observe(v) {
      for (let i = 0; i < bounds.length; i++) if (v <= bounds[i]!) counts[i]!++;
      count++;
      sum += v;
    },
    snapshot: () => ({
      buckets: [...bounds.map((le, i) => ({ le, count: counts[i]! })), { le: '+Inf' as const, count }],
      count,
      sum,
    }),
  };
}

/** Bytes of the Meshtastic Data protobuf carrying `payloadBytes` on our port. */
function meshtasticDataBytes(payloadBytes: number): number {
  return encodeData(createData({ portnum: MESHTASTIC_PORTNUM, payload: new Uint8Array(payloadBytes) })).length;
}

export function createRadioLink(options: RadioLinkOptions): RadioLink {
  const { name, radio, timers, metrics } = options;
  const log = options.log.child({ radio: name });
  const labels = { radio: name };
  const accountants = new Map<string, DutyCycleAccountant>();
  let transmitting = false;
  let closed = false;
  let readyTransitions = 0;
  let lastRxWallMs: number | null = null;
  let lastTxWallMs: number | null = null;
  let totalAirtimeMs = 0;
  const counters = { received: 0, stored: 0, sent: 0 };
  const dropped: Record<string, number> = {};
  const sendFailed: Record<string, number> = {};
  const rssi = histogram(RSSI_BUCKETS_DBM);
  const snr = histogram(SNR_BUCKETS_DB);
  metrics.radioUp.set(labels, 0);

  function params(): RadioParams | undefined {
    const s = radio.status();
    return s.state === 'ready' ? s.params : options.params;
  }

  function accountant(p: RadioParams): DutyCycleAccountant {
    const key = `${p.region}:${p.freqHz}:${p.bandwidthHz}`;
    let a = accountants.get(key);
    if (!a) {
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

  const link: RadioLink = {
    name,
    kind: radio.kind,
    maxFrameBytes: options.maxFrameBytes,
    open: () => radio.open(),
    async close() {
      closed = true;
      await radio.close();
    },
    status: () => radio.status(),
    ready: () => radio.status().state === 'ready',
    busy: () => transmitting,
    airtimesMs(frameBytes) {
      const p = params();
      if (!p) return undefined;
      try {
        return frameBytes.map((b) => airtimeOf(b, p));
      } catch {
        return undefined; // a size the modulation cannot carry; the planner fails it as too large elsewhere
      }
    },
    verdict(airtimesMs) {
      const p = params();
      if (!p) return { allowed: false, reason: 'out-of-band', retryAfterMs: 1000 };
      const acc = accountant(p);
      const now = timers.nowMs();
      if (p.region === 'US915') {
        // The dwell limit applies to each LoRa frame.
        for (const ms of airtimesMs) {
          const d = acc.canTransmit(p.freqHz, ms, now, p.bandwidthHz);
          if (!d.allowed) return d;
        }
        return { allowed: true };
      }
      const total = airtimesMs.reduce((a, b) => a + b, 0);
      const d = acc.canTransmit(p.freqHz, total, now, p.bandwidthHz);
      return d.allowed ? { allowed: true } : d;
    },
    async transmit(frames) {
      if (transmitting) return { sent: 0, ok: false, code: 'BUSY' };
      const p = params();
      if (!p) return { sent: 0, ok: false, code: 'RADIO_NOT_READY' };
      transmitting = true;
      let sent = 0;
      try {
        for (const frame of frames) {
          const airtime = airtimeOf(frame.length, p);
          const outcome = await radio.send(frame, { wantAck: false });
          if (outcome.state === 'failed') {
            sendFailed[outcome.code] = (sendFailed[outcome.code] ?? 0) + 1;
            metrics.radioSendFailures.inc({ radio: name, code: outcome.code });
            log.warning('radio.send_failed', { code: outcome.code, reason: outcome.reason });
            return { sent, ok: false, code: outcome.code };
          }
          // Recorded when the driver confirms, i.e. no earlier than it really went on air. Every transmission
          // then sits in this accountant's window at least as long as in the radio's (or the air's), so a
          // window this accountant allows is one the radio allows too, whatever the serial and pacing delays.
          accountant(p).record(p.freqHz, airtime, timers.nowMs(), p.bandwidthHz);
          totalAirtimeMs += airtime;
          metrics.radioAirtimeMs.inc(labels, airtime);
          metrics.radioFramesSent.inc(labels);
          counters.sent++;
          lastTxWallMs = options.wallMs();
          sent++;
        }
        return { sent, ok: true };
      } finally {
        transmitting = false;
      }
    },
    start(handler, onStatus) {
      void (async () => {
        for await (const s of radio.statusChanges()) {
          if (s.state === 'ready') readyTransitions++;
          metrics.radioUp.set(labels, s.state === 'ready' ? 1 : 0);
          log.info('radio.status', {
            state: s.state,
            ...('reason' in s ? { reason: s.reason } : {}),
            ...('code' in s ? { code: s.code } : {}),
          });
          onStatus(s);
          if (closed) return;
        }
      })().catch((e) => log.error('radio.status_watch_failed', { error: e }));
      void (async () => {
        for await (const packet of radio.packets()) {
          counters.received++;
          lastRxWallMs = packet.receivedAtMs;
          metrics.radioFramesReceived.inc(labels);
          if (Number.isFinite(packet.rssiDbm)) {
            rssi.observe(packet.rssiDbm);
            metrics.radioRssi.observe(packet.rssiDbm, labels);
          }
          if (Number.isFinite(packet.snrDb)) {
            snr.observe(packet.snrDb);
            metrics.radioSnr.observe(packet.snrDb, labels);
          }
          try {
            handler(packet);
          } catch (e) {
            // The handler stores frames; a failure there (disk full) is logged by it. Keep reading.
            log.error('radio.packet_handler_failed', { error: e });
          }
          if (closed) return;
        }
      })().catch((e) => log.error('radio.packet_watch_failed', { error: e }));
    },
    noteStored() {
      counters.stored++;
    },
    noteDropped(reason) {
      dropped[reason] = (dropped[reason] ?? 0) + 1;
      metrics.radioFramesDropped.inc({ radio: name, reason });
    },
    health() {
      const s = radio.status();
      const p = params();
      let windowMs = 0;
      let budgetUsed = 0;
      if (p) {
        const u = accountant(p).usage(timers.nowMs());
        windowMs = u.windowMs;
        budgetUsed = u.budgetUsed;
      }
      metrics.radioBudgetUsed.set(labels, budgetUsed);
      return {
        name,
        kind: radio.kind,
        path: radio.path,
        state: s.state,
        ...('reason' in s ? { reason: s.reason } : {}),
        ...(s.state === 'ready' ? { firmware: s.firmware } : {}),
        ...(p ? { params: p } : {}),
        present: s.state !== 'absent',
        ready: s.state === 'ready',
        readyTransitions,
        maxFrameBytes: options.maxFrameBytes,
        airtime: { totalMs: totalAirtimeMs, windowMs, budgetUsed },
        frames: { ...counters, dropped: { ...dropped }, sendFailed: { ...sendFailed } },
        rssiDbm: rssi.snapshot(),
        snrDb: snr.snapshot(),
        lastRxWallMs,
        lastTxWallMs,
      };
    },
  };
  return link;
}
