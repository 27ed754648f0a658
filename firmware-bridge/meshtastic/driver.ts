// The Meshtastic driver: the Radio interface over the stream API on a serial port. It wakes the radio,
// downloads its config with a random want_config nonce, sends our payloads as Data on a private port
// with want_ack, paces itself by queueStatus, maps Routing ACK/NAK to outcomes, keeps the session alive
// with heartbeats (M3), re-handshakes after a silent or announced reboot (M10), survives torn frames
// (M11) and unplugs, and never loses a queued payload while it runs.
//
// All timing goes through `clock` and one tick timer: deadlines are clock readings, so a test can run
// the driver against a FakeClock, and the real daemon wakes once per `tickMs`.

import { randomInt } from 'node:crypto';
import type { SerialPort } from 'serialport';
import { type Clock, systemClock } from '../../protocol/clock.ts';
import type { OutpostError } from '../../protocol/errors.ts';
import type { Logger } from '../../protocol/log.ts';
import { silentLogger } from '../../protocol/log.ts';
import { createBroadcast } from '../broadcast.ts';
import { createDutyCycleAccountant, type DutyCycleAccountant } from '../duty-cycle.ts';
import { RadioError } from '../errors.ts';
import type {
  AirtimeReport,
  Radio,
  RadioParams,
  RadioStatus,
  ReceivedPacket,
  SendOptions,
  SendOutcome,
} from '../radio.ts';
import { MeshtasticError } from './errors.ts';
import { MODEM_PRESETS, meshtasticAirtimeMs, REGIONS, radioParamsFromLoRaConfig } from './lora-params.ts';
import {
  BROADCAST_NUM,
  type Channel,
  ChannelRole,
  createData,
  createLoRaConfig,
  createMeshPacket,
  DATA_ENCODED_MAX_BYTES,
  DATA_PAYLOAD_MAX_BYTES,
  type DeviceMetadata,
  decodeFromRadio,
  decodeRouting,
  encodeData,
  encodeToRadio,
  type FromRadio,
  isPlausibleFromRadio,
  type LoRaConfig,
  type MeshPacket,
  type MyNodeInfo,
  NONCE_ONLY_CONFIG,
  NONCE_ONLY_NODES,
  type NodeInfo,
  nodeIdOf,
  PortNum,
  type QueueStatus,
  routingErrorName,
  type ToRadio,
} from './protobuf.ts';
import {
  clearHupcl,
  closeQuietly,
  type DeviceIdentity,
  deviceIdentity,
  openFailure,
  openMeshtasticPort,
  sameDevice,
  writeAll,
} from './serial-port.ts';
import { createStreamDecoder, encodeStreamFrame, type StreamDecoder, type StreamEvent } from './stream-framer.ts';

/** 32 × 0xC3: wakes a sleeping radio and resynchronises its parser; 0x94 is deliberately absent [MT-PY stream_interface]. */
export function wakeBytes(): Uint8Array {
  return new Uint8Array(32).fill(0xc3);
}
/** queueStatus.res when the TX queue had no room (ERRNO_UNKNOWN) [MT-FW src/mesh/MeshTypes.h]. */
const RES_QUEUE_FULL = 32;
/** queueStatus.res when transmitting is disabled (ERRNO_DISABLED: region unset or tx_enabled off). */
const RES_DISABLED = 34;

export interface MeshtasticTiming {
  /** Period of the one timer that checks every deadline. Default 100. */
  readonly tickMs: number;
  /** Pause between the wake bytes and want_config (the Python client's 0.1 s). Default 100. */
  readonly wakeDelayMs: number;
  /** Wait this long for config_complete_id before asking again. Default 30000 (the Python client's). */
  readonly handshakeTimeoutMs: number;
  /** want_config attempts per opening before the port is closed and reopened. Default 3. */
  readonly handshakeAttempts: number;
  /** Send a heartbeat when nothing was written for this long; the firmware drops the session after 15 min (M3). Default 300000. */
  readonly heartbeatIntervalMs: number;
  /** A packet handed over without a queueStatus for this long means the session is gone: re-handshake. Default 10000. */
  readonly queueStatusTimeoutMs: number;
  /** Give up on a want_ack packet whose Routing answer has not come within this. Default 120000. */
  readonly ackTimeoutMs: number;
  /** Re-handshake when no mesh packet arrived for this long (M10), 0 = never. Default 1800000. */
  readonly rehandshakeAfterSilenceMs: number;
  /** While the device queue is full, poll it with a heartbeat this often. Default 2000. */
  readonly queueFullPollMs: number;
  /** Check that the device node is still the one opened this often (unplug). Default 1000. */
  readonly presenceCheckMs: number;
  /** Release a partial frame after this much silence on the line. Default 250. */
  readonly idleFlushMs: number;
  /** Reopen backoff: initial, doubling, capped, with jitter. Defaults 500 / 30000. */
  readonly backoffInitialMs: number;
  readonly backoffMaxMs: number;
  /** A write that does not complete within this is a dead port. Default 2000. */
  readonly writeTimeoutMs: number;
  /** A console line with at least this many printable characters after the session started means a reboot. Default 8. */
  readonly rebootTextMinChars: number;
}

export const DEFAULT_MESHTASTIC_TIMING: MeshtasticTiming = Object.freeze({
  tickMs: 100,
  wakeDelayMs: 100,
  handshakeTimeoutMs: 30_000,
  handshakeAttempts: 3,
  heartbeatIntervalMs: 300_000,
  queueStatusTimeoutMs: 10_000,
  ackTimeoutMs: 120_000,
  rehandshakeAfterSilenceMs: 30 * 60_000,
  queueFullPollMs: 2_000,
  presenceCheckMs: 1_000,
  idleFlushMs: 250,
  backoffInitialMs: 500,
  backoffMaxMs: 30_000,
  writeTimeoutMs: 2_000,
  rebootTextMinChars: 8,
});

export interface MeshtasticRadioOptions {
  /** Serial device; prefer /dev/serial/by-id/… so the name survives replugging. */
  readonly path: string;
  readonly clock?: Clock;
  readonly log?: Logger;
  /** Port number of our traffic: a private app port 256..511 (default 256, PRIVATE_APP). */
  readonly portnum?: number;
  /** Channel index 0..7 to send and receive on (default 0, the primary channel). */
  readonly channel?: number;
  /** Destination node number (default broadcast). */
  readonly destination?: number;
  /** Hop limit for our packets, 0..7; 0 with want_ack means the radio's configured default (default 0). */
  readonly hopLimit?: number;
  readonly timing?: Partial<MeshtasticTiming>;
  /** Packets handed to the radio and still waiting for their ACK, at most (default 4; the device queue holds 16). */
  readonly maxInFlight?: number;
  /** send() fails with SEND_QUEUE_FULL beyond this many waiting packets (default 256). */
  readonly maxQueued?: number;
  /** 'enforce' (default): hold packets the region's airtime law would refuse; 'account': only count. */
  readonly dutyCycle?: 'enforce' | 'account';
  /** Clear HUPCL with stty before opening (default: on Linux). See docs/radios.md, Meshtastic section (M4). */
  readonly clearHupcl?: boolean;
  /** want_ack for sends that do not say (default true: Meshtastic reports delivery per packet). */
  readonly wantAckByDefault?: boolean;
  /** Jitter source for the backoff (default Math.random). */
  readonly random?: () => number;
}

export type RehandshakeReason = 'rebooted' | 'console-text' | 'silence' | 'no-queue-status' | 'incomplete';

export interface MeshtasticDiagnostics {
  readonly node?: {
    readonly num: number;
    readonly id: string;
    readonly longName: string;
    readonly shortName: string;
    readonly firmware: string;
    readonly hwModel: number;
    readonly rebootCount: number;
    readonly region: string;
    readonly preset: string;
    readonly hopLimit: number;
  };
  readonly params?: RadioParams;
  readonly queued: number;
  readonly inFlight: number;
  /** Last free slots the radio reported in its TX queue. */
  readonly deviceQueueFree?: number;
  readonly counters: Readonly<{
    opens: number;
    handshakes: number;
    packetsReceived: number;
    packetsSent: number;
    acked: number;
    nacked: number;
    requeued: number;
    heartbeats: number;
    queueFullRefusals: number;
    /** Frames whose body did not decode (torn or corrupt, M11), counted and skipped. */
    tornFrames: number;
    /** Frames cut off by silence or a reboot. */
    incompleteFrames: number;
    consoleBytes: number;
  }>;
  readonly rehandshakes: Readonly<Partial<Record<RehandshakeReason, number>>>;
}

export interface MeshtasticRadio extends Radio {
  diagnostics(): MeshtasticDiagnostics;
}

interface Job {
  readonly payload: Uint8Array;
  readonly wantAck: boolean;
  readonly dataBytes: number;
  readonly resolve: (o: SendOutcome) => void;
  readonly signal?: AbortSignal;
  settled: boolean;
  /** Every packet id this job was handed over with (a re-handover takes a fresh id). */
  readonly ids: number[];
  handedAtMs: number;
  ackDeadlineMs: number;
  airtimeMs: number;
  onAbort?: () => void;
}

interface Session {
  readonly nonce: number;
  attempts: number;
  deadlineMs: number;
  myInfo?: MyNodeInfo;
  ownNode?: NodeInfo;
  metadata?: DeviceMetadata;
  lora?: LoRaConfig;
  readonly channels: Map<number, Channel>;
}

type Phase = 'idle' | 'absent' | 'opening' | 'configuring' | 'ready' | 'closed';

const failed = (code: string, reason: string): SendOutcome => ({ state: 'failed', code, reason });

function checkOption(ok: boolean, message: string): void {
  if (!ok) throw new MeshtasticError('MT_INVALID_OPTION', message);
}

/** A want_config nonce: random, never 0 and never one of the special values. */
export function randomNonce(): number {
  for (;;) {
    const n = randomInt(1, 2 ** 32 - 1);
    if (n !== NONCE_ONLY_CONFIG && n !== NONCE_ONLY_NODES) return n;
  }
}

/** Creates the driver. Throws MT_INVALID_OPTION for impossible options; opens nothing until open(). */
export function createMeshtasticRadio(options: MeshtasticRadioOptions): MeshtasticRadio {
  const path = options.path;
  const clock = options.clock ?? systemClock;
  const log = (options.log ?? silentLogger).child({ radio: 'meshtastic', path });
  const timing: MeshtasticTiming = { ...DEFAULT_MESHTASTIC_TIMING, ...options.timing };
  const portnum = options.portnum ?? PortNum.PRIVATE_APP;
  const channelIndex = options.channel ?? 0;
  const destination = options.destination ?? BROADCAST_NUM;
  const hopLimit = options.hopLimit ?? 0;
  const maxInFlight = options.maxInFlight ?? 4;
  const maxQueued = options.maxQueued ?? 256;
  const enforce = (options.dutyCycle ?? 'enforce') === 'enforce';
  const wantClearHupcl = options.clearHupcl ?? process.platform === 'linux';
  const random = options.random ?? Math.random;
  const wantAckByDefault = options.wantAckByDefault ?? true;
  checkOption(
    Number.isInteger(portnum) && portnum >= 256 && portnum <= 511,
    `portnum must be 256..511, got ${portnum}`,
  );
  checkOption(Number.isInteger(channelIndex) && channelIndex >= 0 && channelIndex <= 7, 'channel must be 0..7');
  checkOption(Number.isInteger(destination) && destination > 0 && destination <= BROADCAST_NUM, 'bad destination');
  checkOption(Number.isInteger(hopLimit) && hopLimit >= 0 && hopLimit <= 7, 'hopLimit must be 0..7');
  checkOption(Number.isInteger(maxInFlight) && maxInFlight >= 1 && maxInFlight <= 16, 'maxInFlight must be 1..16');
  checkOption(Number.isInteger(maxQueued) && maxQueued >= 1, 'maxQueued must be >= 1');

  const statuses = createBroadcast<RadioStatus>();
  const packetStream = createBroadcast<ReceivedPacket>();
  let status: RadioStatus = { state: 'absent', reason: 'not opened' };
  let phase: Phase = 'idle';
  let port: SerialPort | undefined;
  let identity: DeviceIdentity | undefined;
  let decoder: StreamDecoder = createStreamDecoder({ accept: isPlausibleFromRadio });
  let session: Session | undefined;
  let params: RadioParams | undefined;
  let lastRebootCount: number | undefined;
  let tick: NodeJS.Timeout | undefined;
  let ticking = false;
  let reopenAttempt = 0;
  let reopenAtMs = 0;
  let lastPresenceMs = 0;
  let lastByteMs = 0;
  let lastWriteMs = 0;
  let lastPacketMs = 0;
  let lastPollMs = 0;
  let consoleLine = '';
  let deviceFree: number | undefined;
  let holdUntilMs = 0;
  let accountant: DutyCycleAccountant | undefined;
  let packetCounter = randomInt(0, 1024);
  let openPromise: Promise<void> | undefined;
  let firstAttemptDone: (() => void) | undefined;
  const queue: Job[] = [];
  let handed: Job | undefined;
  const awaiting = new Map<number, Job>();
  /** Ids of settled or re-handed jobs, kept briefly so a late ACK still finds its job. */
  const jobsById = new Map<number, Job>();
  const counters = {
    opens: 0,
    handshakes: 0,
    packetsReceived: 0,
    packetsSent: 0,
    acked: 0,
    nacked: 0,
    requeued: 0,
    heartbeats: 0,
    queueFullRefusals: 0,
    tornFrames: 0,
    incompleteFrames: 0,
    consoleBytes: 0,
  };
  const rehandshakes: Partial<Record<RehandshakeReason, number>> = {};

  const now = () => clock.monotonicMs();

  function setStatus(s: RadioStatus): void {
    const changed = JSON.stringify(s) !== JSON.stringify(status);
    status = s;
    if (!changed) return;
    log.info('meshtastic.status', { state: s.state, ...('reason' in s ? { reason: s.reason } : {}) });
    statuses.publish(s);
    if (s.state !== 'opening' && s.state !== 'configuring') firstAttemptDone?.();
  }

  // ---------------------------------------------------------------- jobs

  function settle(job: Job, outcome: SendOutcome): void {
    if (job.settled) return;
    job.settled = true;
    if (job.onAbort) job.signal?.removeEventListener('abort', job.onAbort);
    for (const id of job.ids) awaiting.delete(id);
    job.resolve(outcome);
  }

  function remember(id: number, job: Job): void {
    jobsById.set(id, job);
    if (jobsById.size > 4 * (maxQueued + 16)) jobsById.delete(jobsById.keys().next().value!);
  }

  function nextPacketId(): number {
    // As the Python client: a 10-bit rolling counter under 22 random bits; never 0.
    packetCounter = (packetCounter + 1) & 0x3ff;
    const id = ((randomInt(0, 0x400000) << 10) | packetCounter) >>> 0;
    return id === 0 ? 1 : id;
  }

  /** Puts handed-over work back at the front of the queue (after a lost session). */
  function requeue(includeAwaiting: boolean): void {
    const back: Job[] = [];
    if (handed && !handed.settled) back.push(handed);
    handed = undefined;
    if (includeAwaiting) {
      for (const job of new Set(awaiting.values())) if (!job.settled) back.push(job);
      awaiting.clear();
    }
    if (back.length > 0) {
      counters.requeued += back.length;
      queue.unshift(...back);
      log.info('meshtastic.requeued', { packets: back.length });
    }
  }

  // ---------------------------------------------------------------- port I/O

  async function write(bytes: Uint8Array): Promise<void> {
    const p = port;
    if (!p) throw new RadioError('PORT_FAILED', 'the port is not open');
    lastWriteMs = now();
    try {
      await writeAll(p, bytes, timing.writeTimeoutMs);
    } catch (e) {
      if (p === port) lose('absent', `write failed: ${e instanceof Error ? e.message : String(e)}`);
      throw new RadioError('PORT_FAILED', `write to ${path} failed`, { cause: e });
    }
  }

  function sendToRadio(m: ToRadio): Promise<void> {
    return write(encodeStreamFrame(encodeToRadio(m)));
  }

  function lose(kind: 'absent' | 'failed', reason: string, error?: OutpostError): void {
    if (phase === 'closed' || phase === 'absent' || phase === 'idle') return;
    const p = port;
    port = undefined;
    identity = undefined;
    session = undefined;
    if (p) void closeQuietly(p);
    // A radio that lost USB power lost its queue; one that stayed up may still deliver, so requeue both
    // kinds of work: a duplicate on air is better than a lost packet (delivery is at least once).
    requeue(true);
    deviceFree = undefined;
    phase = 'absent';
    const base = Math.min(timing.backoffMaxMs, timing.backoffInitialMs * 2 ** Math.min(reopenAttempt, 30));
    reopenAttempt++;
    reopenAtMs = now() + base * (0.5 + 0.5 * random());
    log.warning('meshtastic.lost', { kind, reason, retryInMs: Math.round(reopenAtMs - now()) });
    setStatus(
      kind === 'absent' || !error
        ? { state: 'absent', reason }
        : { state: 'error', code: error.code, reason: error.message },
    );
  }

  async function connect(): Promise<void> {
    phase = 'opening';
    setStatus({ state: 'opening' });
    if (!(await deviceIdentity(path))) return lose('absent', `${path} is not present`);
    if (wantClearHupcl) await clearHupcl(path, log);
    let p: SerialPort;
    try {
      p = await openMeshtasticPort(path);
    } catch (e) {
      const err = openFailure(path, e);
      return lose(err ? 'failed' : 'absent', err?.message ?? `${path} is not present`, err);
    }
    if (phase !== 'opening') {
      // close() ran while the port was opening.
      await closeQuietly(p);
      return;
    }
    counters.opens++;
    port = p;
    identity = await deviceIdentity(path);
    decoder = createStreamDecoder({ accept: isPlausibleFromRadio });
    consoleLine = '';
    lastPresenceMs = now();
    p.on('data', (chunk: Buffer) => {
      if (p === port) onBytes(new Uint8Array(chunk));
    });
    p.on('close', () => {
      if (p === port) lose('absent', 'port closed');
    });
    p.on('error', (e) => {
      if (p === port) lose('absent', `port error: ${e.message}`);
    });
    await handshake(undefined);
  }

  async function handshake(reason: RehandshakeReason | undefined, attempts = 1): Promise<void> {
    if (!port) return;
    if (reason) {
      rehandshakes[reason] = (rehandshakes[reason] ?? 0) + 1;
      log.warning('meshtastic.rehandshake', { reason });
    }
    // A reboot lost the radio's queue and retransmissions; otherwise the radio still works on them.
    requeue(reason === 'rebooted' || reason === 'console-text');
    deviceFree = undefined;
    const s: Session = { nonce: randomNonce(), attempts, deadlineMs: Number.POSITIVE_INFINITY, channels: new Map() };
    session = s;
    phase = 'configuring';
    setStatus({ state: 'configuring' });
    counters.handshakes++;
    try {
      await write(wakeBytes());
      await new Promise((r) => setTimeout(r, timing.wakeDelayMs));
      if (session !== s || !port) return;
      await sendToRadio({ payload: { kind: 'wantConfigId', wantConfigId: s.nonce } });
      s.deadlineMs = now() + timing.handshakeTimeoutMs;
    } catch {
      // The write failure already marked the port lost.
    }
  }

  function finishHandshake(s: Session): void {
    const my = s.myInfo;
    const own = s.ownNode;
    if (!my || !own?.user?.id || s.channels.size === 0) {
      log.warning('meshtastic.config_incomplete', {
        myInfo: my !== undefined,
        ownNode: own !== undefined,
        channels: s.channels.size,
      });
      if (s.attempts >= timing.handshakeAttempts) {
        lose(
          'failed',
          'config download incomplete',
          new MeshtasticError(
            'MT_HANDSHAKE_INCOMPLETE',
            'the radio sent no node info or channels; is it a Meshtastic radio?',
          ),
        );
        return;
      }
      void handshake('incomplete', s.attempts + 1);
      return;
    }
    if (lastRebootCount !== undefined && my.rebootCount !== lastRebootCount) {
      // The radio rebooted since the last session without saying so: whatever it held is gone.
      log.warning('meshtastic.reboot_seen', { before: lastRebootCount, now: my.rebootCount });
      requeue(true);
    }
    lastRebootCount = my.rebootCount;
    const lora = s.lora ?? createLoRaConfig({ usePreset: true });
    const primary = [...s.channels.values()].find((c) => c.role === ChannelRole.PRIMARY);
    params = radioParamsFromLoRaConfig(lora, primary?.settings?.name ?? '');
    if (!accountant || accountant.region !== params.region)
      accountant = createDutyCycleAccountant({ region: params.region });
    phase = 'ready';
    reopenAttempt = 0;
    lastPacketMs = now();
    consoleLine = '';
    setStatus({ state: 'ready', firmware: s.metadata?.firmwareVersion ?? 'unknown', params });
    pump();
  }

  // ---------------------------------------------------------------- input

  function onBytes(bytes: Uint8Array): void {
    lastByteMs = now();
    handleEvents(decoder.push(bytes));
  }

  function handleEvents(events: StreamEvent[]): void {
    for (const ev of events) {
      if (ev.kind === 'frame') {
        let m: FromRadio;
        try {
          m = decodeFromRadio(ev.body);
        } catch {
          // Cannot happen after the framer's check; counted like a torn frame if it ever does.
          counters.tornFrames++;
          continue;
        }
        onFrame(m);
      } else if (ev.kind === 'rejected') {
        if (ev.reason === 'invalid') counters.tornFrames++;
        else counters.incompleteFrames++;
      } else if (ev.kind === 'debug') {
        counters.consoleBytes += ev.text.length;
        onConsoleText(ev.text);
      }
    }
  }

  function onConsoleText(text: string): void {
    consoleLine += text;
    const lines = consoleLine.split('\n');
    consoleLine = lines.pop() ?? '';
    if (consoleLine.length > 512) {
      // A console line never runs this long; judge what we have rather than buffer without bound.
      lines.push(consoleLine);
      consoleLine = '';
    }
    for (const line of lines) {
      const printable = line.replace(/[^\x20-\x7e]/g, '').trim();
      if (printable.length === 0) continue;
      log.debug('meshtastic.console', { line: printable.slice(0, 200) });
      // Console text while the session runs means the firmware forgot us: a silent reboot (M10).
      if (phase === 'ready' && printable.length >= timing.rebootTextMinChars) {
        void handshake('console-text');
        return;
      }
    }
  }

  function onFrame(m: FromRadio): void {
    const p = m.payload;
    const s = session;
    switch (p.kind) {
      case 'myInfo':
        if (s) s.myInfo = p.myInfo;
        break;
      case 'nodeInfo':
        if (s?.myInfo && p.nodeInfo.num === s.myInfo.myNodeNum) s.ownNode = p.nodeInfo;
        break;
      case 'metadata':
        if (s) s.metadata = p.metadata;
        break;
      case 'channel':
        if (s) s.channels.set(p.channel.index, p.channel);
        break;
      case 'config':
        if (s && p.config.kind === 'lora') s.lora = p.config.lora;
        break;
      case 'configCompleteId':
        // A stale config_complete (from an earlier nonce) is ignored.
        if (s && phase === 'configuring' && p.configCompleteId === s.nonce) finishHandshake(s);
        break;
      case 'rebooted':
        if (phase === 'ready' || phase === 'configuring') void handshake('rebooted');
        break;
      case 'queueStatus':
        onQueueStatus(p.queueStatus);
        break;
      case 'packet':
        onPacket(p.packet);
        break;
      case 'logRecord':
        log.debug('meshtastic.device_log', { source: p.logRecord.source, message: p.logRecord.message });
        break;
      case 'clientNotification':
        log.warning('meshtastic.device_notice', {
          message: p.clientNotification.message,
          replyId: p.clientNotification.replyId,
        });
        break;
      default:
        break;
    }
  }

  function onQueueStatus(q: QueueStatus): void {
    deviceFree = q.free;
    const job = handed;
    if (job && job.ids.at(-1) === q.meshPacketId && q.meshPacketId !== 0) {
      handed = undefined;
      if (job.settled) {
        // Aborted, or answered by a late ACK for an earlier id: nothing left to track.
      } else if (q.res === 0) {
        counters.packetsSent++;
        if (params) {
          job.airtimeMs = meshtasticAirtimeMs(job.dataBytes, params);
          accountant?.record(params.freqHz, job.airtimeMs, now(), params.bandwidthHz);
        }
        if (job.wantAck) {
          job.ackDeadlineMs = now() + timing.ackTimeoutMs;
          awaiting.set(q.meshPacketId, job);
        } else settle(job, { state: 'sent', airtimeMs: job.airtimeMs });
      } else if (q.res === RES_QUEUE_FULL) {
        // The radio's TX queue had no room: keep the packet and wait for room (never exceed the device queue).
        counters.queueFullRefusals++;
        deviceFree = 0;
        lastPollMs = now();
        queue.unshift(job);
      } else if (q.res === RES_DISABLED) {
        settle(job, failed('TX_DISABLED', 'the radio has transmitting disabled (region unset or tx_enabled off)'));
      } else {
        counters.nacked++;
        const name = routingErrorName(q.res);
        settle(job, failed(name, `the radio refused the packet: ${name}`));
      }
    }
    pump();
  }

  function onPacket(p: MeshPacket): void {
    lastPacketMs = now();
    if (p.payload.kind !== 'decoded') return;
    const data = p.payload.data;
    if (data.portnum === PortNum.ROUTING_APP && data.requestId !== 0) {
      const job = jobsById.get(data.requestId);
      if (!job || job.settled) return;
      let reason: number;
      try {
        const r = decodeRouting(data.payload);
        reason = r.kind === 'error' ? r.errorReason : 0;
      } catch {
        // A Routing answer we cannot read still answers the request; do not treat it as delivered.
        reason = -1;
      }
      if (reason === 0) {
        counters.acked++;
        settle(job, { state: 'acked', airtimeMs: job.airtimeMs });
      } else {
        counters.nacked++;
        const name = reason === -1 ? 'ROUTING_UNREADABLE' : routingErrorName(reason);
        // The queueStatus may not have come yet (TOO_LARGE answers first).
        if (handed === job) handed = undefined;
        settle(job, failed(name, `the mesh did not deliver the packet: ${name}`));
      }
      pump();
      return;
    }
    if (data.portnum !== portnum || p.channel !== channelIndex) return;
    if (session?.myInfo && p.from === session.myInfo.myNodeNum) return;
    counters.packetsReceived++;
    packetStream.publish({
      payload: data.payload,
      rssiDbm: p.rxRssi,
      snrDb: p.rxSnr,
      receivedAtMs: clock.nowMs(),
      from: nodeIdOf(p.from),
    });
  }

  // ---------------------------------------------------------------- output

  function pump(): void {
    while (phase === 'ready' && port && !handed && queue.length > 0) {
      if (awaiting.size >= maxInFlight) return;
      if (deviceFree === 0) return;
      const job = queue[0]!;
      if (job.settled) {
        queue.shift();
        continue;
      }
      if (enforce && params && accountant) {
        const airtime = meshtasticAirtimeMs(job.dataBytes, params);
        const d = accountant.canTransmit(params.freqHz, airtime, now(), params.bandwidthHz);
        if (!d.allowed) {
          if (d.retryAfterMs === undefined) {
            // Never allowed (a frame longer than the dwell limit, a channel outside the band plan).
            queue.shift();
            const code = { 'duty-cycle': 'DUTY_CYCLE_EXCEEDED', 'dwell-time': 'DWELL_TIME_EXCEEDED' }[
              d.reason as string
            ];
            settle(job, failed(code ?? 'OUT_OF_BAND', d.message));
            continue;
          }
          holdUntilMs = now() + d.retryAfterMs;
          return;
        }
      }
      queue.shift();
      const id = nextPacketId();
      job.ids.push(id);
      remember(id, job);
      job.handedAtMs = now();
      handed = job;
      const packet = createMeshPacket({
        to: destination,
        channel: channelIndex,
        id,
        hopLimit,
        wantAck: job.wantAck,
        payload: { kind: 'decoded', data: createData({ portnum, payload: job.payload }) },
      });
      sendToRadio({ payload: { kind: 'packet', packet } }).catch(() => {
        // The port is lost; lose() already requeued the job.
      });
    }
  }

  // ---------------------------------------------------------------- the tick

  async function onTick(): Promise<void> {
    if (ticking) return;
    ticking = true;
    try {
      const t = now();
      if (phase === 'absent' && t >= reopenAtMs) {
        // Nothing to open until the device node is back; then open at once (the backoff has passed).
        if (!(await deviceIdentity(path))) {
          reopenAtMs = t + timing.presenceCheckMs;
          if (phase === 'absent') setStatus({ state: 'absent', reason: `${path} is not present` });
          return;
        }
        if (phase === 'absent') await connect();
        return;
      }
      if (!port) return;
      if (t - lastPresenceMs >= timing.presenceCheckMs) {
        lastPresenceMs = t;
        const opened = port;
        const id = await deviceIdentity(path);
        if (opened !== port) return;
        if (!sameDevice(id, identity)) {
          lose('absent', id ? `${path} is a different device now (replugged)` : `${path} disappeared`);
          return;
        }
      }
      if (decoder.pendingBytes() > 0 && t - lastByteMs >= timing.idleFlushMs) handleEvents(decoder.flush());
      if (phase === 'configuring' && session && t >= session.deadlineMs) {
        if (session.attempts >= timing.handshakeAttempts) {
          lose(
            'failed',
            'no config_complete from the radio',
            new MeshtasticError(
              'MT_HANDSHAKE_INCOMPLETE',
              `no Meshtastic config after ${session.attempts} want_config attempts (serial API disabled? another firmware?)`,
            ),
          );
          return;
        }
        await handshake('incomplete', session.attempts + 1);
        return;
      }
      if (phase !== 'ready') return;
      if (handed && t - handed.handedAtMs >= timing.queueStatusTimeoutMs) {
        // A silently rebooted radio transmits but answers nothing until a new want_config (M10).
        await handshake('no-queue-status');
        return;
      }
      if (timing.rehandshakeAfterSilenceMs > 0 && t - lastPacketMs >= timing.rehandshakeAfterSilenceMs) {
        await handshake('silence');
        return;
      }
      for (const job of new Set(awaiting.values())) {
        if (!job.settled && t >= job.ackDeadlineMs) settle(job, failed('ACK_TIMEOUT', 'no Routing answer in time'));
      }
      const pollFull = deviceFree === 0 && queue.length > 0 && t - lastPollMs >= timing.queueFullPollMs;
      if (t - lastWriteMs >= timing.heartbeatIntervalMs || pollFull) {
        lastPollMs = t;
        counters.heartbeats++;
        await sendToRadio({ payload: { kind: 'heartbeat', heartbeat: { nonce: 0 } } }).catch(() => undefined);
      }
      if (holdUntilMs > 0 && t >= holdUntilMs) {
        holdUntilMs = 0;
        pump();
      }
      if (awaiting.size < maxInFlight) pump();
    } catch (e) {
      log.error('meshtastic.tick_failed', { error: e instanceof Error ? e : String(e) });
    } finally {
      ticking = false;
    }
  }

  // ---------------------------------------------------------------- the Radio

  const radio: MeshtasticRadio = {
    kind: 'meshtastic',
    path,
    maxPayloadBytes: DATA_PAYLOAD_MAX_BYTES,
    open() {
      if (phase === 'closed') return Promise.reject(new RadioError('RADIO_CLOSED', 'this radio was closed'));
      if (!openPromise) {
        openPromise = new Promise<void>((resolve) => {
          firstAttemptDone = () => {
            firstAttemptDone = undefined;
            resolve();
          };
        });
        phase = 'absent';
        reopenAtMs = now();
        tick = setInterval(() => void onTick(), timing.tickMs);
        void onTick();
      }
      return openPromise;
    },
    async close() {
      if (phase === 'closed') return;
      const p = port;
      const wasReady = phase === 'ready' || phase === 'configuring';
      phase = 'closed';
      if (tick) clearInterval(tick);
      tick = undefined;
      port = undefined;
      if (p) {
        if (wasReady) {
          // Tell the radio we are leaving so it stops holding packets for us.
          const bye = encodeStreamFrame(encodeToRadio({ payload: { kind: 'disconnect', disconnect: true } }));
          await writeAll(p, bye, timing.writeTimeoutMs).catch(() => undefined);
        }
        await closeQuietly(p);
      }
      if (handed) settle(handed, failed('RADIO_CLOSED', 'the radio was closed before the packet was accepted'));
      handed = undefined;
      for (const job of new Set(awaiting.values())) settle(job, failed('RADIO_CLOSED', 'closed before the ACK came'));
      for (const job of queue.splice(0)) settle(job, failed('RADIO_CLOSED', 'the radio was closed'));
      setStatus({ state: 'absent', reason: 'closed' });
      firstAttemptDone?.();
      statuses.close();
      packetStream.close();
    },
    status: () => status,
    statusChanges: () => statuses.subscribe(() => status),
    send(payload: Uint8Array, sendOptions: SendOptions = {}) {
      if (phase === 'closed') return Promise.resolve(failed('RADIO_CLOSED', 'the radio is closed'));
      if (payload.length > DATA_PAYLOAD_MAX_BYTES) {
        return Promise.resolve(
          failed(
            'PAYLOAD_TOO_LARGE',
            `a Meshtastic payload is at most ${DATA_PAYLOAD_MAX_BYTES} bytes, got ${payload.length}`,
          ),
        );
      }
      const dataBytes = encodeData(createData({ portnum, payload })).length;
      if (dataBytes > DATA_ENCODED_MAX_BYTES) {
        return Promise.resolve(failed('PAYLOAD_TOO_LARGE', `the encoded Data would be ${dataBytes} bytes`));
      }
      if (queue.length >= maxQueued) {
        return Promise.resolve(failed('SEND_QUEUE_FULL', `${maxQueued} packets are already waiting`));
      }
      if (sendOptions.signal?.aborted) return Promise.resolve(failed('SEND_ABORTED', 'aborted before queueing'));
      return new Promise<SendOutcome>((resolve) => {
        const job: Job = {
          payload: Uint8Array.from(payload),
          wantAck: sendOptions.wantAck ?? wantAckByDefault,
          dataBytes,
          resolve,
          settled: false,
          ids: [],
          handedAtMs: 0,
          ackDeadlineMs: Number.POSITIVE_INFINITY,
          airtimeMs: 0,
          ...(sendOptions.signal ? { signal: sendOptions.signal } : {}),
        };
        if (sendOptions.signal) {
          job.onAbort = () => {
            // Only a packet still waiting here can be taken back; once handed over it may go out anyway.
            const i = queue.indexOf(job);
            if (i >= 0) {
              queue.splice(i, 1);
              settle(job, failed('SEND_ABORTED', 'aborted while waiting in the queue'));
            } else settle(job, failed('SEND_ABORTED', 'aborted; the radio may still transmit it'));
          };
          sendOptions.signal.addEventListener('abort', job.onAbort, { once: true });
        }
        queue.push(job);
        pump();
      });
    },
    packets: () => packetStream.subscribe(),
    airtime(): AirtimeReport {
      if (!accountant) return { totalMs: 0, windowMs: 0, budgetUsed: 0 };
      return accountant.usage(now());
    },
    diagnostics(): MeshtasticDiagnostics {
      const s = session;
      const own = s?.ownNode;
      const lora = s?.lora;
      return {
        ...(s?.myInfo && own?.user
          ? {
              node: {
                num: s.myInfo.myNodeNum,
                id: own.user.id,
                longName: own.user.longName,
                shortName: own.user.shortName,
                firmware: s.metadata?.firmwareVersion ?? 'unknown',
                hwModel: own.user.hwModel,
                rebootCount: s.myInfo.rebootCount,
                region: REGIONS[lora?.region ?? 0]?.name ?? `REGION_${lora?.region}`,
                preset:
                  lora?.usePreset === false ? 'Custom' : (MODEM_PRESETS[lora?.modemPreset ?? 0]?.name ?? 'Invalid'),
                hopLimit: lora?.hopLimit ?? 0,
              },
            }
          : {}),
        ...(params ? { params } : {}),
        queued: queue.length,
        inFlight: new Set(awaiting.values()).size + (handed ? 1 : 0),
        ...(deviceFree === undefined ? {} : { deviceQueueFree: deviceFree }),
        counters: { ...counters },
        rehandshakes: { ...rehandshakes },
      };
    },
  };
  return radio;
}
