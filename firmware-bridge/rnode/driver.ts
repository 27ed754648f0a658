// The RNode driver: implements Radio over a USB serial port speaking KISS (RADIO_PROTOCOLS §1).
// It runs the host start-up sequence, keeps the device online (reboots, unplug/replug with jittered
// backoff), paces transmissions by airtime because the firmware drops silently on overflow (R6),
// and never loses a queued packet across a reconnect (at-least-once: a packet in flight during an
// unplug is sent again).

import { type Clock, systemClock } from '../../protocol/clock.ts';
import type { Logger } from '../../protocol/log.ts';
import { silentLogger } from '../../protocol/log.ts';
import {
  RNODE_MTU_BYTES,
  rnodeFrameSizes,
  rnodeLoraModulation,
  rnodePhyTimings,
  rnodePreambleSymbols,
  timeOnAirMs,
} from '../airtime.ts';
import { createBroadcast } from '../broadcast.ts';
import { type AirtimeDecision, createDutyCycleAccountant, eu868SubBand } from '../duty-cycle.ts';
import { RadioError, type RadioErrorCode } from '../errors.ts';
import type {
  AirtimeReport,
  Radio,
  RadioParams,
  RadioStatus,
  ReceivedPacket,
  SendOptions,
  SendOutcome,
} from '../radio.ts';
import { type DeviceMessage, MIN_FIRMWARE_VERSION, PLATFORM, RNODE_ERROR } from './commands.ts';
import {
  type DeviceIdentity,
  detectDevice,
  type LinkLost,
  openSerialLink,
  pathExists,
  type SerialLink,
} from './serial-link.ts';

/** RNode settings: RadioParams without the preamble, which the firmware derives (§1.4). */
export type RNodeParams = Omit<RadioParams, 'preambleSymbols'>;

export interface RNodeTiming {
  /** Wait after opening the port before the first detect, so a board reset by the open can boot (R1). Default 2000. */
  readonly bootDelayMs: number;
  /** Per detect attempt, wait this long for the replies (RNS: 200 ms). Default 1000. */
  readonly detectTimeoutMs: number;
  /** Detect attempts per opening (RNS: 1). Default 5. */
  readonly detectAttempts: number;
  /** Wait this long for every configuration echo (RNS sleeps 250 ms). Default 1500. */
  readonly configTimeoutMs: number;
  /** A partial frame is dropped after this much silence. Default 100. */
  readonly partialFrameTimeoutMs: number;
  /** While online, query the radio state this often, to notice a hung or silently rebooted device. Default 5000. */
  readonly keepaliveIntervalMs: number;
  readonly keepaliveTimeoutMs: number;
  /** Check that the device path still exists this often (an unplugged pty or USB device vanishes). Default 1000. */
  readonly presencePollMs: number;
  /** Reconnect backoff: initial, doubling, capped, with jitter. Defaults 1000 / 30000. */
  readonly backoffInitialMs: number;
  readonly backoffMaxMs: number;
  /** A write that does not complete within this is a dead port. Default 2000. */
  readonly writeTimeoutMs: number;
  /** close() waits at most this long for the detach frames. Default 500. */
  readonly detachTimeoutMs: number;
}

export const DEFAULT_RNODE_TIMING: RNodeTiming = Object.freeze({
  bootDelayMs: 2_000,
  detectTimeoutMs: 1_000,
  detectAttempts: 5,
  configTimeoutMs: 1_500,
  partialFrameTimeoutMs: 100,
  keepaliveIntervalMs: 5_000,
  keepaliveTimeoutMs: 2_000,
  presencePollMs: 1_000,
  backoffInitialMs: 1_000,
  backoffMaxMs: 30_000,
  writeTimeoutMs: 2_000,
  detachTimeoutMs: 500,
});

/**
 * Host-side pacing (R6). The driver keeps an estimate of what sits in the device queue: each packet
 * occupies it for overhead + airtime + guard after the previous one. A new packet is written only
 * while fewer than maxInFlightPackets (and maxInFlightBytes) are estimated to be queued.
 */
export interface RNodePacing {
  readonly maxInFlightPackets: number;
  readonly maxInFlightBytes: number;
  /** Per-packet listen-before-talk time; default DIFS + 4 CSMA slots for the current modulation. */
  readonly perPacketOverheadMs?: number;
  /** Safety margin per packet for serial and timer latency. Default 20. */
  readonly guardMs: number;
}

export const DEFAULT_RNODE_PACING: RNodePacing = Object.freeze({
  maxInFlightPackets: 3,
  maxInFlightBytes: 2_048,
  guardMs: 20,
});

export interface RNodeRadioOptions {
  /** Serial device; prefer /dev/serial/by-id/… so the name survives replugging. */
  readonly path: string;
  readonly params: RNodeParams;
  /** On-device airtime locks (percent, 0..100); sent only when given (CMD_ST_ALOCK / CMD_LT_ALOCK). */
  readonly airtimeLimits?: { readonly shortTermPercent?: number; readonly longTermPercent?: number };
  readonly clock?: Clock;
  readonly log?: Logger;
  readonly timing?: Partial<RNodeTiming>;
  readonly pacing?: Partial<RNodePacing>;
  /** 'enforce' (default): hold packets that would break the region's airtime law; 'account': only count. */
  readonly dutyCycle?: 'enforce' | 'account';
  /** send() fails with SEND_QUEUE_FULL beyond this many waiting packets. Default 256. */
  readonly maxQueuedPackets?: number;
  /** Jitter source for the backoff (default Math.random). */
  readonly random?: () => number;
}

export interface RNodeDiagnostics {
  readonly device?: {
    readonly firmware: string;
    readonly platform: number | undefined;
    readonly mcu: number | undefined;
  };
  /** Latest unsolicited status frames, as the firmware sent them. */
  readonly channelStats?: Extract<DeviceMessage, { kind: 'channelStats' }>;
  readonly phyParams?: Extract<DeviceMessage, { kind: 'phyParams' }>;
  readonly battery?: Extract<DeviceMessage, { kind: 'battery' }>;
  readonly temperatureC?: number;
  /** Device error frames by code name (RNODE_MEMORY_LOW, …). */
  readonly hardwareErrors: Readonly<Record<string, number>>;
  readonly queuedPackets: number;
  readonly inFlightPackets: number;
  readonly counters: Readonly<{
    sessions: number;
    reinitialisations: number;
    packetsReceived: number;
    packetsSent: number;
    requeued: number;
    /** Frames the driver ignored (unsolicited counters, unknown commands). */
    ignoredFrames: number;
  }>;
}

export interface RNodeRadio extends Radio {
  diagnostics(): RNodeDiagnostics;
}

interface QueueItem {
  readonly payload: Uint8Array;
  readonly frameAirtimesMs: readonly number[];
  readonly airtimeMs: number;
  readonly resolve: (o: SendOutcome) => void;
  settled: boolean;
  onAbort?: () => void;
  readonly signal?: AbortSignal;
}

interface InFlight {
  readonly item: QueueItem;
  /** Estimated end on air; Infinity while the write is still under way. */
  doneAtMs: number;
}

type SessionEnd = { readonly status: RadioStatus; readonly slow: boolean; readonly reachedReady: boolean };

const failed = (code: RadioErrorCode, reason: string): SendOutcome => ({ state: 'failed', code, reason });

function refusalCode(reason: 'duty-cycle' | 'dwell-time' | 'out-of-band'): RadioErrorCode {
  if (reason === 'dwell-time') return 'DWELL_TIME_EXCEEDED';
  if (reason === 'out-of-band') return 'OUT_OF_BAND';
  return 'DUTY_CYCLE_EXCEEDED';
}

/** Validates RNode parameters the way RNS does before touching a port. Throws RADIO_PARAMS_INVALID or OUT_OF_BAND. */
export function validateRNodeParams(p: RNodeParams, limits?: RNodeRadioOptions['airtimeLimits']): void {
  const bad = (what: string, details: Record<string, unknown>) => {
    throw new RadioError('RADIO_PARAMS_INVALID', what, { details });
  };
  if (!Number.isInteger(p.freqHz) || p.freqHz < 137_000_000 || p.freqHz > 3_000_000_000) {
    bad(`frequency must be 137 MHz–3 GHz in Hz, got ${p.freqHz}`, { freqHz: p.freqHz });
  }
  if (!Number.isInteger(p.bandwidthHz) || p.bandwidthHz < 7_800 || p.bandwidthHz > 1_625_000) {
    bad(`bandwidth must be 7.8–1625 kHz in Hz, got ${p.bandwidthHz}`, { bandwidthHz: p.bandwidthHz });
  }
  if (!Number.isInteger(p.txPowerDbm) || p.txPowerDbm < 0 || p.txPowerDbm > 37) {
    bad(`TX power must be 0..37 dBm, got ${p.txPowerDbm}`, { txPowerDbm: p.txPowerDbm });
  }
  if (!Number.isInteger(p.spreadingFactor) || p.spreadingFactor < 5 || p.spreadingFactor > 12) {
    bad(`spreading factor must be 5..12, got ${p.spreadingFactor}`, { spreadingFactor: p.spreadingFactor });
  }
  if (!Number.isInteger(p.codingRate) || p.codingRate < 5 || p.codingRate > 8) {
    bad(`coding rate must be 5..8 (4/5..4/8), got ${p.codingRate}`, { codingRate: p.codingRate });
  }
  if (!['EU868', 'US915', 'ANY'].includes(p.region)) bad(`unknown region ${p.region}`, { region: p.region });
  for (const [k, v] of Object.entries(limits ?? {})) {
    if (v !== undefined && !(v >= 0 && v <= 100)) bad(`${k} must be 0..100 %, got ${v}`, { [k]: v });
  }
  if (p.region === 'EU868' && !eu868SubBand(p.freqHz, p.bandwidthHz)) {
    throw new RadioError(
      'OUT_OF_BAND',
      `${p.freqHz / 1e6} MHz with ${p.bandwidthHz / 1e3} kHz bandwidth is not inside one EU868 sub-band (docs/radios.md)`,
      { details: { freqHz: p.freqHz, bandwidthHz: p.bandwidthHz } },
    );
  }
  if (
    p.region === 'US915' &&
    (p.freqHz - p.bandwidthHz / 2 < 902_000_000 || p.freqHz + p.bandwidthHz / 2 > 928_000_000)
  ) {
    throw new RadioError('OUT_OF_BAND', `${p.freqHz / 1e6} MHz is outside US 902–928 MHz`, {
      details: { freqHz: p.freqHz },
    });
  }
}

/** Creates an RNode radio. Throws RADIO_PARAMS_INVALID / OUT_OF_BAND for bad settings; never touches the port until open(). */
export function createRNodeRadio(options: RNodeRadioOptions): RNodeRadio {
  validateRNodeParams(options.params, options.airtimeLimits);
  const path = options.path;
  const params = options.params;
  const clock = options.clock ?? systemClock;
  const log = (options.log ?? silentLogger).child({ radio: 'rnode', path });
  const timing: RNodeTiming = { ...DEFAULT_RNODE_TIMING, ...options.timing };
  const modulation = {
    spreadingFactor: params.spreadingFactor,
    bandwidthHz: params.bandwidthHz,
    codingRate: params.codingRate,
  };
  const phy = rnodePhyTimings(modulation);
  const pacing: RNodePacing & { perPacketOverheadMs: number } = {
    ...DEFAULT_RNODE_PACING,
    perPacketOverheadMs: phy.difsMs + 4 * phy.csmaSlotMs,
    ...options.pacing,
  };
  const enforce = (options.dutyCycle ?? 'enforce') === 'enforce';
  const maxQueued = options.maxQueuedPackets ?? 256;
  const random = options.random ?? Math.random;
  const radioParams: RadioParams = { ...params, preambleSymbols: rnodePreambleSymbols(modulation) };
  const lora = rnodeLoraModulation(modulation);
  const accountant = createDutyCycleAccountant({ region: params.region, defaultBandwidthHz: params.bandwidthHz });

  const statuses = createBroadcast<RadioStatus>();
  const packetStream = createBroadcast<ReceivedPacket>();
  let status: RadioStatus = { state: 'absent', reason: 'not opened' };
  let opening: Promise<void> | undefined;
  let supervisor: Promise<void> | undefined;
  let closing = false;
  let wakeSupervisor: (() => void) | undefined;
  let link: SerialLink | undefined;
  let identity: DeviceIdentity | undefined;

  const queue: QueueItem[] = [];
  let inFlight: InFlight[] = [];
  let lastDoneAtMs = 0;
  let pumpTimer: NodeJS.Timeout | undefined;
  let pumping = false;
  /** Send times of radio-state queries awaiting their reply (replies come back in order). */
  let stateQueries: number[] = [];
  let confirmPending = false;
  let reinit: (() => void) | undefined;

  const hardwareErrors: Record<string, number> = {};
  const counters = {
    sessions: 0,
    reinitialisations: 0,
    packetsReceived: 0,
    packetsSent: 0,
    requeued: 0,
    ignoredFrames: 0,
  };
  let channelStats: RNodeDiagnostics['channelStats'];
  let phyParams: RNodeDiagnostics['phyParams'];
  let battery: RNodeDiagnostics['battery'];
  let temperatureC: number | undefined;
  let pendingRssi: number | undefined;
  let pendingSnr: number | undefined;

  function setStatus(next: RadioStatus): void {
    if (JSON.stringify(next) === JSON.stringify(status)) return;
    status = next;
    log.info('rnode.status', {
      state: next.state,
      ...('reason' in next ? { reason: next.reason } : {}),
      ...('code' in next ? { code: next.code } : {}),
    });
    statuses.publish(next);
  }

  // ---- transmit queue and pacing ----

  function settle(item: QueueItem, outcome: SendOutcome): void {
    if (item.settled) return;
    item.settled = true;
    if (item.onAbort) item.signal?.removeEventListener('abort', item.onAbort);
    item.resolve(outcome);
  }

  function regulatoryDecision(item: QueueItem, nowMs: number): AirtimeDecision {
    if (params.region === 'US915') {
      // Dwell time limits each LoRa frame; an RNode sends a long packet as two frames.
      for (const ms of item.frameAirtimesMs) {
        const d = accountant.canTransmit(params.freqHz, ms, nowMs, params.bandwidthHz);
        if (!d.allowed) return d;
      }
      return { allowed: true, rule: 'dwell-time' };
    }
    return accountant.canTransmit(params.freqHz, item.airtimeMs, nowMs, params.bandwidthHz);
  }

  function schedulePump(delayMs: number): void {
    if (pumpTimer) clearTimeout(pumpTimer);
    pumpTimer = setTimeout(
      () => {
        pumpTimer = undefined;
        kick();
      },
      Math.max(0, delayMs),
    );
  }

  /**
   * A written packet counts as sent once its estimated end on air has passed AND the device has since
   * answered a radio-state query with "on": a device that rebooted meanwhile answers nothing (or "off")
   * and announces itself, and then every unconfirmed packet is sent again.
   */
  function confirmUpTo(sentAtMs: number): void {
    while (inFlight.length > 0 && inFlight[0]!.doneAtMs <= sentAtMs) {
      const f = inFlight.shift()!;
      counters.packetsSent++;
      settle(f.item, { state: 'sent', airtimeMs: f.item.airtimeMs });
    }
    confirmPending = false;
    kick();
  }

  async function queryRadioState(l: SerialLink): Promise<void> {
    // A lost reply would shift every later one by one query: harmless (it only delays confirmation), but bounded.
    if (stateQueries.length >= 16) stateQueries.shift();
    stateQueries.push(clock.monotonicMs());
    await l.send({ kind: 'radioState', state: 'query' });
  }

  /** Earliest estimated end of a packet still on its way out, if any. */
  function nextDueMs(now: number): number | undefined {
    return inFlight.find((f) => f.doneAtMs > now && Number.isFinite(f.doneAtMs))?.doneAtMs;
  }

  function kick(): void {
    if (pumping) return;
    pumping = true;
    void pump().finally(() => {
      pumping = false;
    });
  }

  async function pump(): Promise<void> {
    for (;;) {
      const l = link;
      if (status.state !== 'ready' || !l || l.isLost() || closing) return;
      const nextDone = nextDueMs(clock.monotonicMs());
      if (!confirmPending && inFlight.length > 0 && inFlight[0]!.doneAtMs <= clock.monotonicMs()) {
        confirmPending = true;
        void queryRadioState(l).catch(() => undefined); // a dead link requeues everything unconfirmed
      }
      while (queue.length > 0 && queue[0]!.settled) queue.shift();
      const item = queue[0];
      if (!item) {
        if (nextDone !== undefined) schedulePump(nextDone - clock.monotonicMs());
        return;
      }
      const now = clock.monotonicMs();
      const decision = regulatoryDecision(item, now);
      if (!decision.allowed && enforce) {
        if (decision.retryAfterMs === undefined) {
          queue.shift();
          log.warning('rnode.send_refused', { reason: decision.message });
          settle(item, failed(refusalCode(decision.reason), decision.message));
          continue;
        }
        log.info('rnode.send_held', { reason: decision.message, retryAfterMs: Math.ceil(decision.retryAfterMs) });
        schedulePump(
          Math.min(decision.retryAfterMs, nextDone === undefined ? Number.POSITIVE_INFINITY : nextDone - now),
        );
        return;
      }
      // Only packets estimated to be still inside the device occupy its queue.
      const inDevice = inFlight.filter((f) => f.doneAtMs > now);
      const bytesInDevice = inDevice.reduce((n, f) => n + f.item.payload.length, 0);
      const full =
        inDevice.length >= pacing.maxInFlightPackets ||
        (inDevice.length > 0 && bytesInDevice + item.payload.length > pacing.maxInFlightBytes);
      if (full) {
        if (nextDone !== undefined) schedulePump(nextDone - now);
        return;
      }
      // In flight from before the write, so that a device reset noticed meanwhile requeues it in order.
      queue.shift();
      const entry: InFlight = { item, doneAtMs: Number.POSITIVE_INFINITY };
      inFlight.push(entry);
      try {
        await l.send({ kind: 'data', data: item.payload });
      } catch {
        // The link died under us: the packet was not handed over; keep it first in line.
        const i = inFlight.indexOf(entry);
        if (i >= 0) {
          inFlight.splice(i, 1);
          if (!item.settled) queue.unshift(item);
        }
        return;
      }
      if (!inFlight.includes(entry)) continue; // requeued by a device reset while it was being written
      const writtenAt = clock.monotonicMs();
      accountant.record(params.freqHz, item.airtimeMs, writtenAt, params.bandwidthHz);
      entry.doneAtMs = Math.max(writtenAt, lastDoneAtMs) + pacing.perPacketOverheadMs + item.airtimeMs + pacing.guardMs;
      lastDoneAtMs = entry.doneAtMs;
    }
  }

  /** Puts packets that were written but may not have left the device back at the head of the queue. */
  function requeueInFlight(why: string): void {
    stateQueries = [];
    confirmPending = false;
    if (inFlight.length === 0) return;
    const back = inFlight.map((f) => f.item).filter((i) => !i.settled);
    inFlight = [];
    lastDoneAtMs = 0;
    counters.requeued += back.length;
    queue.unshift(...back);
    log.info('rnode.requeued', { packets: back.length, why });
  }

  // ---- device messages ----

  function onDeviceMessage(m: DeviceMessage): void {
    switch (m.kind) {
      case 'rssi':
        pendingRssi = m.dbm;
        return;
      case 'snr':
        pendingSnr = m.db;
        return;
      case 'data': {
        counters.packetsReceived++;
        const packet: ReceivedPacket = {
          payload: m.data,
          rssiDbm: pendingRssi ?? Number.NaN,
          snrDb: pendingSnr ?? Number.NaN,
          receivedAtMs: clock.nowMs(),
        };
        pendingRssi = undefined;
        pendingSnr = undefined;
        packetStream.publish(packet);
        return;
      }
      case 'channelStats':
        channelStats = m;
        return;
      case 'phyParams':
        phyParams = m;
        return;
      case 'battery':
        battery = m;
        return;
      case 'temperature':
        temperatureC = m.celsius;
        return;
      case 'reset':
        if (status.state === 'ready' && !closing) {
          log.notice('rnode.device_rebooted');
          reinit?.();
        }
        return;
      case 'radioState': {
        const sentAt = status.state === 'ready' ? stateQueries.shift() : undefined;
        if (m.on && sentAt !== undefined) confirmUpTo(sentAt);
        if (!m.on && status.state === 'ready' && !closing) {
          log.notice('rnode.radio_off', {
            hint: 'device reset without announcing it, or turned off by another program',
          });
          reinit?.();
        }
        return;
      }
      case 'error': {
        hardwareErrors[m.error.code] = (hardwareErrors[m.error.code] ?? 0) + 1;
        if (m.code === RNODE_ERROR.MEMORY_LOW || m.code === RNODE_ERROR.MODEM_TIMEOUT) {
          log.warning('rnode.device_error', { code: m.error.code, message: m.error.message });
          return;
        }
        log.error('rnode.device_error', { code: m.error.code, message: m.error.message });
        if (status.state === 'ready' && !closing) reinit?.();
        return;
      }
      case 'statRx':
      case 'statTx':
      case 'other':
        // Unsolicited counters (R3) and frames this driver does not use are harmless: count and move on.
        counters.ignoredFrames++;
        return;
      default:
        return;
    }
  }

  // ---- session: open, detect, configure, stay online ----

  interface Echo {
    freqHz?: number;
    bandwidthHz?: number;
    txPowerDbm?: number;
    spreadingFactor?: number;
    codingRate?: number;
    radioOn?: boolean;
    stAlock?: number;
    ltAlock?: number;
  }

  async function configure(l: SerialLink): Promise<RadioError | undefined> {
    const echo: Echo = {};
    const off = l.onMessage((m) => {
      if (m.kind === 'frequency') echo.freqHz = m.hz;
      else if (m.kind === 'bandwidth') echo.bandwidthHz = m.hz;
      else if (m.kind === 'txPower') echo.txPowerDbm = m.dbm;
      else if (m.kind === 'spreadingFactor') echo.spreadingFactor = m.sf;
      else if (m.kind === 'codingRate') echo.codingRate = m.cr;
      else if (m.kind === 'radioState') echo.radioOn = m.on;
      else if (m.kind === 'stAlock') echo.stAlock = m.percent;
      else if (m.kind === 'ltAlock') echo.ltAlock = m.percent;
    });
    try {
      const st = options.airtimeLimits?.shortTermPercent;
      const lt = options.airtimeLimits?.longTermPercent;
      // Separate writes, in RNS's order, no waiting between them (§1.3 step 7).
      await l.send({ kind: 'frequency', hz: params.freqHz });
      await l.send({ kind: 'bandwidth', hz: params.bandwidthHz });
      await l.send({ kind: 'txPower', dbm: params.txPowerDbm });
      await l.send({ kind: 'spreadingFactor', sf: params.spreadingFactor });
      await l.send({ kind: 'codingRate', cr: params.codingRate });
      if (st !== undefined) await l.send({ kind: 'stAlock', percent: st });
      if (lt !== undefined) await l.send({ kind: 'ltAlock', percent: lt });
      await l.send({ kind: 'radioState', state: 'on' });
      const expected: (keyof Echo)[] = [
        'freqHz',
        'bandwidthHz',
        'txPowerDbm',
        'spreadingFactor',
        'codingRate',
        'radioOn',
      ];
      if (st !== undefined) expected.push('stAlock');
      if (lt !== undefined) expected.push('ltAlock');
      await l.waitFor(() => expected.every((k) => echo[k] !== undefined), timing.configTimeoutMs);
      return validateEcho(echo, expected);
    } finally {
      off();
    }
  }

  /** The host's rules (§1.3 step 8): frequency ±100 Hz, bandwidth, TX power, SF and radio state exact. */
  function validateEcho(echo: Echo, expected: (keyof Echo)[]): RadioError | undefined {
    const missing = expected.filter(
      (k) => echo[k] === undefined && k !== 'codingRate' && k !== 'stAlock' && k !== 'ltAlock',
    );
    if (missing.length > 0) {
      return new RadioError('RNODE_NO_RESPONSE', `the RNode did not confirm ${missing.join(', ')}`, {
        details: { missing },
      });
    }
    const details = { requested: { ...params }, reported: { ...echo } };
    if (echo.txPowerDbm !== params.txPowerDbm) {
      if (echo.txPowerDbm !== undefined && echo.txPowerDbm < params.txPowerDbm) {
        return new RadioError(
          'RNODE_TX_POWER_CLAMPED',
          `the RNode clamped TX power from ${params.txPowerDbm} dBm to ${echo.txPowerDbm} dBm (its hardware limit); set txPowerDbm to ${echo.txPowerDbm} or less`,
          { details },
        );
      }
      return new RadioError(
        'RNODE_PARAM_MISMATCH',
        `TX power mismatch: asked ${params.txPowerDbm} dBm, device reports ${echo.txPowerDbm}`,
        { details },
      );
    }
    const mismatches: string[] = [];
    if (echo.freqHz !== undefined && Math.abs(echo.freqHz - params.freqHz) > 100)
      mismatches.push(`frequency ${echo.freqHz} Hz`);
    if (echo.bandwidthHz !== params.bandwidthHz) mismatches.push(`bandwidth ${echo.bandwidthHz} Hz`);
    if (echo.spreadingFactor !== params.spreadingFactor) mismatches.push(`spreading factor ${echo.spreadingFactor}`);
    if (echo.radioOn !== true) mismatches.push('radio did not turn on');
    if (mismatches.length > 0) {
      return new RadioError(
        'RNODE_PARAM_MISMATCH',
        `reported radio parameters did not match: ${mismatches.join(', ')}`,
        { details },
      );
    }
    if (echo.codingRate !== undefined && echo.codingRate !== params.codingRate) {
      log.warning('rnode.coding_rate_differs', { requested: params.codingRate, reported: echo.codingRate });
    }
    return undefined;
  }

  async function detach(l: SerialLink): Promise<void> {
    const display = identity?.platform === PLATFORM.ESP32 || identity?.platform === PLATFORM.NRF52;
    if (display) await l.send({ kind: 'framebufferExt', state: 'disable' });
    await l.send({ kind: 'radioState', state: 'off' });
    await l.send({ kind: 'leave' });
  }

  function lostStatus(lost: LinkLost): RadioStatus {
    if (lost.kind === 'absent') return { state: 'absent', reason: lost.reason };
    return { state: 'error', code: lost.error?.code ?? 'PORT_FAILED', reason: lost.error?.message ?? lost.reason };
  }

  /** Runs until the device goes away or the radio closes; returns online only after a reinit request. */
  function stayOnline(l: SerialLink): Promise<'reinit'> {
    return new Promise<'reinit'>((resolve, reject) => {
      let radioStateReplies = 0;
      const off = l.onMessage((m) => {
        if (m.kind === 'radioState') radioStateReplies++;
      });
      let keepalive: NodeJS.Timeout | undefined;
      const stop = () => {
        off();
        if (keepalive) clearTimeout(keepalive);
        reinit = undefined;
      };
      reinit = () => {
        stop();
        resolve('reinit');
      };
      const tick = async () => {
        const before = radioStateReplies;
        try {
          await queryRadioState(l);
          const answered = await l.waitFor(() => radioStateReplies > before, timing.keepaliveTimeoutMs);
          if (!answered && !l.isLost()) {
            l.markLost({
              kind: 'failed',
              reason: 'device stopped answering',
              error: new RadioError('RNODE_NO_RESPONSE', `the RNode at ${path} stopped answering keepalive queries`),
            });
          }
        } catch {
          return; // the link is lost; the lost handler below ends the session
        }
        if (reinit && !l.isLost()) keepalive = setTimeout(() => void tick(), timing.keepaliveIntervalMs);
      };
      keepalive = setTimeout(() => void tick(), timing.keepaliveIntervalMs);
      void l.lost.then((lost) => {
        stop();
        reject(lost);
      });
      kick();
    });
  }

  async function runSession(): Promise<SessionEnd> {
    let reachedReady = false;
    if (!(await pathExists(path))) {
      return { status: { state: 'absent', reason: `${path} is not present` }, slow: false, reachedReady };
    }
    setStatus({ state: 'opening' });
    const opened = await openSerialLink({
      path,
      log,
      partialFrameTimeoutMs: timing.partialFrameTimeoutMs,
      writeTimeoutMs: timing.writeTimeoutMs,
    });
    if (!('lost' in opened)) return { status: lostStatus(opened), slow: opened.kind === 'failed', reachedReady };
    const l = opened;
    if (closing) {
      // close() ran while the port was opening and could not see this link.
      await l.close();
      return { status: { state: 'absent', reason: 'closed' }, slow: false, reachedReady };
    }
    link = l;
    counters.sessions++;
    l.onMessage(onDeviceMessage);
    const presence = setInterval(() => {
      void pathExists(path).then((present) => {
        if (!present) l.markLost({ kind: 'absent', reason: `${path} vanished (unplugged)` });
      });
    }, timing.presencePollMs);
    try {
      await l.sleep(timing.bootDelayMs);
      for (;;) {
        const id = await detectDevice(l, timing, log);
        if (!id) {
          return {
            status: {
              state: 'error',
              code: 'RNODE_NOT_DETECTED',
              reason: `no RNode answered on ${path} after ${timing.detectAttempts} detect attempts (is it an RNode with KISS over this port? some boards speak it only over USB)`,
            },
            slow: false,
            reachedReady,
          };
        }
        identity = id;
        const version = `${id.firmware.major}.${id.firmware.minor}`;
        const tooOld =
          id.firmware.major < MIN_FIRMWARE_VERSION.major ||
          (id.firmware.major === MIN_FIRMWARE_VERSION.major && id.firmware.minor < MIN_FIRMWARE_VERSION.minor);
        if (tooOld) {
          // R5: refuse politely and keep the process running; flashing new firmware fixes it.
          log.error('rnode.firmware_too_old', {
            version,
            required: '1.52',
            hint: 'update with rnodeconf --autoinstall',
          });
          return {
            status: {
              state: 'error',
              code: 'RNODE_FIRMWARE_TOO_OLD',
              reason: `RNode firmware ${version} is older than the required 1.52; update it (rnodeconf --autoinstall)`,
            },
            slow: true,
            reachedReady,
          };
        }
        setStatus({ state: 'configuring' });
        const problem = await configure(l);
        if (problem) {
          log.error('rnode.configure_failed', { code: problem.code, message: problem.message });
          await detach(l).catch(() => undefined);
          return {
            status: { state: 'error', code: problem.code, reason: problem.message },
            slow: problem.code !== 'RNODE_NO_RESPONSE',
            reachedReady,
          };
        }
        reachedReady = true;
        setStatus({ state: 'ready', firmware: version, params: radioParams });
        await stayOnline(l);
        counters.reinitialisations++;
        requeueInFlight('device reset');
        setStatus({ state: 'configuring' });
      }
    } catch (e) {
      const lost = await Promise.race([l.lost, Promise.resolve(undefined)]);
      if (lost) return { status: lostStatus(lost), slow: lost.kind === 'failed', reachedReady };
      // A coding error, not a device problem: report it as an error status and reopen.
      log.error('rnode.session_failed', { error: e });
      return {
        status: { state: 'error', code: 'PORT_FAILED', reason: e instanceof Error ? e.message : String(e) },
        slow: false,
        reachedReady,
      };
    } finally {
      clearInterval(presence);
      reinit = undefined;
      requeueInFlight('link lost');
      link = undefined;
      await l.close();
    }
  }

  function sleepUnlessClosing(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(done, ms);
      function done() {
        clearTimeout(t);
        wakeSupervisor = undefined;
        resolve();
      }
      wakeSupervisor = done;
    });
  }

  async function supervise(): Promise<void> {
    let attempt = 0;
    while (!closing) {
      const end = await runSession();
      if (closing) break;
      setStatus(end.status);
      if (end.reachedReady) attempt = 0;
      const base = end.slow
        ? timing.backoffMaxMs
        : Math.min(timing.backoffMaxMs, timing.backoffInitialMs * 2 ** attempt);
      attempt = Math.min(attempt + 1, 30);
      const delay = base * (0.5 + 0.5 * random());
      log.debug('rnode.retry', { delayMs: Math.round(delay) });
      if (end.status.state === 'absent') {
        // Nothing to retry until the device node is back; then back off as usual.
        while (!closing && !(await pathExists(path))) await sleepUnlessClosing(timing.presencePollMs);
      }
      await sleepUnlessClosing(delay);
    }
  }

  const radio: RNodeRadio = {
    kind: 'rnode',
    path,
    maxPayloadBytes: RNODE_MTU_BYTES,
    open() {
      if (closing) return Promise.reject(new RadioError('RADIO_CLOSED', 'this radio was closed; create a new one'));
      if (!opening) {
        supervisor = supervise();
        // Resolves after the first attempt, whatever its outcome; the radio keeps retrying on its own (R2).
        opening = (async () => {
          for await (const s of statuses.subscribe(() => status)) {
            if (s.state === 'ready' || s.state === 'error' || (s.state === 'absent' && s.reason !== 'not opened'))
              return;
          }
        })();
      }
      return opening;
    },
    async close() {
      if (closing) {
        await supervisor;
        return;
      }
      closing = true;
      wakeSupervisor?.();
      if (pumpTimer) clearTimeout(pumpTimer);
      const l = link;
      if (l && !l.isLost()) {
        if (status.state === 'ready' || status.state === 'configuring') {
          await Promise.race([
            detach(l).catch(() => undefined),
            new Promise((r) => setTimeout(r, timing.detachTimeoutMs)),
          ]);
        }
        await l.close();
      }
      await supervisor;
      const now = clock.monotonicMs();
      for (const f of inFlight) {
        // Past its estimated end the packet has most likely gone out; the device can no longer confirm it.
        if (f.doneAtMs <= now) settle(f.item, { state: 'sent', airtimeMs: f.item.airtimeMs });
        else settle(f.item, failed('RADIO_CLOSED', 'the radio was closed before the packet was confirmed on air'));
      }
      inFlight = [];
      for (const item of queue.splice(0)) settle(item, failed('RADIO_CLOSED', 'the radio was closed'));
      setStatus({ state: 'absent', reason: 'closed' });
      statuses.close();
      packetStream.close();
    },
    status: () => status,
    statusChanges: () => statuses.subscribe(() => status),
    packets: () => packetStream.subscribe(),
    send(payload: Uint8Array, sendOptions: SendOptions = {}) {
      if (closing) return Promise.resolve(failed('RADIO_CLOSED', 'the radio is closed'));
      if (payload.length === 0)
        return Promise.resolve(failed('PAYLOAD_EMPTY', 'an RNode packet needs at least one byte'));
      if (payload.length > RNODE_MTU_BYTES) {
        return Promise.resolve(
          failed('PAYLOAD_TOO_LARGE', `an RNode packet is at most ${RNODE_MTU_BYTES} bytes, got ${payload.length}`),
        );
      }
      if (queue.length >= maxQueued)
        return Promise.resolve(failed('SEND_QUEUE_FULL', `${maxQueued} packets are already waiting`));
      if (sendOptions.signal?.aborted) return Promise.resolve(failed('SEND_ABORTED', 'aborted before queueing'));
      const frameAirtimesMs = rnodeFrameSizes(payload.length).map((n) => timeOnAirMs(n, lora));
      return new Promise<SendOutcome>((resolve) => {
        const item: QueueItem = {
          payload: Uint8Array.from(payload),
          frameAirtimesMs,
          airtimeMs: frameAirtimesMs.reduce((a, b) => a + b, 0),
          resolve,
          settled: false,
          ...(sendOptions.signal ? { signal: sendOptions.signal } : {}),
        };
        // A packet the law will never allow (longer than the dwell limit or the whole budget) fails now.
        const decision = regulatoryDecision(item, clock.monotonicMs());
        if (enforce && !decision.allowed && decision.retryAfterMs === undefined) {
          resolve(failed(refusalCode(decision.reason), decision.message));
          return;
        }
        if (sendOptions.signal) {
          item.onAbort = () => {
            const i = queue.indexOf(item);
            if (i >= 0) {
              queue.splice(i, 1);
              settle(item, failed('SEND_ABORTED', 'aborted while waiting in the queue'));
            }
          };
          sendOptions.signal.addEventListener('abort', item.onAbort, { once: true });
        }
        queue.push(item);
        kick();
      });
    },
    airtime(): AirtimeReport {
      const u = accountant.usage(clock.monotonicMs());
      return { totalMs: u.totalMs, windowMs: u.windowMs, budgetUsed: u.budgetUsed };
    },
    diagnostics() {
      return {
        ...(identity
          ? {
              device: {
                firmware: `${identity.firmware.major}.${identity.firmware.minor}`,
                platform: identity.platform,
                mcu: identity.mcu,
              },
            }
          : {}),
        ...(channelStats ? { channelStats } : {}),
        ...(phyParams ? { phyParams } : {}),
        ...(battery ? { battery } : {}),
        ...(temperatureC !== undefined ? { temperatureC } : {}),
        hardwareErrors: { ...hardwareErrors },
        queuedPackets: queue.filter((i) => !i.settled).length,
        inFlightPackets: inFlight.length,
        counters: { ...counters },
      };
    },
  };
  return radio;
}
