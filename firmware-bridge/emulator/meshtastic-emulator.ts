// A faithful Meshtastic firmware emulator (RADIO_PROTOCOLS §6.2) on the device end of a socat pty
// pair: serial console text until the host speaks, the stream API with the firmware's config order,
// the phone-packet rules (ids, duplicates, size limits, TX queue, queueStatus), reliable delivery with
// on-air ACKs, flooding and retransmissions through the simulated air, the 15-minute session timeout,
// silent (HEAD) and announced (old firmware) reboots, and fault injection.
//
// Two clocks: the host side (session timeout, slow link, boot delay) runs on `clock` and real timers,
// as a USB device does; the radio side (airtime, ACK waits, relay delays) runs on the air's scheduler,
// so a time-scaled air speeds up radio work without shortening the host's 15-minute timeout.

import { SerialPort } from 'serialport';
import { type Clock, systemClock } from '../../protocol/clock.ts';
import type { Logger } from '../../protocol/log.ts';
import { silentLogger } from '../../protocol/log.ts';
import { symbolTimeMs } from '../airtime.ts';
import { MeshtasticError } from '../meshtastic/errors.ts';
import {
  meshtasticAirtimeMs,
  PresetNumber,
  primaryChannelName,
  RegionNumber,
  radioParamsFromLoRaConfig,
} from '../meshtastic/lora-params.ts';
import { channelHash, decodeOnAirPacket, encodeOnAirPacket, type OnAirHeader } from '../meshtastic/on-air.ts';
import {
  BROADCAST_NUM,
  ChannelRole,
  createChannel,
  createChannelSettings,
  createData,
  createDeviceMetadata,
  createLogRecord,
  createLoRaConfig,
  createMeshPacket,
  createMyNodeInfo,
  createNodeInfo,
  createQueueStatus,
  createUser,
  DATA_ENCODED_MAX_BYTES,
  DATA_PAYLOAD_MAX_BYTES,
  type Data,
  decodeData,
  decodeRouting,
  decodeToRadio,
  encodeData,
  encodeFromRadio,
  encodeRouting,
  type FromRadio,
  type FromRadioPayload,
  LogLevel,
  type LoRaConfig,
  type MeshPacket,
  NONCE_ONLY_CONFIG,
  NONCE_ONLY_NODES,
  type NodeInfo,
  nodeIdOf,
  PortNum,
  Priority,
  RoutingError,
  type ToRadio,
} from '../meshtastic/protobuf.ts';
import { createStreamDecoder, encodeStreamFrame, type StreamDecoder } from '../meshtastic/stream-framer.ts';
import type { RadioParams } from '../radio.ts';
import type { Air, AirPort, AirReception } from './air.ts';
import { type AirScheduler, createRealtimeScheduler } from './air-scheduler.ts';
import { openPtyPair, type PtyPair } from './pty.ts';
import { createSeededRandom } from './seeded-random.ts';
import type { SimulatedAir } from './simulated-air.ts';

/** SERIAL_CONNECTION_TIMEOUT [MT-FW src/SerialConsole.cpp]. */
export const MESHTASTIC_SESSION_TIMEOUT_MS = 15 * 60_000;
/** MAX_TX_QUEUE [MT-FW src/mesh/RadioInterface.h]. */
const TX_QUEUE_MAX = 16;
/** ERRNO_UNKNOWN: what queueStatus.res says when the TX queue refused a packet [MT-FW src/mesh/MeshTypes.h]. */
const ERRNO_UNKNOWN = 32;
/** Packets the firmware keeps for a phone that is not reading (MAX_RX_TOPHONE). */
const TO_PHONE_MAX = 32;
/** Phone packet ids remembered to drop duplicates. */
const RECENT_PHONE_IDS = 20;
/** (from, id) pairs remembered from the air to drop repeats. */
const RECENT_AIR_IDS = 200;
/** Data.payload in a ToRadio above this fails nanopb decoding: the firmware ignores the frame. */
const TEXT_RATE_LIMIT_MS = 2_000;

export type RebootStyle = 'silent' | 'rebooted-frame';

export interface MeshtasticEmulatorOptions {
  /** Directory for the pty symlinks; the host opens `<dir>/<name>`. */
  readonly dir: string;
  readonly name: string;
  /** The air to transmit into; its scheduler (if any) times airtime, ACK waits and relays. */
  readonly air: Air & { readonly scheduler?: AirScheduler };
  /** This radio's node number (not 0, not broadcast). */
  readonly nodeNum: number;
  /** Air port id (default: name). */
  readonly id?: string;
  readonly position?: { readonly xM: number; readonly yM: number };
  /** Host-side time: session timeout, rx_time, rate limits (default the system clock). */
  readonly clock?: Clock;
  readonly longName?: string;
  readonly shortName?: string;
  /** HardwareModel (default 43, HELTEC_V3). */
  readonly hwModel?: number;
  readonly firmwareVersion?: string;
  /** LoRa config (default EU_868, LONG_FAST preset, hop limit 3, TX on). */
  readonly lora?: Partial<LoRaConfig>;
  /** Primary channel name ('' = the preset's default channel) and key (default the 1-byte default key). */
  readonly channelName?: string;
  readonly psk?: Uint8Array;
  /** Other nodes in the node DB, reported after the own node. */
  readonly knownNodes?: readonly NodeInfo[];
  /** Serial console lines printed at boot while no host speaks the API. */
  readonly bootLog?: readonly string[];
  /** Put a stray 0x94 byte (UTF-8 "Ô" = C3 94) into the boot log and console lines (M1 regression). */
  readonly bootLogStrayByte?: boolean;
  /** Print a console line this often (host ms) while the host has not spoken the API, as firmware logs do. */
  readonly consoleLineIntervalMs?: number;
  /** HEAD firmware reboots silently; old firmware announces `rebooted` (default 'silent'). */
  readonly rebootStyle?: RebootStyle;
  /** API session closes after this long without any ToRadio (default 15 min). */
  readonly sessionTimeoutMs?: number;
  /** How often the session timeout is checked, host ms (default 1000). */
  readonly sessionCheckIntervalMs?: number;
  /** Host input during this long after power-on or reboot is lost (default 0). */
  readonly bootDelayMs?: number;
  /** TX queue length (default 16). */
  readonly txQueueMax?: number;
  /** Transmissions of a reliable packet before MAX_RETRANSMIT (default 3). */
  readonly maxTransmissions?: number;
  /** Air ms to wait for an ACK before retransmitting (default 3 × airtime + 1.5 s). */
  readonly ackTimeoutMs?: number;
  /** debug_log_api_enabled: send a log_record frame this often (host ms) while a session is open. */
  readonly apiLogIntervalMs?: number;
  /**
   * Listen before talk: wait for the channel to be clear (as far as the air's trace shows) plus a random
   * number of slots, like the firmware's CAD and contention window (default true).
   */
  readonly csma?: boolean;
  /** Seed for packet ids and relay delays (default: the node number). */
  readonly seed?: number;
  readonly log?: Logger;
}

export type MeshtasticEmulatorEvent =
  | { readonly type: 'plugged'; readonly plugged: boolean }
  | { readonly type: 'booted'; readonly rebootCount: number }
  | { readonly type: 'to-radio'; readonly message: ToRadio }
  | { readonly type: 'host-violation'; readonly reason: 'undecodable' | 'oversize-payload' | 'duplicate-id' }
  | {
      readonly type: 'session';
      readonly open: boolean;
      readonly reason: 'want-config' | 'disconnect' | 'timeout' | 'reboot';
    }
  | { readonly type: 'config-sent'; readonly nonce: number; readonly frames: number }
  | { readonly type: 'tx'; readonly id: number; readonly bytes: number; readonly airtimeMs: number }
  | { readonly type: 'tx-refused'; readonly id: number; readonly reason: string }
  | { readonly type: 'rx'; readonly from: number; readonly id: number; readonly bytes: number }
  | { readonly type: 'routing-to-host'; readonly requestId: number; readonly errorReason: number }
  | { readonly type: 'queue-full'; readonly id: number };

export interface MeshtasticEmulatorState {
  readonly plugged: boolean;
  readonly booting: boolean;
  /** The host has spoken the API since boot: console text is off, frames are on. */
  readonly usingProtobufs: boolean;
  readonly session: 'none' | 'config' | 'packets';
  readonly rebootCount: number;
  readonly txQueued: number;
  readonly toPhoneQueued: number;
  readonly heartbeats: number;
  readonly packetsFromHost: number;
  readonly packetsToHost: number;
  readonly transmissions: number;
  readonly duplicatesDropped: number;
  readonly oversizeIgnored: number;
  readonly undecodable: number;
  readonly queueFullRefusals: number;
}

export interface MeshtasticEmulator {
  /** The path a driver opens (a stable symlink, like /dev/serial/by-id/…). */
  readonly hostPath: string;
  readonly portId: string;
  readonly nodeNum: number;
  /** The modulation this radio uses on air. */
  readonly params: RadioParams;
  state(): MeshtasticEmulatorState;
  onEvent(handler: (e: MeshtasticEmulatorEvent) => void): () => void;
  /** Resolves with the next event matching `predicate`. */
  nextEvent<T extends MeshtasticEmulatorEvent>(predicate: (e: MeshtasticEmulatorEvent) => e is T): Promise<T>;
  nextEvent(predicate: (e: MeshtasticEmulatorEvent) => boolean): Promise<MeshtasticEmulatorEvent>;
  /** Pulls the USB cable: the pty disappears, the radio loses power and state. */
  unplug(): Promise<void>;
  /** Plugs it back in: a new pty at the same host path; the radio boots. */
  replug(): Promise<void>;
  /** Resets the MCU behind a still-open USB-UART bridge (M10); `style` overrides the option. */
  reboot(style?: RebootStyle): void;
  /** Writes raw bytes to the host (line noise, bootloader text). */
  injectGarbage(bytes: Uint8Array): Promise<void>;
  /** Writes one framed body to the host as is (malformed protobufs, foreign frames). */
  sendRawFrame(body: Uint8Array): Promise<void>;
  /** The next `count` frames (of kind `only`, if given) to the host carry a body that does not decode. */
  corruptNextFrames(count: number, only?: FromRadioPayload['kind']): void;
  /** The next frame (of kind `only`, if given) to the host has a log_record frame written into its middle (M11). */
  tearNextFrame(only?: FromRadioPayload['kind']): void;
  /** Pretends the TX queue is full (queueStatus res 32, free 0) until set false. */
  setQueueFull(full: boolean): void;
  /** Slow serial link: output leaves in `chunkBytes` pieces `delayMs` apart (undefined: full speed). */
  setSlowLink(link: { readonly chunkBytes: number; readonly delayMs: number } | undefined): void;
  /** Unplugs for good and frees everything. */
  close(): Promise<void>;
}

function openSerial(path: string): Promise<SerialPort> {
  return new Promise((resolve, reject) => {
    const port = new SerialPort({ path, baudRate: 115_200, autoOpen: false, lock: false, hupcl: false });
    port.open((e) => (e ? reject(e) : resolve(port)));
  });
}

function closeSerial(port: SerialPort): Promise<void> {
  return new Promise((resolve) => {
    if (!port.isOpen) return resolve();
    port.close(() => resolve());
  });
}

interface TxItem {
  readonly header: OnAirHeader;
  readonly data: Uint8Array;
  readonly priority: number;
  /** Originated here with want_ack: wait for an ACK (direct) or a rebroadcast (implicit, broadcast). */
  readonly reliable: boolean;
  /** Transmissions so far. */
  attempts: number;
}

interface PendingAck {
  readonly item: TxItem;
  cancel: () => void;
}

const DEFAULT_BOOT_LOG = [
  '',
  '//\\ E S H T /\\ S T / C',
  '',
  'INFO  | ??:??:?? 0 Booting…',
  'INFO  | ??:??:?? 1 Power output set to 27 dBm',
  'INFO  | ??:??:?? 1 [RadioIf] Radio freq=869.525, config.lora.frequency_offset=0.000',
  'DEBUG | ??:??:?? 2 [Router] No packets for the phone yet',
];

/** Starts an emulated Meshtastic radio: creates the pty pair, boots, resolves once the host path exists. */
export async function startMeshtasticEmulator(options: MeshtasticEmulatorOptions): Promise<MeshtasticEmulator> {
  const nodeNum = options.nodeNum;
  if (!Number.isInteger(nodeNum) || nodeNum <= 0 || nodeNum >= BROADCAST_NUM) {
    throw new MeshtasticError('MT_INVALID_OPTION', `node number must be 1..0xfffffffe, got ${nodeNum}`);
  }
  const log = (options.log ?? silentLogger).child({ emulator: 'meshtastic', name: options.name });
  const clock = options.clock ?? systemClock;
  const portId = options.id ?? options.name;
  const scheduler = options.air.scheduler ?? createRealtimeScheduler();
  const random = createSeededRandom(options.seed ?? nodeNum);
  const sessionTimeoutMs = options.sessionTimeoutMs ?? MESHTASTIC_SESSION_TIMEOUT_MS;
  const txQueueMax = options.txQueueMax ?? TX_QUEUE_MAX;
  const maxTransmissions = options.maxTransmissions ?? 3;
  const rebootStyle = options.rebootStyle ?? 'silent';
  const lora = createLoRaConfig({
    usePreset: true,
    modemPreset: PresetNumber.LONG_FAST,
    region: RegionNumber.EU_868,
    hopLimit: 3,
    txEnabled: true,
    ...options.lora,
  });
  const channelName = options.channelName ?? '';
  const psk = options.psk ?? new Uint8Array([1]);
  const params = radioParamsFromLoRaConfig(lora, channelName);
  const myHash = channelHash(primaryChannelName(lora, channelName), psk);
  const longName = options.longName ?? `Meshtastic ${nodeIdOf(nodeNum).slice(-4)}`;
  const shortName = options.shortName ?? nodeIdOf(nodeNum).slice(-4);
  const firmwareVersion = options.firmwareVersion ?? '2.7.15.567b8ea';
  const hwModel = options.hwModel ?? 43;

  const handlers = new Set<(e: MeshtasticEmulatorEvent) => void>();
  const emit = (e: MeshtasticEmulatorEvent) => {
    for (const h of [...handlers]) h(e);
  };

  // Host side (USB serial).
  let pty: PtyPair | undefined;
  let serial: SerialPort | undefined;
  let plugged = false;
  let closed = false;
  let booting = false;
  let bootTimer: NodeJS.Timeout | undefined;
  let slowLink: { chunkBytes: number; delayMs: number } | undefined;
  let writeChain: Promise<void> = Promise.resolve();
  let decoder: StreamDecoder = createStreamDecoder();
  let corruptFrames = 0;
  let corruptOnly: FromRadioPayload['kind'] | undefined;
  let tearNext = false;
  let tearOnly: FromRadioPayload['kind'] | undefined;
  let queueFullFault = false;

  // Firmware state (lost on reboot and power loss).
  let usingProtobufs = false;
  let session: 'none' | 'config' | 'packets' = 'none';
  let lastContactMs = clock.monotonicMs();
  let rebootCount = 0;
  let recentPhoneIds: number[] = [];
  let lastTextSendMs: number | undefined;
  let toPhone: FromRadioPayload[] = [];
  let txQueue: TxItem[] = [];
  let transmitting = false;
  let pendingAcks = new Map<number, PendingAck>();
  let recentAir: string[] = [];
  let lastReportedFree = txQueueMax;
  let packetCounter = Math.floor(random() * 1024);
  let apiLogTimer: NodeJS.Timeout | undefined;
  const counters = {
    heartbeats: 0,
    packetsFromHost: 0,
    packetsToHost: 0,
    transmissions: 0,
    duplicatesDropped: 0,
    oversizeIgnored: 0,
    undecodable: 0,
    queueFullRefusals: 0,
  };

  // Radio side.
  let airPort: AirPort | undefined;
  // Carrier sense from the simulated air's trace: when did the last transmission we heard of end?
  let channelBusyUntilMs = 0;
  const offTrace =
    options.csma === false
      ? undefined
      : (options.air as { onTrace?: SimulatedAir['onTrace'] }).onTrace?.((e) => {
          if (e.type === 'tx' && e.portId !== portId)
            channelBusyUntilMs = Math.max(channelBusyUntilMs, e.atMs + e.airtimeMs);
        });
  /** RadioInterface slot time: about 2.5 symbols (CAD) plus turnaround. */
  const slotMs = 2.5 * symbolTimeMs(params.spreadingFactor, params.bandwidthHz) + 0.2;
  const airSleep = (ms: number) => new Promise<void>((r) => scheduler.setTimer(ms, r));

  /** Waits until the channel looks clear, then a random contention window (2^cw slots). */
  async function channelAccess(priority: number): Promise<void> {
    if (options.csma === false) return;
    const cw = priority >= Priority.ACK ? 3 : 4;
    for (let i = 0; i < 16; i++) {
      const busyFor = channelBusyUntilMs - scheduler.nowMs();
      if (busyFor > 0) await airSleep(busyFor);
      await airSleep(Math.floor(random() * 2 ** cw) * slotMs);
      if (channelBusyUntilMs <= scheduler.nowMs()) return;
    }
  }

  const nowSecs = () => Math.floor(clock.nowMs() / 1000);

  // ------------------------------------------------------------------ serial output

  function writeRaw(bytes: Uint8Array): Promise<void> {
    const target = serial;
    if (!plugged || !target) return Promise.resolve();
    const pieces: Uint8Array[] = [];
    if (slowLink) {
      for (let i = 0; i < bytes.length; i += slowLink.chunkBytes)
        pieces.push(bytes.subarray(i, i + slowLink.chunkBytes));
    } else pieces.push(bytes);
    const delayMs = slowLink?.delayMs ?? 0;
    writeChain = writeChain.then(async () => {
      for (const [i, piece] of pieces.entries()) {
        if (!plugged || serial !== target) return;
        if (i > 0 && delayMs > 0) await new Promise((r) => setTimeout(r, delayMs));
        await new Promise<void>((resolve) => {
          target.write(Buffer.from(piece), (e) => {
            // A write to a pty whose other side went away fails; the unplug path handles it.
            if (e) log.debug('emulator write failed', { error: e });
            resolve();
          });
        });
      }
    });
    return writeChain;
  }

  /** StreamAPI::writeFrame: nothing is framed until the host has spoken (canWrite). */
  function writeFrame(m: FromRadio, force = false): void {
    if (!usingProtobufs && !force) return;
    let body = encodeFromRadio(m);
    if (corruptFrames > 0 && (corruptOnly === undefined || corruptOnly === m.payload.kind)) {
      corruptFrames--;
      // Wire type 7 does not exist: the body no longer decodes, its length is unchanged.
      body = Uint8Array.from(body);
      body[0] = 0x0f;
    }
    let frame = encodeStreamFrame(body);
    if (tearNext && frame.length > 6 && (tearOnly === undefined || tearOnly === m.payload.kind)) {
      tearNext = false;
      const logFrame = encodeStreamFrame(
        encodeFromRadio({
          id: 0,
          payload: {
            kind: 'logRecord',
            logRecord: createLogRecord({ message: 'Sending packet', source: 'Router', level: LogLevel.DEBUG }),
          },
        }),
      );
      const cut = 6;
      frame = Uint8Array.from([...frame.subarray(0, cut), ...logFrame, ...frame.subarray(cut)]);
    }
    void writeRaw(frame);
  }

  /** Console output: plain text before the host speaks, log_record frames (if enabled) after. */
  function consoleLine(text: string): void {
    if (usingProtobufs) return;
    void writeRaw(Buffer.from(`${text}\r\n`, 'utf8'));
  }

  // ------------------------------------------------------------------ to the phone

  function deliverToPhone(p: FromRadioPayload): void {
    if (p.kind === 'packet') counters.packetsToHost++;
    if (session === 'packets' && usingProtobufs) {
      writeFrame({ id: 0, payload: p });
      return;
    }
    toPhone.push(p);
    if (toPhone.length > TO_PHONE_MAX) toPhone.shift();
  }

  function flushToPhone(): void {
    const queued = toPhone;
    toPhone = [];
    for (const p of queued) writeFrame({ id: 0, payload: p });
  }

  function queueStatus(res: number, meshPacketId: number): FromRadioPayload {
    const free = queueFullFault ? 0 : Math.max(0, txQueueMax - txQueue.length);
    lastReportedFree = free;
    return {
      kind: 'queueStatus',
      queueStatus: createQueueStatus({ res, free, maxlen: txQueueMax, meshPacketId }),
    };
  }

  /** Router::sendAckNak toward our own phone: a ROUTING_APP packet answering `requestId`. */
  function routingToPhone(errorReason: number, requestId: number, from: number, channel = 0): void {
    emit({ type: 'routing-to-host', requestId, errorReason });
    deliverToPhone({
      kind: 'packet',
      packet: createMeshPacket({
        from,
        to: nodeNum,
        channel,
        id: nextPacketId(),
        rxTime: nowSecs(),
        priority: Priority.ACK,
        payload: {
          kind: 'decoded',
          data: createData({
            portnum: PortNum.ROUTING_APP,
            payload: encodeRouting({ kind: 'error', errorReason }),
            requestId,
          }),
        },
      }),
    });
  }

  // ------------------------------------------------------------------ config download

  function ownNodeInfo(): NodeInfo {
    return createNodeInfo({
      num: nodeNum,
      user: createUser({ id: nodeIdOf(nodeNum), longName, shortName, hwModel }),
      lastHeard: nowSecs(),
    });
  }

  function sendConfig(nonce: number): void {
    const frames: FromRadioPayload[] = [];
    const onlyNodes = nonce === NONCE_ONLY_NODES;
    const onlyConfig = nonce === NONCE_ONLY_CONFIG;
    if (!onlyNodes) {
      frames.push({
        kind: 'myInfo',
        myInfo: createMyNodeInfo({
          myNodeNum: nodeNum,
          rebootCount,
          minAppVersion: 30200,
          deviceId: new Uint8Array(16).fill(nodeNum & 0xff),
          pioEnv: 'heltec-v3',
          nodedbCount: 1 + (options.knownNodes?.length ?? 0),
        }),
      });
      // deviceuiConfig { version: 1 }
      frames.push({ kind: 'skipped', field: 17, raw: new Uint8Array([0x08, 0x01]) });
    }
    frames.push({ kind: 'nodeInfo', nodeInfo: ownNodeInfo() });
    if (!onlyNodes) {
      frames.push({
        kind: 'metadata',
        metadata: createDeviceMetadata({
          firmwareVersion,
          deviceStateVersion: 24,
          canShutdown: true,
          hasBluetooth: true,
          hwModel,
          hasPKC: true,
        }),
      });
      for (let index = 0; index < 8; index++) {
        frames.push({
          kind: 'channel',
          channel:
            index === 0
              ? createChannel({
                  index,
                  role: ChannelRole.PRIMARY,
                  settings: createChannelSettings({ psk, name: channelName }),
                })
              : createChannel({ index, role: ChannelRole.DISABLED }),
        });
      }
      // Config sections in firmware order: device, position, power, network, display, lora, bluetooth, security, sessionkey.
      const security = new Uint8Array([0x28, 0x01]); // SecurityConfig { serial_enabled: true }
      for (const field of [1, 2, 3, 4, 5, 6, 7, 8, 9]) {
        frames.push({
          kind: 'config',
          config:
            field === 6
              ? { kind: 'lora', lora }
              : { kind: 'other', field, raw: field === 8 ? security : new Uint8Array(0) },
        });
      }
      // One moduleConfig per module (mqtt … paxcounter), each empty.
      for (let field = 1; field <= 13; field++) {
        frames.push({ kind: 'skipped', field: 9, raw: new Uint8Array([(field << 3) | 2, 0]) });
      }
    }
    if (!onlyConfig) {
      for (const n of options.knownNodes ?? []) frames.push({ kind: 'nodeInfo', nodeInfo: n });
    }
    if (!onlyNodes) {
      // fileInfo { file_name: "/prefs/config.proto", size_bytes: 120 }
      const name = Buffer.from('/prefs/config.proto');
      frames.push({ kind: 'skipped', field: 15, raw: Uint8Array.from([0x0a, name.length, ...name, 0x10, 120]) });
    }
    frames.push({ kind: 'configCompleteId', configCompleteId: nonce });
    for (const f of frames) writeFrame({ id: 0, payload: f });
    emit({ type: 'config-sent', nonce, frames: frames.length });
  }

  function openSession(nonce: number): void {
    session = 'config';
    emit({ type: 'session', open: true, reason: 'want-config' });
    sendConfig(nonce);
    session = 'packets';
    flushToPhone();
    armApiLog();
  }

  function closeSession(reason: 'disconnect' | 'timeout' | 'reboot'): void {
    if (session === 'none') return;
    session = 'none';
    if (apiLogTimer) clearTimeout(apiLogTimer);
    apiLogTimer = undefined;
    emit({ type: 'session', open: false, reason });
    log.info('api session closed', { reason });
  }

  function armApiLog(): void {
    const every = options.apiLogIntervalMs;
    if (every === undefined || apiLogTimer) return;
    const tick = () => {
      apiLogTimer = undefined;
      if (session !== 'packets' || closed) return;
      writeFrame({
        id: 0,
        payload: {
          kind: 'logRecord',
          logRecord: createLogRecord({
            message: `Radio is idle, ${txQueue.length} queued`,
            time: nowSecs(),
            source: 'RadioIf',
            level: LogLevel.DEBUG,
          }),
        },
      });
      apiLogTimer = setTimeout(tick, every);
    };
    apiLogTimer = setTimeout(tick, every);
  }

  // ------------------------------------------------------------------ host input

  function onHostBytes(chunk: Buffer): void {
    if (booting || !plugged) return;
    for (const ev of decoder.push(new Uint8Array(chunk))) {
      if (ev.kind === 'frame') handleFrame(ev.body);
    }
  }

  function handleFrame(body: Uint8Array): void {
    // SerialConsole::handleToRadio: any complete frame switches the console to protobufs.
    usingProtobufs = true;
    lastContactMs = clock.monotonicMs();
    let msg: ToRadio;
    try {
      msg = decodeToRadio(body);
    } catch {
      // "ignore malformed toradio", as the firmware does.
      counters.undecodable++;
      emit({ type: 'host-violation', reason: 'undecodable' });
      return;
    }
    const p = msg.payload;
    // nanopb enforces max_size on Data.payload: such a ToRadio does not decode at all on the device.
    if (
      p.kind === 'packet' &&
      p.packet.payload.kind === 'decoded' &&
      p.packet.payload.data.payload.length > DATA_PAYLOAD_MAX_BYTES
    ) {
      counters.oversizeIgnored++;
      emit({ type: 'host-violation', reason: 'oversize-payload' });
      return;
    }
    emit({ type: 'to-radio', message: msg });
    switch (p.kind) {
      case 'wantConfigId':
        openSession(p.wantConfigId);
        break;
      case 'disconnect':
        closeSession('disconnect');
        break;
      case 'heartbeat':
        counters.heartbeats++;
        if (p.heartbeat.nonce !== 1) writeFrame({ id: 0, payload: queueStatus(0, 0) });
        break;
      case 'packet':
        handlePhonePacket(p.packet);
        break;
      default:
        break;
    }
  }

  function nextPacketId(): number {
    // Like the firmware: a rolling counter in the low 10 bits, random bits above, never 0.
    packetCounter = (packetCounter + 1) & 0x3ff;
    const id = ((Math.floor(random() * 0x400000) << 10) | packetCounter) >>> 0;
    return id === 0 ? 1 : id;
  }

  function handlePhonePacket(raw: MeshPacket): void {
    counters.packetsFromHost++;
    if (raw.id > 0) {
      if (recentPhoneIds.includes(raw.id)) {
        counters.duplicatesDropped++;
        emit({ type: 'host-violation', reason: 'duplicate-id' });
        return;
      }
      recentPhoneIds.push(raw.id);
      if (recentPhoneIds.length > RECENT_PHONE_IDS) recentPhoneIds.shift();
    }
    const id = raw.id === 0 ? nextPacketId() : raw.id;
    if (raw.payload.kind !== 'decoded') {
      deliverToPhone(queueStatus(0, id));
      routingToPhone(32, id, nodeNum); // BAD_REQUEST: this emulator only sends decoded packets
      return;
    }
    const data = raw.payload.data;
    if (data.portnum === PortNum.TEXT_MESSAGE_APP) {
      const now = clock.monotonicMs();
      if (lastTextSendMs !== undefined && now - lastTextSendMs < TEXT_RATE_LIMIT_MS) {
        deliverToPhone(queueStatus(0, id));
        routingToPhone(RoutingError.RATE_LIMIT_EXCEEDED, id, nodeNum);
        return;
      }
      lastTextSendMs = now;
    }
    const encoded = encodeData(data);
    if (encoded.length > DATA_ENCODED_MAX_BYTES) {
      // Router::send → perhapsEncode fails → abortSendAndNak(TOO_LARGE); the status carries the error as res.
      routingToPhone(RoutingError.TOO_LARGE, id, nodeNum, raw.channel);
      deliverToPhone(queueStatus(RoutingError.TOO_LARGE, id));
      return;
    }
    if (queueFullFault || txQueue.length >= txQueueMax) {
      counters.queueFullRefusals++;
      emit({ type: 'queue-full', id });
      deliverToPhone(queueStatus(ERRNO_UNKNOWN, id));
      return;
    }
    const broadcast = raw.to === BROADCAST_NUM;
    const hopLimit = Math.min(7, raw.hopLimit === 0 && raw.wantAck ? lora.hopLimit : raw.hopLimit);
    enqueueTx({
      header: {
        to: raw.to,
        from: nodeNum,
        id,
        hopLimit,
        // Router::send: want_ack is never set on broadcasts over the air.
        wantAck: raw.wantAck && !broadcast,
        viaMqtt: false,
        hopStart: hopLimit,
        channelHash: myHash,
        nextHop: 0,
        relayNode: nodeNum & 0xff,
      },
      data: encoded,
      priority: raw.priority || (raw.wantAck ? Priority.RELIABLE : Priority.DEFAULT),
      reliable: raw.wantAck,
      attempts: 0,
    });
    deliverToPhone(queueStatus(0, id));
  }

  // ------------------------------------------------------------------ radio

  function enqueueTx(item: TxItem): void {
    // MeshPacketQueue keeps priority order, FIFO within a priority.
    const at = txQueue.findIndex((q) => q.priority < item.priority);
    if (at < 0) txQueue.push(item);
    else txQueue.splice(at, 0, item);
    void pump();
  }

  /** The transmitter: one frame at a time, until the queue is empty (a reboot swaps port and queue under it). */
  async function pump(): Promise<void> {
    if (transmitting) return;
    transmitting = true;
    try {
      for (;;) {
        const port = airPort;
        const item = txQueue.shift();
        if (!port || !item) return;
        await transmitOne(item, port);
        // MeshService::loop: once the queue had no room, tell the phone when it has some again.
        if (lastReportedFree === 0 && !queueFullFault && txQueue.length < txQueueMax) {
          deliverToPhone(queueStatus(0, 0));
        }
      }
    } finally {
      transmitting = false;
    }
  }

  async function transmitOne(item: TxItem, port: AirPort): Promise<void> {
    await channelAccess(item.priority);
    // Unplugged or rebooted meanwhile: the packet died with the RAM.
    if (port !== airPort) return;
    item.attempts++;
    const frame = encodeOnAirPacket({ header: item.header, payload: item.data });
    const airtimeMs = meshtasticAirtimeMs(item.data.length, params);
    const result = await port.transmit(frame);
    if (port !== airPort) return;
    if (result.ok) {
      counters.transmissions++;
      emit({ type: 'tx', id: item.header.id, bytes: frame.length, airtimeMs: result.airtimeMs });
      if (item.reliable && item.header.from === nodeNum) awaitAck(item, airtimeMs);
      return;
    }
    emit({ type: 'tx-refused', id: item.header.id, reason: result.reason });
    if (item.header.from === nodeNum && result.reason === 'duty-cycle') {
      // Router::send: over the duty cycle → a client notification and a DUTY_CYCLE_LIMIT NAK.
      deliverToPhone({
        kind: 'clientNotification',
        clientNotification: {
          replyId: item.header.id,
          time: nowSecs(),
          level: LogLevel.WARNING,
          message: 'Duty cycle limit exceeded. You can send again later',
        },
      });
      routingToPhone(9, item.header.id, nodeNum);
    }
  }

  function awaitAck(item: TxItem, airtimeMs: number): void {
    const waitMs = options.ackTimeoutMs ?? 3 * airtimeMs + 1_500;
    const id = item.header.id;
    pendingAcks.get(id)?.cancel();
    const cancel = scheduler.setTimer(waitMs, () => {
      if (pendingAcks.get(id)?.item !== item) return;
      pendingAcks.delete(id);
      if (item.attempts < maxTransmissions) {
        enqueueTx(item);
      } else {
        routingToPhone(RoutingError.MAX_RETRANSMIT, id, nodeNum);
      }
    });
    pendingAcks.set(id, { item, cancel });
  }

  function stopRetransmission(id: number): boolean {
    const p = pendingAcks.get(id);
    if (!p) {
      // Not yet waiting (still queued for a retransmission): take it out of the queue.
      const i = txQueue.findIndex((q) => q.reliable && q.header.id === id && q.header.from === nodeNum);
      if (i < 0) return false;
      txQueue.splice(i, 1);
      return true;
    }
    p.cancel();
    pendingAcks.delete(id);
    return true;
  }

  function rememberAir(from: number, id: number): boolean {
    const key = `${from}:${id}`;
    if (recentAir.includes(key)) return true;
    recentAir.push(key);
    if (recentAir.length > RECENT_AIR_IDS) recentAir.shift();
    return false;
  }

  function onAir(rx: AirReception): void {
    let packet: ReturnType<typeof decodeOnAirPacket>;
    let data: Data;
    try {
      packet = decodeOnAirPacket(rx.frame);
      data = decodeData(packet.payload);
    } catch {
      // A frame from another network or a broken one: the radio drops it.
      return;
    }
    const h = packet.header;
    if (h.channelHash !== myHash) return;
    emit({ type: 'rx', from: h.from, id: h.id, bytes: rx.frame.length });
    if (h.from === nodeNum) {
      // Someone rebroadcast our packet: for a broadcast that is the implicit ACK, whether we are still
      // waiting or already queued the next retransmission.
      const waiting =
        pendingAcks.get(h.id)?.item ??
        txQueue.find((q) => q.reliable && q.header.id === h.id && q.header.from === nodeNum);
      if (waiting?.header.to === BROADCAST_NUM && stopRetransmission(h.id)) {
        routingToPhone(RoutingError.NONE, h.id, nodeNum);
      }
      return;
    }
    const seen = rememberAir(h.from, h.id);
    const toUs = h.to === nodeNum;
    if (seen) {
      // A repeat of a reliable packet for us means our ACK was lost: send it again.
      if (toUs && h.wantAck && data.portnum !== PortNum.ROUTING_APP) sendAck(h);
      return;
    }
    if (toUs || h.to === BROADCAST_NUM) {
      if (toUs && data.portnum === PortNum.ROUTING_APP && data.requestId !== 0) {
        let reason = RoutingError.NONE as number;
        try {
          const r = decodeRouting(data.payload);
          if (r.kind === 'error') reason = r.errorReason;
        } catch {
          // An undecodable routing payload still answers the request; treat it as a plain ACK.
        }
        stopRetransmission(data.requestId);
        emit({ type: 'routing-to-host', requestId: data.requestId, errorReason: reason });
      }
      deliverToPhone({
        kind: 'packet',
        packet: createMeshPacket({
          from: h.from,
          to: h.to,
          channel: 0,
          id: h.id,
          rxTime: nowSecs(),
          rxSnr: Math.fround(Math.round(rx.snrDb * 4) / 4),
          rxRssi: Math.round(rx.rssiDbm),
          hopLimit: h.hopLimit,
          hopStart: h.hopStart,
          wantAck: h.wantAck,
          relayNode: h.relayNode,
          payload: { kind: 'decoded', data },
        }),
      });
      if (toUs && h.wantAck && data.portnum !== PortNum.ROUTING_APP) sendAck(h);
    }
    // FloodingRouter: rebroadcast what is not only for us while hops remain.
    if (!toUs && h.hopLimit > 0) {
      const delayMs = 50 + random() * 400;
      const relay: TxItem = {
        header: { ...h, hopLimit: h.hopLimit - 1, relayNode: nodeNum & 0xff },
        data: packet.payload,
        priority: Priority.DEFAULT,
        reliable: false,
        attempts: 0,
      };
      const port = airPort;
      scheduler.setTimer(delayMs, () => {
        if (port === airPort) enqueueTx(relay);
      });
    }
  }

  function sendAck(h: OnAirHeader): void {
    const hopLimit = Math.min(7, Math.max(lora.hopLimit, h.hopStart - h.hopLimit));
    enqueueTx({
      header: {
        to: h.from,
        from: nodeNum,
        id: nextPacketId(),
        hopLimit,
        wantAck: false,
        viaMqtt: false,
        hopStart: hopLimit,
        channelHash: myHash,
        nextHop: 0,
        relayNode: nodeNum & 0xff,
      },
      data: encodeData(
        createData({
          portnum: PortNum.ROUTING_APP,
          payload: encodeRouting({ kind: 'error', errorReason: RoutingError.NONE }),
          requestId: h.id,
        }),
      ),
      priority: Priority.ACK,
      reliable: false,
      attempts: 0,
    });
  }

  // ------------------------------------------------------------------ power and boot

  function resetFirmware(): void {
    usingProtobufs = false;
    session = 'none';
    recentPhoneIds = [];
    lastTextSendMs = undefined;
    toPhone = [];
    txQueue = [];
    for (const p of pendingAcks.values()) p.cancel();
    pendingAcks = new Map();
    recentAir = [];
    lastReportedFree = txQueueMax;
    decoder = createStreamDecoder();
    if (apiLogTimer) clearTimeout(apiLogTimer);
    apiLogTimer = undefined;
    airPort?.detach();
    airPort = undefined;
  }

  function boot(style: RebootStyle): void {
    rebootCount++;
    airPort = options.air.attach({
      id: portId,
      network: 'meshtastic',
      ...(options.position ? { position: options.position } : {}),
      params: () => params,
    });
    airPort.onReceive(onAir);
    // Old firmware wrote `rebooted` unconditionally from the console constructor; HEAD drops it (§2.1).
    if (style === 'rebooted-frame') writeFrame({ id: 0, payload: { kind: 'rebooted', rebooted: true } }, true);
    const lines = options.bootLog ?? DEFAULT_BOOT_LOG;
    for (const line of lines) consoleLine(line);
    if (options.bootLogStrayByte) consoleLine('INFO  | ??:??:?? 2 [GPS] Ô: no fix, stray \u0094 byte');
    if (!options.bootLog) consoleLine(`INFO  | ??:??:?? 3 Boot count ${rebootCount}, node ${nodeIdOf(nodeNum)}`);
    const bootDelayMs = options.bootDelayMs ?? 0;
    if (bootDelayMs > 0) {
      booting = true;
      if (bootTimer) clearTimeout(bootTimer);
      bootTimer = setTimeout(() => {
        booting = false;
        bootTimer = undefined;
        emit({ type: 'booted', rebootCount });
      }, bootDelayMs);
    } else {
      booting = false;
      emit({ type: 'booted', rebootCount });
    }
  }

  async function plugIn(): Promise<void> {
    const pair = await openPtyPair({ dir: options.dir, name: options.name });
    let port: SerialPort;
    try {
      port = await openSerial(pair.devicePath);
    } catch (e) {
      await pair.close();
      throw new MeshtasticError('MT_EMULATOR_FAILED', `cannot open ${pair.devicePath}`, { cause: e });
    }
    pty = pair;
    serial = port;
    port.on('data', onHostBytes);
    // A pty whose far end vanished reports errors; the unplug path closes it.
    port.on('error', (e) => log.debug('emulator port error', { error: e }));
    plugged = true;
    writeChain = Promise.resolve();
    emit({ type: 'plugged', plugged: true });
    resetFirmware();
    boot('silent');
  }

  async function unplugNow(): Promise<void> {
    if (!plugged) return;
    plugged = false;
    resetFirmware();
    if (bootTimer) clearTimeout(bootTimer);
    bootTimer = undefined;
    booting = false;
    const port = serial;
    const pair = pty;
    serial = undefined;
    pty = undefined;
    if (port) await closeSerial(port);
    if (pair) await pair.close();
    emit({ type: 'plugged', plugged: false });
  }

  let consoleCount = 0;
  const consoleTimer =
    options.consoleLineIntervalMs === undefined
      ? undefined
      : setInterval(() => {
          if (!plugged || usingProtobufs) return;
          consoleCount++;
          const stray = options.bootLogStrayByte ? ' Ô\u0094' : '';
          consoleLine(`DEBUG | ??:??:?? ${consoleCount} [Power] Battery: usbPower=1, isCharging=0${stray}`);
        }, options.consoleLineIntervalMs);
  consoleTimer?.unref();

  const sessionTimer = setInterval(
    () => {
      if (session !== 'none' && clock.monotonicMs() - lastContactMs > sessionTimeoutMs) {
        // PhoneAPI::checkConnectionTimeout → close(): the host must send want_config_id again.
        closeSession('timeout');
      }
    },
    options.sessionCheckIntervalMs ?? Math.min(1_000, Math.max(10, sessionTimeoutMs / 4)),
  );
  sessionTimer.unref();

  await plugIn();
  log.info('meshtastic emulator started', { hostPath: pty!.hostPath, node: nodeIdOf(nodeNum) });

  const emulator: MeshtasticEmulator = {
    hostPath: pty!.hostPath,
    portId,
    nodeNum,
    params,
    state: () => ({
      plugged,
      booting,
      usingProtobufs,
      session,
      rebootCount,
      txQueued: txQueue.length,
      toPhoneQueued: toPhone.length,
      ...counters,
    }),
    onEvent(handler) {
      handlers.add(handler);
      return () => handlers.delete(handler);
    },
    nextEvent(predicate: (e: MeshtasticEmulatorEvent) => boolean) {
      return new Promise<MeshtasticEmulatorEvent>((resolve) => {
        const off = emulator.onEvent((e) => {
          if (!predicate(e)) return;
          off();
          resolve(e);
        });
      });
    },
    unplug: unplugNow,
    async replug() {
      if (plugged || closed) return;
      await plugIn();
    },
    reboot(style) {
      if (!plugged) return;
      closeSession('reboot');
      resetFirmware();
      boot(style ?? rebootStyle);
    },
    async injectGarbage(bytes) {
      await writeRaw(bytes);
    },
    async sendRawFrame(body) {
      await writeRaw(encodeStreamFrame(body));
    },
    corruptNextFrames(count, only) {
      corruptFrames += count;
      corruptOnly = only;
    },
    tearNextFrame(only) {
      tearNext = true;
      tearOnly = only;
    },
    setQueueFull(full) {
      const was = queueFullFault;
      queueFullFault = full;
      // MeshService::loop reports the queue as soon as it has room again.
      if (was && !full) deliverToPhone(queueStatus(0, 0));
    },
    setSlowLink(link) {
      slowLink = link ? { chunkBytes: Math.max(1, link.chunkBytes), delayMs: Math.max(0, link.delayMs) } : undefined;
    },
    async close() {
      if (closed) return;
      closed = true;
      clearInterval(sessionTimer);
      if (consoleTimer) clearInterval(consoleTimer);
      offTrace?.();
      await unplugNow();
      handlers.clear();
    },
  };
  return emulator;
}
