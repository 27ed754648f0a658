// The simulated air behind the emulated radios: frames arrive after their time on air, may be lost
// (seeded), collide when they overlap on a channel, carry RSSI/SNR from a log-distance path-loss
// model, and each transmitter is held to its region's airtime law (duty-cycle.ts).

import type { Logger } from '../../protocol/log.ts';
import { silentLogger } from '../../protocol/log.ts';
import { symbolTimeMs, timeOnAirMs } from '../airtime.ts';
import { createDutyCycleAccountant, type DutyCycleAccountant } from '../duty-cycle.ts';
import { RadioError } from '../errors.ts';
import type { RadioKind, RadioParams, RegionCode } from '../radio.ts';
import type { Air, AirAttachOptions, AirPort, AirReception, TransmitResult } from './air.ts';
import { type AirScheduler, createRealtimeScheduler } from './air-scheduler.ts';
import { createSeededRandom } from './seeded-random.ts';

/** Log-distance path loss: PL(d) = FSPL(d0, f) + 10·n·log10(d / d0) + shadowing. */
export interface PathLossModel {
  /** Path-loss exponent n (2 free space, 2.7–3.5 rural/suburban, default 2.7). */
  readonly exponent?: number;
  /** Reference distance d0 in m (default 1); nearer radios are treated as d0 apart. */
  readonly referenceDistanceM?: number;
  /** Gaussian shadowing standard deviation in dB, drawn per reception from the seeded PRNG (default 0). */
  readonly shadowingSigmaDb?: number;
}

export interface SimulatedAirOptions {
  /** Time source and timers; default real time × `timeScale`. */
  readonly scheduler?: AirScheduler;
  /** Used when no scheduler is given: run the air N× faster than real time (default 1). */
  readonly timeScale?: number;
  /** PRNG seed for loss and shadowing (default 1). */
  readonly seed?: number;
  /** Probability 0..1 that an otherwise good reception is lost (default 0). */
  readonly lossRate?: number;
  readonly pathLoss?: PathLossModel;
  /** Receiver noise figure in dB (default 6, typical of SX126x/SX127x). */
  readonly noiseFigureDb?: number;
  /**
   * Capture effect: of two overlapping frames, the one at least this many dB stronger at a receiver
   * survives (default 6). Infinity turns capture off: every overlap loses both.
   */
  readonly captureThresholdDb?: number;
  /** Refuse transmissions that break the port's region law (default true). */
  readonly enforceRegulations?: boolean;
  readonly log?: Logger;
}

export interface PortTxStats {
  frames: number;
  airtimeMs: number;
  refusedDutyCycle: number;
  refusedDwellTime: number;
  refusedOutOfBand: number;
  /** Transmissions cut short by detach (unplug). */
  aborted: number;
}

/** Every frame that reached this port's channel counts in exactly one of these. */
export interface PortRxStats {
  delivered: number;
  /** Dropped by the random loss rate. */
  lost: number;
  /** Destroyed by an overlapping transmission on the channel. */
  collided: number;
  /** Below the demodulator's SNR limit for its spreading factor. */
  weak: number;
  /** Arrived while this port was itself transmitting. */
  halfDuplex: number;
  /** Another firmware family's frame: occupies the channel, never decoded. */
  otherNetwork: number;
}

export interface PortStats {
  readonly id: string;
  readonly network: RadioKind;
  readonly attached: boolean;
  readonly tx: Readonly<PortTxStats>;
  readonly rx: Readonly<PortRxStats>;
  /** Transmit time in the current regulatory window, ms, and the fraction of the budget used. */
  readonly windowAirtimeMs: number;
  readonly budgetUsed: number;
}

export interface AirStats {
  readonly ports: Readonly<Record<string, PortStats>>;
  readonly framesSent: number;
  readonly deliveries: number;
  readonly lost: number;
  readonly collided: number;
}

export type AirTraceEvent =
  | {
      readonly type: 'tx';
      readonly portId: string;
      readonly bytes: number;
      readonly airtimeMs: number;
      readonly atMs: number;
    }
  | {
      readonly type: 'tx-refused';
      readonly portId: string;
      readonly reason: 'duty-cycle' | 'dwell-time' | 'out-of-band';
      readonly atMs: number;
    }
  | {
      readonly type: 'rx';
      readonly fromPortId: string;
      readonly toPortId: string;
      readonly outcome: keyof PortRxStats;
      readonly rssiDbm: number;
      readonly snrDb: number;
      readonly atMs: number;
    };

export interface SimulatedAir extends Air {
  readonly scheduler: AirScheduler;
  stats(): AirStats;
  /** Changes the random loss rate (0..1) from now on. */
  setLossRate(rate: number): void;
  /** Overrides the loss rate of one direction of one link; undefined restores the air's rate. */
  setLinkLossRate(fromPortId: string, toPortId: string, rate: number | undefined): void;
  /** Moves an attached port (metres). */
  setPosition(portId: string, position: { readonly xM: number; readonly yM: number }): void;
  onTrace(handler: (event: AirTraceEvent) => void): () => void;
  /** Cancels every timer and detaches every port; pending transmissions resolve as detached. */
  close(): void;
}

/** SNR below which the demodulator cannot decode, per SF (Semtech datasheets; SF5/6 as SF7 minus steps). */
const SNR_LIMIT_DB: Readonly<Record<number, number>> = {
  5: -2.5,
  6: -5,
  7: -7.5,
  8: -10,
  9: -12.5,
  10: -15,
  11: -17.5,
  12: -20,
};
/** The demodulator's SNR estimate saturates; reported SNR never exceeds this. */
const MAX_REPORTED_SNR_DB = 20;

interface PortState {
  readonly id: string;
  readonly network: RadioKind;
  readonly params: () => RadioParams;
  position: { xM: number; yM: number };
  attached: boolean;
  readonly attachedAtMs: number;
  readonly handlers: ((rx: AirReception) => void)[];
  current: Transmission | undefined;
  readonly accountants: Map<RegionCode, DutyCycleAccountant>;
  readonly stats: { tx: PortTxStats; rx: PortRxStats };
}

interface Transmission {
  readonly port: PortState;
  readonly frame: Uint8Array;
  readonly params: RadioParams;
  readonly startMs: number;
  endMs: number;
  aborted: boolean;
  readonly finish: (result: TransmitResult) => void;
  cancelTimer: () => void;
}

function emptyTx(): PortTxStats {
  return { frames: 0, airtimeMs: 0, refusedDutyCycle: 0, refusedDwellTime: 0, refusedOutOfBand: 0, aborted: 0 };
}

function emptyRx(): PortRxStats {
  return { delivered: 0, lost: 0, collided: 0, weak: 0, halfDuplex: 0, otherNetwork: 0 };
}

function checkRate(rate: number): void {
  if (!(rate >= 0 && rate <= 1)) throw new RadioError('RADIO_PARAMS_INVALID', `a loss rate is 0..1, got ${rate}`);
}

/** Creates the simulated air. Ports attach with `attach()`; nothing is global. */
export function createSimulatedAir(options: SimulatedAirOptions = {}): SimulatedAir {
  const scheduler = options.scheduler ?? createRealtimeScheduler({ timeScale: options.timeScale ?? 1 });
  const random = createSeededRandom(options.seed ?? 1);
  const log = options.log ?? silentLogger;
  const exponent = options.pathLoss?.exponent ?? 2.7;
  const d0 = options.pathLoss?.referenceDistanceM ?? 1;
  const shadowSigma = options.pathLoss?.shadowingSigmaDb ?? 0;
  const noiseFigureDb = options.noiseFigureDb ?? 6;
  const captureDb = options.captureThresholdDb ?? 6;
  const enforce = options.enforceRegulations ?? true;
  let lossRate = options.lossRate ?? 0;
  checkRate(lossRate);
  const linkLoss = new Map<string, number>();
  const ports = new Map<string, PortState>();
  /** Every port ever attached, by id, so statistics survive unplug/replug. */
  const history = new Map<string, { tx: PortTxStats; rx: PortRxStats; network: RadioKind; port: PortState }>();
  let recent: Transmission[] = [];
  const traceHandlers = new Set<(e: AirTraceEvent) => void>();
  let closed = false;

  const trace = (e: AirTraceEvent) => {
    for (const h of traceHandlers) h(e);
  };

  function gaussian(): number {
    const u = 1 - random();
    const v = random();
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
  }

  function pathLossDb(a: PortState, b: PortState, freqHz: number): number {
    const d = Math.max(Math.hypot(a.position.xM - b.position.xM, a.position.yM - b.position.yM), d0);
    const fsplD0 = 20 * Math.log10(d0) + 20 * Math.log10(freqHz) - 147.55;
    return fsplD0 + 10 * exponent * Math.log10(d / d0);
  }

  function rssiAt(tx: Transmission, rx: PortState): number {
    return tx.params.txPowerDbm - pathLossDb(tx.port, rx, tx.params.freqHz);
  }

  function noiseFloorDbm(bandwidthHz: number): number {
    return -174 + 10 * Math.log10(bandwidthHz) + noiseFigureDb;
  }

  const sameChannel = (a: RadioParams, b: RadioParams) =>
    a.freqHz === b.freqHz && a.bandwidthHz === b.bandwidthHz && a.spreadingFactor === b.spreadingFactor;
  const overlapsInFrequency = (a: RadioParams, b: RadioParams) =>
    Math.abs(a.freqHz - b.freqHz) < (a.bandwidthHz + b.bandwidthHz) / 2;
  const overlapsInTime = (a: Transmission, b: Transmission) => a.startMs < b.endMs && b.startMs < a.endMs;

  function accountantFor(port: PortState, region: RegionCode): DutyCycleAccountant {
    let acc = port.accountants.get(region);
    if (!acc) {
      acc = createDutyCycleAccountant({ region });
      port.accountants.set(region, acc);
    }
    return acc;
  }

  function outcomeFor(
    tx: Transmission,
    rx: PortState,
  ): { outcome: keyof PortRxStats; rssi: number; snr: number } | undefined {
    if (!rx.attached || rx.attachedAtMs > tx.startMs) return undefined;
    const rxParams = rx.params();
    if (!sameChannel(tx.params, rxParams)) return undefined;
    const rssiRaw = rssiAt(tx, rx);
    const rssi = shadowSigma > 0 ? rssiRaw + gaussian() * shadowSigma : rssiRaw;
    const snr = Math.min(rssi - noiseFloorDbm(rxParams.bandwidthHz), MAX_REPORTED_SNR_DB);
    const result = (outcome: keyof PortRxStats) => ({ outcome, rssi, snr });
    if (rx.network !== tx.port.network) return result('otherNetwork');
    const ownTx = recent.some((o) => o.port === rx && overlapsInTime(o, tx));
    if (ownTx) return result('halfDuplex');
    if (snr < (SNR_LIMIT_DB[rxParams.spreadingFactor] ?? 0)) return result('weak');
    for (const other of recent) {
      if (other === tx || other.port === rx || !overlapsInTime(other, tx)) continue;
      if (!overlapsInFrequency(other.params, tx.params)) continue;
      if (rssiRaw - rssiAt(other, rx) < captureDb) return result('collided');
    }
    const rate = linkLoss.get(`${tx.port.id}\u0000${rx.id}`) ?? lossRate;
    if (rate > 0 && random() < rate) return result('lost');
    return result('delivered');
  }

  function prune(): void {
    const active = [...ports.values()].map((p) => p.current?.startMs).filter((s): s is number => s !== undefined);
    const horizon = Math.min(scheduler.nowMs(), ...active);
    recent = recent.filter((t) => t.endMs >= horizon);
  }

  function complete(tx: Transmission): void {
    const port = tx.port;
    port.current = undefined;
    const at = scheduler.nowMs();
    for (const rx of ports.values()) {
      if (rx === port) continue;
      const o = outcomeFor(tx, rx);
      if (!o) continue;
      rx.stats.rx[o.outcome]++;
      trace({
        type: 'rx',
        fromPortId: port.id,
        toPortId: rx.id,
        outcome: o.outcome,
        rssiDbm: o.rssi,
        snrDb: o.snr,
        atMs: at,
      });
      if (o.outcome !== 'delivered') continue;
      const reception: AirReception = {
        frame: Uint8Array.from(tx.frame),
        rssiDbm: o.rssi,
        snrDb: o.snr,
        fromPortId: port.id,
      };
      for (const h of rx.handlers) {
        try {
          h(reception);
        } catch (e) {
          // A faulty receiver must not stop delivery to the others; it is a bug in that emulator.
          log.error('air.receive_handler_failed', { port: rx.id, error: e });
        }
      }
    }
    prune();
    tx.finish({ ok: true, airtimeMs: tx.endMs - tx.startMs });
  }

  function makePort(state: PortState): AirPort {
    return {
      id: state.id,
      transmit(frame) {
        if (closed || !state.attached) return Promise.resolve({ ok: false, reason: 'detached' });
        if (state.current) {
          return Promise.reject(new RadioError('AIR_PORT_BUSY', `port ${state.id} is already transmitting`));
        }
        let params: RadioParams;
        let airtimeMs: number;
        try {
          params = state.params();
          airtimeMs = timeOnAirMs(frame.length, {
            spreadingFactor: params.spreadingFactor,
            bandwidthHz: params.bandwidthHz,
            codingRate: params.codingRate,
            preambleSymbols: params.preambleSymbols,
          });
        } catch (e) {
          return Promise.reject(e);
        }
        const now = scheduler.nowMs();
        const acc = accountantFor(state, params.region);
        if (enforce) {
          const d = acc.canTransmit(params.freqHz, airtimeMs, now, params.bandwidthHz);
          if (!d.allowed) {
            if (d.reason === 'duty-cycle') state.stats.tx.refusedDutyCycle++;
            else if (d.reason === 'dwell-time') state.stats.tx.refusedDwellTime++;
            else state.stats.tx.refusedOutOfBand++;
            trace({ type: 'tx-refused', portId: state.id, reason: d.reason, atMs: now });
            log.debug('air.tx_refused', { port: state.id, reason: d.reason, detail: d.message });
            const result: TransmitResult =
              d.retryAfterMs === undefined
                ? { ok: false, reason: d.reason }
                : { ok: false, reason: d.reason, retryAfterMs: d.retryAfterMs };
            return Promise.resolve(result);
          }
        }
        acc.record(params.freqHz, airtimeMs, now, params.bandwidthHz);
        state.stats.tx.frames++;
        state.stats.tx.airtimeMs += airtimeMs;
        trace({ type: 'tx', portId: state.id, bytes: frame.length, airtimeMs, atMs: now });
        return new Promise<TransmitResult>((resolve) => {
          const tx: Transmission = {
            port: state,
            frame: Uint8Array.from(frame),
            params,
            startMs: now,
            endMs: now + airtimeMs,
            aborted: false,
            finish: resolve,
            cancelTimer: () => {},
          };
          state.current = tx;
          recent.push(tx);
          tx.cancelTimer = scheduler.setTimer(airtimeMs, () => complete(tx));
        });
      },
      onReceive(handler) {
        state.handlers.push(handler);
      },
      detach() {
        if (!state.attached) return;
        state.attached = false;
        ports.delete(state.id);
        const tx = state.current;
        if (tx) {
          // Power is gone: the frame is cut short, but it occupied the channel until now.
          tx.cancelTimer();
          tx.aborted = true;
          tx.endMs = scheduler.nowMs();
          state.current = undefined;
          state.stats.tx.aborted++;
          tx.finish({ ok: false, reason: 'detached' });
        }
        // Aborted frames are never delivered but still count as interference for overlapping ones.
        state.handlers.length = 0;
      },
    };
  }

  return {
    scheduler,
    attach(o: AirAttachOptions) {
      if (closed) throw new RadioError('AIR_CLOSED', 'the simulated air is closed');
      if (ports.has(o.id)) throw new RadioError('AIR_PORT_IN_USE', `a port with id ${o.id} is already attached`);
      const prior = history.get(o.id);
      const state: PortState = {
        id: o.id,
        network: o.network,
        params: o.params,
        position: { xM: o.position?.xM ?? 0, yM: o.position?.yM ?? 0 },
        attached: true,
        attachedAtMs: scheduler.nowMs(),
        handlers: [],
        current: undefined,
        accountants: prior?.port.accountants ?? new Map(),
        stats: { tx: prior?.tx ?? emptyTx(), rx: prior?.rx ?? emptyRx() },
      };
      ports.set(o.id, state);
      history.set(o.id, { tx: state.stats.tx, rx: state.stats.rx, network: o.network, port: state });
      return makePort(state);
    },
    stats() {
      const out: Record<string, PortStats> = {};
      let framesSent = 0;
      let deliveries = 0;
      let lost = 0;
      let collided = 0;
      const now = scheduler.nowMs();
      for (const [id, h] of history) {
        let windowAirtimeMs = 0;
        let budgetUsed = 0;
        for (const acc of h.port.accountants.values()) {
          const u = acc.usage(now);
          windowAirtimeMs += u.windowMs;
          budgetUsed = Math.max(budgetUsed, u.budgetUsed);
        }
        out[id] = {
          id,
          network: h.network,
          attached: ports.get(id) === h.port,
          tx: { ...h.tx },
          rx: { ...h.rx },
          windowAirtimeMs,
          budgetUsed,
        };
        framesSent += h.tx.frames;
        deliveries += h.rx.delivered;
        lost += h.rx.lost;
        collided += h.rx.collided;
      }
      return { ports: out, framesSent, deliveries, lost, collided };
    },
    setLossRate(rate) {
      checkRate(rate);
      lossRate = rate;
    },
    setLinkLossRate(fromPortId, toPortId, rate) {
      const key = `${fromPortId}\u0000${toPortId}`;
      if (rate === undefined) linkLoss.delete(key);
      else {
        checkRate(rate);
        linkLoss.set(key, rate);
      }
    },
    setPosition(portId, position) {
      const p = ports.get(portId);
      if (p) p.position = { xM: position.xM, yM: position.yM };
    },
    onTrace(handler) {
      traceHandlers.add(handler);
      return () => traceHandlers.delete(handler);
    },
    close() {
      if (closed) return;
      closed = true;
      for (const p of [...ports.values()]) makePort(p).detach();
      traceHandlers.clear();
    },
  };
}

/** The noise floor and decode threshold the air uses, for docs and tests: sensitivity in dBm. */
export function sensitivityDbm(spreadingFactor: number, bandwidthHz: number, noiseFigureDb = 6): number {
  symbolTimeMs(spreadingFactor, bandwidthHz); // validates
  return -174 + 10 * Math.log10(bandwidthHz) + noiseFigureDb + (SNR_LIMIT_DB[spreadingFactor] ?? 0);
}
