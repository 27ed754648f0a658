// A faithful RNode firmware emulator (RADIO_PROTOCOLS §6.1) on the device end of a socat pty pair,
// transmitting through the simulated air with the firmware's on-air framing. Fault injection:
// unplug/replug, reboot, garbage, slow link, hung device, queue size.

import { SerialPort } from 'serialport';
import type { Logger } from '../../protocol/log.ts';
import { silentLogger } from '../../protocol/log.ts';
import { RNODE_SINGLE_FRAME_PAYLOAD_BYTES, rnodePhyTimings, rnodePreambleSymbols } from '../airtime.ts';
import { RadioError } from '../errors.ts';
import type { RadioParams, RegionCode } from '../radio.ts';
import {
  CMD,
  type DeviceMessage,
  decodeHostMessage,
  encodeDeviceMessage,
  type HostMessage,
  MCU,
  PLATFORM,
  RNODE_ERROR,
} from '../rnode/commands.ts';
import { createKissDecoder, encodeKissFrame, type KissDecoder } from '../rnode/kiss.ts';
import type { Air, AirPort, AirReception } from './air.ts';
import { type AirScheduler, createRealtimeScheduler } from './air-scheduler.ts';
import { openPtyPair, type PtyPair } from './pty.ts';
import { createSeededRandom } from './seeded-random.ts';

/** LoRa transceiver family: decides TX power clamping and bandwidth steps. */
export type RNodeChip = 'sx1262' | 'sx1276' | 'sx1280';

/** TX power ceilings of the firmware's CMD_TXPOWER handler (without external PA). */
const CHIP_MAX_TXP: Readonly<Record<RNodeChip, number>> = { sx1262: 22, sx1276: 17, sx1280: 13 };
/** Bandwidths the SX126x/SX127x modem supports; a value in between rounds up to the next step. */
const BANDWIDTH_STEPS_HZ = [7_800, 10_400, 15_600, 20_800, 31_250, 41_700, 62_500, 125_000, 250_000, 500_000];
const BANDWIDTH_STEPS_SX1280_HZ = [203_125, 406_250, 812_500, 1_625_000];
/** SX126x PLL step: 32 MHz / 2^25. The firmware reads the frequency back from the chip once online. */
const PLL_STEP_HZ = 32_000_000 / 2 ** 25;
const SHORT_TERM_WINDOW_MS = 15_000;
const LONG_TERM_WINDOW_MS = 3_600_000;

export interface RNodeEmulatorOptions {
  /** Directory for the pty symlinks; the host opens `<dir>/<name>`. */
  readonly dir: string;
  readonly name: string;
  /** The air to transmit into; its scheduler (if any) times airtime locks and CSMA. */
  readonly air: Air & { readonly scheduler?: AirScheduler };
  /** Air port id (default: name). */
  readonly id?: string;
  readonly position?: { readonly xM: number; readonly yM: number };
  /** Region whose law the air applies to this radio (default ANY). */
  readonly region?: RegionCode;
  /** Reported firmware version (default 1.86). */
  readonly firmware?: { readonly major: number; readonly minor: number };
  /** Platform byte (default ESP32 0x80); ESP32 and nRF52 announce `55 F8` at boot and send stat frames. */
  readonly platform?: number;
  readonly mcu?: number;
  readonly board?: number;
  readonly chip?: RNodeChip;
  /** Overrides the chip's TX power ceiling (boards with a PA). */
  readonly maxTxPowerDbm?: number;
  /** Time from power-on or reset until the firmware listens, ms (default 20). Input during boot is lost. */
  readonly bootDelayMs?: number;
  /** Delay before each reply, ms (default 0). */
  readonly replyDelayMs?: number;
  /** Send CHTM (0x25) after each transmission and PHYPRM (0x26) when the radio starts (default: ESP32/nRF52). */
  readonly statusFrames?: boolean;
  /** Also send CHTM every this many ms while the radio is on (default off). */
  readonly statusIntervalMs?: number;
  /** Device TX queue (default 6144 bytes / 200 packets, the ESP32 build). Overflow drops silently (R6). */
  readonly queueMaxBytes?: number;
  readonly queueMaxPackets?: number;
  /** Listen-before-talk: wait DIFS plus a random number of slots before each packet (default false). */
  readonly csma?: boolean;
  /** Seed for the header sequence nibble and CSMA (default 1). */
  readonly seed?: number;
  readonly log?: Logger;
}

export type RNodeEmulatorEvent =
  | { readonly type: 'plugged'; readonly plugged: boolean }
  | { readonly type: 'booted' }
  | { readonly type: 'host'; readonly message: HostMessage }
  | { readonly type: 'host-violation'; readonly code: string }
  | { readonly type: 'radio'; readonly on: boolean }
  | { readonly type: 'tx'; readonly bytes: number; readonly airtimeMs: number }
  | { readonly type: 'tx-refused'; readonly reason: string }
  | { readonly type: 'rx'; readonly bytes: number }
  | { readonly type: 'queue-drop'; readonly bytes: number }
  | { readonly type: 'error-sent'; readonly code: number };

export interface RNodeEmulatorState {
  readonly plugged: boolean;
  readonly booted: boolean;
  readonly radioOn: boolean;
  readonly freqHz: number;
  readonly bandwidthHz: number;
  readonly txPowerDbm: number;
  readonly spreadingFactor: number;
  readonly codingRate: number;
  readonly stAlockPercent: number;
  readonly ltAlockPercent: number;
  readonly queuedPackets: number;
  readonly queuedBytes: number;
  /** Packets dropped because the device queue was full (the firmware says nothing: R6). */
  readonly droppedQueueFull: number;
  readonly txPackets: number;
  readonly rxPackets: number;
  /** Host frames that violated KISS or had bad arguments. */
  readonly badHostFrames: number;
  readonly boots: number;
}

export interface RNodeEmulator {
  /** The path a driver opens (a stable symlink, like /dev/serial/by-id/…). */
  readonly hostPath: string;
  readonly portId: string;
  state(): RNodeEmulatorState;
  onEvent(handler: (e: RNodeEmulatorEvent) => void): () => void;
  /** Host messages received since start (last 1000). */
  hostMessages(): readonly HostMessage[];
  /** Pulls the USB cable: the pty disappears, the device loses power and state. */
  unplug(): Promise<void>;
  /** Plugs it back in: a new pty at the same host path; the device boots. */
  replug(): Promise<void>;
  /** Resets the MCU behind a still-open port (watchdog, brown-out, DTR); announces `55 F8` on ESP32/nRF52. */
  reboot(): Promise<void>;
  /** Writes raw bytes to the host (line noise, bootloader text). */
  injectGarbage(bytes: Uint8Array): Promise<void>;
  /** Writes one KISS frame to the host, whatever the firmware would do (e.g. unsolicited 0x21: R3). */
  sendFrame(command: number, data: Uint8Array): Promise<void>;
  /** Slow serial link: replies leave in `chunkBytes` pieces `delayMs` apart (undefined restores full speed). */
  setSlowLink(link: { readonly chunkBytes: number; readonly delayMs: number } | undefined): void;
  /** A hung firmware reads nothing and answers nothing until set responsive again. */
  setResponsive(responsive: boolean): void;
  setQueueCapacity(capacity: { readonly maxBytes?: number; readonly maxPackets?: number }): void;
  /** Unplugs for good and frees everything. */
  close(): Promise<void>;
}

function openSerial(path: string): Promise<SerialPort> {
  return new Promise((resolve, reject) => {
    const port = new SerialPort({ path, baudRate: 115_200, autoOpen: false, lock: false });
    port.open((e) => (e ? reject(e) : resolve(port)));
  });
}

function closeSerial(port: SerialPort): Promise<void> {
  return new Promise((resolve) => {
    if (!port.isOpen) return resolve();
    port.close(() => resolve());
  });
}

/** Starts an emulated RNode: creates the pty pair, boots, and resolves once the host path exists. */
export async function startRNodeEmulator(options: RNodeEmulatorOptions): Promise<RNodeEmulator> {
  const log = (options.log ?? silentLogger).child({ emulator: 'rnode', name: options.name });
  const portId = options.id ?? options.name;
  const scheduler = options.air.scheduler ?? createRealtimeScheduler();
  const random = createSeededRandom(options.seed ?? 1);
  const platform = options.platform ?? PLATFORM.ESP32;
  const hasStatus = platform === PLATFORM.ESP32 || platform === PLATFORM.NRF52;
  const announcesBoot = hasStatus;
  const statusFrames = options.statusFrames ?? hasStatus;
  const chip = options.chip ?? 'sx1262';
  const maxTxp = options.maxTxPowerDbm ?? CHIP_MAX_TXP[chip];
  const bootDelayMs = options.bootDelayMs ?? 20;
  const replyDelayMs = options.replyDelayMs ?? 0;
  const firmware = options.firmware ?? { major: 1, minor: 0x56 };
  const region = options.region ?? 'ANY';
  let queueMaxBytes = options.queueMaxBytes ?? 6144;
  let queueMaxPackets = options.queueMaxPackets ?? 200;

  const handlers = new Set<(e: RNodeEmulatorEvent) => void>();
  const emit = (e: RNodeEmulatorEvent) => {
    for (const h of handlers) h(e);
  };
  const received: HostMessage[] = [];

  // ---- device state (lost on power-off and reset) ----
  let pty: PtyPair | undefined;
  let serial: SerialPort | undefined;
  let plugged = false;
  let booted = false;
  let responsive = true;
  let closed = false;
  let generation = 0; // bumps on every power cycle/reset; stale timers and loops check it
  let decoder: KissDecoder = createKissDecoder();
  let radioOn = false;
  let freqHz = 0;
  let bandwidthHz = 0;
  let txp = 0xff;
  let sf = 0;
  let cr = 5;
  let implicitLength = 0;
  let promiscuous = false;
  let stAlock = 0;
  let ltAlock = 0;
  let queue: Uint8Array[] = [];
  let queuedBytes = 0;
  let txLoopRunning = false;
  let airPort: AirPort | undefined;
  let splitSeq: number | undefined;
  let splitBuf: Uint8Array | undefined;
  const ownTx: { startMs: number; airtimeMs: number }[] = [];
  let statusTimer: NodeJS.Timeout | undefined;
  let slowLink: { chunkBytes: number; delayMs: number } | undefined;
  let writeChain: Promise<void> = Promise.resolve();
  const counters = { dropped: 0, tx: 0, rx: 0, bad: 0, boots: 0 };

  const sleepReal = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
  const sleepAir = (ms: number) => new Promise<void>((r) => scheduler.setTimer(ms, r));

  function writeRaw(bytes: Uint8Array, gen = generation): Promise<void> {
    const port = serial;
    writeChain = writeChain.then(async () => {
      if (!port?.isOpen || gen !== generation) return;
      const link = slowLink; // the setting in force when this write started
      if (!link) {
        port.write(Buffer.from(bytes));
        return;
      }
      for (let at = 0; at < bytes.length; at += link.chunkBytes) {
        if (!port.isOpen || gen !== generation) return;
        port.write(Buffer.from(bytes.subarray(at, at + link.chunkBytes)));
        await sleepReal(link.delayMs);
      }
    });
    return writeChain;
  }

  function reply(m: DeviceMessage): Promise<void> {
    const f = encodeDeviceMessage(m);
    const bytes = encodeKissFrame(f.command, f.data);
    const gen = generation;
    if (replyDelayMs > 0) return sleepReal(replyDelayMs).then(() => writeRaw(bytes, gen));
    return writeRaw(bytes, gen);
  }

  function params(): RadioParams {
    const m = { spreadingFactor: sf, bandwidthHz, codingRate: cr };
    return {
      freqHz,
      bandwidthHz,
      spreadingFactor: sf,
      codingRate: cr,
      txPowerDbm: txp,
      preambleSymbols: rnodePreambleSymbols(m),
      region,
    };
  }

  function snapBandwidth(hz: number): number {
    const steps = chip === 'sx1280' ? BANDWIDTH_STEPS_SX1280_HZ : BANDWIDTH_STEPS_HZ;
    return steps.find((s) => hz <= s) ?? steps[steps.length - 1]!;
  }

  function usagePct(windowMs: number): number {
    const now = scheduler.nowMs();
    let sum = 0;
    for (const t of ownTx) {
      const s = Math.max(t.startMs, now - windowMs);
      const e = Math.min(t.startMs + t.airtimeMs, now);
      if (e > s) sum += e - s;
    }
    return (sum / windowMs) * 100;
  }

  function channelStats(): DeviceMessage {
    const noise = Math.round(-174 + 10 * Math.log10(bandwidthHz || 125_000) + 6);
    const clampPct = (v: number) => Math.min(100, Math.round(v * 100) / 100);
    const st = clampPct(usagePct(SHORT_TERM_WINDOW_MS));
    const lt = clampPct(usagePct(LONG_TERM_WINDOW_MS));
    return {
      kind: 'channelStats',
      airtimeShortPct: st,
      airtimeLongPct: lt,
      channelLoadShortPct: st,
      channelLoadLongPct: lt,
      currentRssiDbm: Math.max(-157, noise),
      noiseFloorDbm: Math.max(-157, noise),
      interferenceDbm: null,
    };
  }

  function phyParams(): DeviceMessage {
    const t = rnodePhyTimings({ spreadingFactor: sf, bandwidthHz, codingRate: cr });
    const u16 = (v: number) => Math.min(0xffff, Math.max(0, Math.floor(v)));
    return {
      kind: 'phyParams',
      symbolTimeUs: u16(t.symbolTimeMs * 1000),
      symbolRateBaud: u16(t.symbolRateBaud),
      preambleSymbols: u16(t.preambleSymbols),
      preambleMs: u16(t.preambleTimeMs),
      csmaSlotMs: u16(t.csmaSlotMs),
      difsMs: u16(t.difsMs),
    };
  }

  function startRadio(): boolean {
    const locked = freqHz === 0 || bandwidthHz === 0 || txp === 0xff || sf === 0;
    if (locked) return false;
    if (radioOn) return true;
    // Online, the firmware reads back what the modem actually uses.
    bandwidthHz = snapBandwidth(bandwidthHz);
    freqHz = Math.round(Math.round(freqHz / PLL_STEP_HZ) * PLL_STEP_HZ);
    try {
      airPort = options.air.attach({
        id: portId,
        network: 'rnode',
        ...(options.position ? { position: options.position } : {}),
        params,
      });
    } catch (e) {
      // Like a modem that fails to start: the firmware reports ERROR_INITRADIO.
      log.error('rnode_emulator.attach_failed', { error: e });
      void reply({
        kind: 'error',
        code: RNODE_ERROR.INITRADIO,
        error: new RadioError('RNODE_INIT_RADIO', 'attach failed'),
      });
      return false;
    }
    radioOn = true;
    airPort.onReceive(onAir);
    emit({ type: 'radio', on: true });
    if (statusFrames) void reply(phyParams());
    if (options.statusIntervalMs && statusFrames) {
      const gen = generation;
      const tick = () => {
        if (gen !== generation || !radioOn) return;
        void reply(channelStats());
        statusTimer = setTimeout(tick, options.statusIntervalMs);
      };
      statusTimer = setTimeout(tick, options.statusIntervalMs);
    }
    kickTx();
    return true;
  }

  function stopRadio(): void {
    if (statusTimer) clearTimeout(statusTimer);
    statusTimer = undefined;
    if (!radioOn) return;
    radioOn = false;
    airPort?.detach();
    airPort = undefined;
    splitSeq = undefined;
    emit({ type: 'radio', on: false });
  }

  function powerDown(): void {
    generation++;
    stopRadio();
    booted = false;
    decoder = createKissDecoder();
    freqHz = 0;
    bandwidthHz = 0;
    txp = 0xff;
    sf = 0;
    cr = 5;
    implicitLength = 0;
    promiscuous = false;
    stAlock = 0;
    ltAlock = 0;
    queue = [];
    queuedBytes = 0;
  }

  function boot(): void {
    const gen = generation;
    setTimeout(() => {
      if (gen !== generation || !plugged) return;
      booted = true;
      counters.boots++;
      decoder = createKissDecoder();
      emit({ type: 'booted' });
      log.debug('rnode_emulator.booted');
      if (announcesBoot) void reply({ kind: 'reset' });
    }, bootDelayMs);
  }

  function onAir(rx: AirReception): void {
    if (!radioOn || !booted || !responsive) return;
    const frame = rx.frame;
    if (frame.length < 1) return;
    let packet: Uint8Array | undefined;
    if (promiscuous) packet = frame;
    else {
      const header = frame[0]!;
      const seq = header >> 4;
      const body = frame.subarray(1);
      if (header & 0x01) {
        if (splitSeq !== undefined && splitSeq === seq && splitBuf) {
          packet = Uint8Array.of(...splitBuf, ...body);
          splitSeq = undefined;
          splitBuf = undefined;
        } else {
          splitSeq = seq;
          splitBuf = Uint8Array.from(body);
        }
      } else {
        splitSeq = undefined;
        splitBuf = undefined;
        packet = Uint8Array.from(body);
      }
    }
    if (!packet || packet.length === 0) return;
    counters.rx++;
    emit({ type: 'rx', bytes: packet.length });
    const rssi = Math.max(-157, Math.min(98, Math.round(rx.rssiDbm)));
    const snr = Math.max(-32, Math.min(31.75, Math.round(rx.snrDb * 4) / 4));
    void reply({ kind: 'rssi', dbm: rssi });
    void reply({ kind: 'snr', db: snr });
    void reply({ kind: 'data', data: packet.subarray(0, 508) });
  }

  function kickTx(): void {
    if (txLoopRunning || !radioOn || queue.length === 0) return;
    txLoopRunning = true;
    void txLoop(generation).finally(() => {
      txLoopRunning = false;
      if (radioOn && queue.length > 0) kickTx();
    });
  }

  function locked(): boolean {
    return (
      (stAlock > 0 && usagePct(SHORT_TERM_WINDOW_MS) >= stAlock) ||
      (ltAlock > 0 && usagePct(LONG_TERM_WINDOW_MS) >= ltAlock)
    );
  }

  async function txLoop(gen: number): Promise<void> {
    while (gen === generation && radioOn && queue.length > 0) {
      // Airtime locks hold the queue; they never drop.
      while (locked()) {
        await sleepAir(250);
        if (gen !== generation || !radioOn) return;
      }
      if (options.csma) {
        const t = rnodePhyTimings({ spreadingFactor: sf, bandwidthHz, codingRate: cr });
        await sleepAir(t.difsMs + Math.floor(random() * 16) * t.csmaSlotMs);
        if (gen !== generation || !radioOn) return;
      }
      const packet = queue[0]!;
      const header = (Math.floor(random() * 16) << 4) | (packet.length > RNODE_SINGLE_FRAME_PAYLOAD_BYTES ? 1 : 0);
      const parts =
        packet.length > RNODE_SINGLE_FRAME_PAYLOAD_BYTES
          ? [packet.subarray(0, RNODE_SINGLE_FRAME_PAYLOAD_BYTES), packet.subarray(RNODE_SINGLE_FRAME_PAYLOAD_BYTES)]
          : [packet];
      for (const part of parts) {
        for (;;) {
          const port = airPort;
          if (!port || gen !== generation) return;
          const startMs = scheduler.nowMs();
          const r = await port.transmit(Uint8Array.of(header, ...part));
          if (r.ok) {
            ownTx.push({ startMs, airtimeMs: r.airtimeMs });
            while (
              ownTx.length > 0 &&
              ownTx[0]!.startMs + ownTx[0]!.airtimeMs < scheduler.nowMs() - LONG_TERM_WINDOW_MS
            ) {
              ownTx.shift();
            }
            emit({ type: 'tx', bytes: part.length + 1, airtimeMs: r.airtimeMs });
            break;
          }
          if (r.reason === 'detached') return;
          emit({ type: 'tx-refused', reason: r.reason });
          if (r.retryAfterMs === undefined) {
            // The air (the regulator, in effect) will never allow this frame: a real radio would break the law.
            log.warning('rnode_emulator.tx_refused', { reason: r.reason });
            queue.shift();
            queuedBytes -= packet.length;
            break;
          }
          await sleepAir(r.retryAfterMs);
        }
        if (queue[0] !== packet) break;
      }
      if (queue[0] === packet) {
        queue.shift();
        queuedBytes -= packet.length;
        counters.tx++;
        if (statusFrames) void reply(channelStats());
      }
    }
  }

  function handleHost(m: HostMessage): void {
    received.push(m);
    if (received.length > 1000) received.shift();
    emit({ type: 'host', message: m });
    switch (m.kind) {
      case 'detect':
        void reply({ kind: 'detect', ok: true });
        return;
      case 'query':
        switch (m.what) {
          case 'firmwareVersion':
            void reply({ kind: 'firmwareVersion', major: firmware.major, minor: firmware.minor });
            return;
          case 'platform':
            void reply({ kind: 'platform', platform });
            return;
          case 'mcu':
            void reply({
              kind: 'mcu',
              mcu:
                options.mcu ??
                (platform === PLATFORM.ESP32 ? MCU.ESP32 : platform === PLATFORM.NRF52 ? MCU.NRF52 : MCU.ATMEGA1284P),
            });
            return;
          case 'board':
            void reply({ kind: 'board', model: options.board ?? 0x40 });
            return;
          case 'random':
            void reply({ kind: 'random', value: Math.floor(random() * 255) });
            return;
          // Firmware 1.86 declares these counters but never increments them.
          case 'statRx':
            void reply({ kind: 'statRx', count: 0 });
            return;
          case 'statTx':
            void reply({ kind: 'statTx', count: 0 });
            return;
          case 'statRssi':
            void reply({ kind: 'rssi', dbm: Math.round(-174 + 10 * Math.log10(bandwidthHz || 125_000) + 6) });
            return;
        }
        return;
      case 'frequency':
        if (m.hz !== null) {
          freqHz = m.hz;
          if (radioOn) freqHz = Math.round(Math.round(freqHz / PLL_STEP_HZ) * PLL_STEP_HZ);
        }
        void reply({ kind: 'frequency', hz: freqHz });
        return;
      case 'bandwidth':
        if (m.hz !== null) {
          bandwidthHz = radioOn ? snapBandwidth(m.hz) : m.hz;
          if (radioOn && statusFrames) void reply(phyParams());
        }
        void reply({ kind: 'bandwidth', hz: bandwidthHz });
        return;
      case 'txPower':
        if (m.dbm !== null) txp = Math.min(m.dbm, maxTxp);
        void reply({ kind: 'txPower', dbm: txp === 0xff ? -1 : txp });
        return;
      case 'spreadingFactor':
        if (m.sf !== null) {
          sf = Math.max(5, Math.min(12, m.sf));
          if (radioOn && statusFrames) void reply(phyParams());
        }
        void reply({ kind: 'spreadingFactor', sf });
        return;
      case 'codingRate':
        if (m.cr !== null) {
          cr = Math.max(5, Math.min(8, m.cr));
          if (radioOn && statusFrames) void reply(phyParams());
        }
        void reply({ kind: 'codingRate', cr });
        return;
      case 'radioState':
        if (m.state === 'on') startRadio();
        else if (m.state === 'off') stopRadio();
        void reply({ kind: 'radioState', on: radioOn });
        return;
      case 'radioLock':
        void reply({ kind: 'radioLock', locked: freqHz === 0 || bandwidthHz === 0 || txp === 0xff || sf === 0 });
        return;
      case 'implicitLength':
        implicitLength = m.length;
        void reply({ kind: 'implicitLength', length: implicitLength });
        return;
      case 'stAlock':
        stAlock = m.percent >= 100 ? 0 : m.percent;
        void reply({ kind: 'stAlock', percent: stAlock });
        return;
      case 'ltAlock':
        ltAlock = m.percent >= 100 ? 0 : m.percent;
        void reply({ kind: 'ltAlock', percent: ltAlock });
        return;
      case 'promiscuous':
        promiscuous = m.on;
        void reply({ kind: 'promiscuous', on: promiscuous });
        return;
      case 'ready':
        void reply({ kind: 'ready', ready: !(queue.length >= queueMaxPackets || queuedBytes >= queueMaxBytes) });
        return;
      case 'reset':
        void api.reboot();
        return;
      case 'framebufferExt':
        if (hasStatus)
          void reply({ kind: 'other', command: CMD.FB_EXT, data: Uint8Array.of(m.state === 'enable' ? 1 : 0) });
        return;
      case 'data':
        if (!radioOn) {
          // RADIO_PROTOCOLS §6.1.5: data for a radio that is off fails at once.
          emit({ type: 'error-sent', code: RNODE_ERROR.TXFAILED });
          void reply({
            kind: 'error',
            code: RNODE_ERROR.TXFAILED,
            error: new RadioError('RNODE_TX_FAILED', 'radio off'),
          });
          return;
        }
        if (queue.length >= queueMaxPackets || queuedBytes + m.data.length > queueMaxBytes) {
          counters.dropped++;
          emit({ type: 'queue-drop', bytes: m.data.length });
          return;
        }
        queue.push(Uint8Array.from(m.data));
        queuedBytes += m.data.length;
        kickTx();
        return;
      case 'leave':
      case 'blink':
      case 'other':
        return;
    }
  }

  function onSerialData(chunk: Buffer): void {
    if (!booted || !responsive) return;
    for (const ev of decoder.push(chunk)) {
      if (ev.type === 'violation') {
        counters.bad++;
        emit({ type: 'host-violation', code: ev.error.code });
        continue;
      }
      try {
        handleHost(decodeHostMessage(ev.frame));
      } catch (e) {
        counters.bad++;
        emit({ type: 'host-violation', code: e instanceof RadioError ? e.code : 'UNKNOWN' });
      }
    }
  }

  async function plugIn(): Promise<void> {
    const pair = await openPtyPair({ dir: options.dir, name: options.name });
    let port: SerialPort;
    try {
      port = await openSerial(pair.devicePath);
    } catch (e) {
      await pair.close();
      throw new RadioError('EMULATOR_FAILED', `cannot open the emulator's end of ${pair.hostPath}`, { cause: e });
    }
    pty = pair;
    serial = port;
    port.on('data', onSerialData);
    port.on('error', (e) => log.debug('rnode_emulator.serial_error', { error: e }));
    plugged = true;
    emit({ type: 'plugged', plugged: true });
    boot();
  }

  async function pullOut(): Promise<void> {
    if (!plugged) return;
    plugged = false;
    powerDown();
    const port = serial;
    const pair = pty;
    serial = undefined;
    pty = undefined;
    if (port) {
      port.removeAllListeners('data');
      await closeSerial(port);
    }
    await pair?.close();
    emit({ type: 'plugged', plugged: false });
  }

  const api: RNodeEmulator = {
    hostPath: `${options.dir}/${options.name}`,
    portId,
    state: () => ({
      plugged,
      booted,
      radioOn,
      freqHz,
      bandwidthHz,
      txPowerDbm: txp,
      spreadingFactor: sf,
      codingRate: cr,
      stAlockPercent: stAlock,
      ltAlockPercent: ltAlock,
      queuedPackets: queue.length,
      queuedBytes,
      droppedQueueFull: counters.dropped,
      txPackets: counters.tx,
      rxPackets: counters.rx,
      badHostFrames: counters.bad,
      boots: counters.boots,
    }),
    onEvent(handler) {
      handlers.add(handler);
      return () => handlers.delete(handler);
    },
    hostMessages: () => [...received],
    unplug: pullOut,
    async replug() {
      if (closed) throw new RadioError('EMULATOR_FAILED', 'emulator is closed');
      if (plugged) return;
      await plugIn();
    },
    async reboot() {
      if (!plugged) return;
      powerDown();
      boot();
    },
    injectGarbage: (bytes) => writeRaw(bytes),
    sendFrame: (command, data) => writeRaw(encodeKissFrame(command, data)),
    setSlowLink(link) {
      slowLink = link ? { chunkBytes: Math.max(1, link.chunkBytes), delayMs: Math.max(0, link.delayMs) } : undefined;
    },
    setResponsive(value) {
      responsive = value;
      if (value) decoder = createKissDecoder();
    },
    setQueueCapacity(capacity) {
      if (capacity.maxBytes !== undefined) queueMaxBytes = capacity.maxBytes;
      if (capacity.maxPackets !== undefined) queueMaxPackets = capacity.maxPackets;
    },
    async close() {
      closed = true;
      await pullOut();
      handlers.clear();
    },
  };

  await plugIn();
  return api;
}
