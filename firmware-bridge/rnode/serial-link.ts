// One open serial connection to an RNode: KISS decoding with the partial-frame silence rule, typed
// device messages, bounded waits, and a single "lost" signal for every way a port can die. Also the
// detect handshake shared by the driver and `probeRNode`.

import { access } from 'node:fs/promises';
import { SerialPort } from 'serialport';
import type { Logger } from '../../protocol/log.ts';
import { RadioError } from '../errors.ts';
import { type DeviceMessage, decodeDeviceMessage, encodeHostMessage, type HostMessage } from './commands.ts';
import { createKissDecoder, encodeKissFrame, encodeKissFrames } from './kiss.ts';

export interface LinkLost {
  /** `absent`: the device went away (unplug, EIO, path gone); `failed`: it is there but unusable. */
  readonly kind: 'absent' | 'failed';
  readonly reason: string;
  readonly error?: RadioError;
}

export interface SerialLink {
  /** Resolves once, when the link dies for any reason (never rejects). */
  readonly lost: Promise<LinkLost>;
  isLost(): boolean;
  markLost(lost: LinkLost): void;
  /** Writes bytes; throws RadioError PORT_FAILED (and marks the link lost) when the write fails or stalls. */
  write(bytes: Uint8Array): Promise<void>;
  send(...messages: HostMessage[]): Promise<void>;
  /** Called for every decoded device message, in order; returns a function that unsubscribes. */
  onMessage(handler: (m: DeviceMessage) => void): () => void;
  /**
   * Resolves true as soon as `predicate()` holds (checked now and after each message), false after
   * `timeoutMs`; rejects with the lost reason's error if the link dies first.
   */
  waitFor(predicate: () => boolean, timeoutMs: number): Promise<boolean>;
  /** Sleeps `ms`; rejects if the link dies first. */
  sleep(ms: number): Promise<void>;
  /** Closes the port (idempotent). */
  close(): Promise<void>;
}

export interface SerialLinkOptions {
  readonly path: string;
  readonly log: Logger;
  /** A partial frame is dropped after this much silence (default 100 ms, as RNS over USB). */
  readonly partialFrameTimeoutMs?: number;
  /** A write that does not complete within this is a dead port (default 2000 ms). */
  readonly writeTimeoutMs?: number;
}

/** True when `path` exists (a by-id symlink disappears on unplug). */
export async function pathExists(path: string): Promise<boolean> {
  try {
    await access(path);
    return true;
  } catch {
    return false;
  }
}

function openError(path: string, e: unknown): LinkLost {
  const message = e instanceof Error ? e.message : String(e);
  if (/ENOENT|No such file/i.test(message)) return { kind: 'absent', reason: `${path} is not present` };
  if (/EACCES|Permission denied/i.test(message)) {
    return {
      kind: 'failed',
      reason: `permission denied on ${path}`,
      error: new RadioError(
        'PORT_FAILED',
        `permission denied opening ${path}: add the service user to the dialout group (or the group owning the device)`,
        { cause: e, details: { path } },
      ),
    };
  }
  if (/EBUSY|lock|Resource temporarily unavailable/i.test(message)) {
    return {
      kind: 'failed',
      reason: `${path} is in use`,
      error: new RadioError('PORT_FAILED', `${path} is in use by another program (ModemManager, a second rnsd?)`, {
        cause: e,
        details: { path },
      }),
    };
  }
  return {
    kind: 'failed',
    reason: message,
    error: new RadioError('PORT_FAILED', `cannot open ${path}: ${message}`, { cause: e, details: { path } }),
  };
}

/** Opens `path` at 115200 8N1 without flow control. Resolves with a link, or with the reason it could not open. */
export async function openSerialLink(options: SerialLinkOptions): Promise<SerialLink | LinkLost> {
  const { path, log } = options;
  if (!(await pathExists(path))) return { kind: 'absent', reason: `${path} is not present` };
  const port = new SerialPort({
    path,
    baudRate: 115_200,
    dataBits: 8,
    stopBits: 1,
    parity: 'none',
    rtscts: false,
    xon: false,
    xoff: false,
    // Exclusive (TIOCEXCL): a second program cannot open the port and interleave frames.
    lock: true,
    autoOpen: false,
  });
  const opened = await new Promise<unknown>((resolve) => port.open((e) => resolve(e ?? undefined)));
  if (opened !== undefined) return openError(path, opened);

  const partialMs = options.partialFrameTimeoutMs ?? 100;
  const writeTimeoutMs = options.writeTimeoutMs ?? 2_000;
  const decoder = createKissDecoder();
  const handlers = new Set<(m: DeviceMessage) => void>();
  const waiters = new Set<() => void>();
  const pendingWrites = new Set<() => void>();
  let lostValue: LinkLost | undefined;
  let resolveLost!: (l: LinkLost) => void;
  const lost = new Promise<LinkLost>((r) => {
    resolveLost = r;
  });
  let partialTimer: NodeJS.Timeout | undefined;
  let closing = false;

  const lostError = (l: LinkLost) => l.error ?? new RadioError('PORT_FAILED', l.reason, { details: { path } });

  const link: SerialLink = {
    lost,
    isLost: () => lostValue !== undefined,
    markLost(l) {
      if (lostValue) return;
      lostValue = l;
      if (partialTimer) clearTimeout(partialTimer);
      resolveLost(l);
      for (const w of [...waiters]) w();
      for (const w of [...pendingWrites]) w();
    },
    async write(bytes) {
      if (lostValue) throw lostError(lostValue);
      // After an unplug the write callback may never run; a stalled write is a dead port.
      const result = await new Promise<Error | 'timeout' | undefined>((resolve) => {
        const finish = (r: Error | 'timeout' | undefined) => {
          clearTimeout(timer);
          pendingWrites.delete(onLost);
          resolve(r);
        };
        const onLost = () => finish(new Error('link lost'));
        const timer = setTimeout(() => finish('timeout'), writeTimeoutMs);
        pendingWrites.add(onLost);
        port.write(Buffer.from(bytes), (e) => finish(e ?? undefined));
      });
      if (result === undefined) return;
      const l: LinkLost =
        result === 'timeout'
          ? { kind: 'absent', reason: `write to ${path} stalled` }
          : { kind: 'absent', reason: `write to ${path} failed: ${result.message}` };
      link.markLost(lostValue ?? l);
      throw lostError(lostValue ?? l);
    },
    async send(...messages) {
      const frames = messages.map(encodeHostMessage);
      await link.write(
        frames.length === 1 ? encodeKissFrame(frames[0]!.command, frames[0]!.data) : encodeKissFrames(frames),
      );
    },
    onMessage(handler) {
      handlers.add(handler);
      return () => handlers.delete(handler);
    },
    waitFor(predicate, timeoutMs) {
      return new Promise<boolean>((resolve, reject) => {
        if (lostValue) return reject(lostError(lostValue));
        if (predicate()) return resolve(true);
        const check = () => {
          if (lostValue) {
            done();
            reject(lostError(lostValue));
          } else if (predicate()) {
            done();
            resolve(true);
          }
        };
        const timer = setTimeout(() => {
          done();
          resolve(false);
        }, timeoutMs);
        const done = () => {
          clearTimeout(timer);
          waiters.delete(check);
        };
        waiters.add(check);
      });
    },
    sleep(ms) {
      return link.waitFor(() => false, ms).then(() => undefined);
    },
    async close() {
      if (closing) return;
      closing = true;
      link.markLost(lostValue ?? { kind: 'failed', reason: 'closed' });
      port.removeAllListeners('data');
      if (port.isOpen) await new Promise<void>((r) => port.close(() => r()));
    },
  };

  port.on('data', (chunk: Buffer) => {
    if (lostValue) return;
    if (partialTimer) clearTimeout(partialTimer);
    partialTimer = undefined;
    for (const ev of decoder.push(chunk)) {
      if (ev.type === 'violation') {
        log.debug('rnode.kiss_violation', { code: ev.error.code });
        continue;
      }
      let m: DeviceMessage;
      try {
        m = decodeDeviceMessage(ev.frame);
      } catch (e) {
        log.debug('rnode.bad_frame', { error: e });
        continue;
      }
      for (const h of [...handlers]) h(m);
      for (const w of [...waiters]) w();
    }
    if (decoder.hasPartialFrame()) {
      partialTimer = setTimeout(() => {
        partialTimer = undefined;
        decoder.reset();
        log.debug('rnode.partial_frame_discarded', { silenceMs: partialMs });
      }, partialMs);
    }
  });
  port.on('error', (e) => link.markLost({ kind: 'absent', reason: `port error: ${e.message}` }));
  port.on('close', (e: unknown) => {
    if (closing) return;
    const disconnected = (e as { disconnected?: boolean } | null)?.disconnected === true;
    link.markLost({ kind: 'absent', reason: disconnected ? 'device disconnected' : 'port closed' });
  });
  return link;
}

/** What the detect burst learned about a device. */
export interface DeviceIdentity {
  readonly firmware: { readonly major: number; readonly minor: number };
  readonly platform: number | undefined;
  readonly mcu: number | undefined;
}

export interface DetectTiming {
  /** Per attempt, how long to wait for DETECT and FW_VERSION replies (RNS: 200 ms; default 1000). */
  readonly detectTimeoutMs: number;
  /** Attempts before giving up (R1: RNS tries once; default 5). */
  readonly detectAttempts: number;
}

/**
 * Sends the detect burst (DETECT, FW_VERSION, PLATFORM, MCU in one write) until the device answers,
 * resending at once when the device announces a reboot. Resolves the identity, or undefined when no
 * attempt got an answer; rejects if the link dies.
 */
export async function detectDevice(
  link: SerialLink,
  timing: DetectTiming,
  log: Logger,
): Promise<DeviceIdentity | undefined> {
  let detected = false;
  let firmware: DeviceIdentity['firmware'] | undefined;
  let platform: number | undefined;
  let mcu: number | undefined;
  let rebooted = false;
  const unsubscribe = link.onMessage((m) => {
    if (m.kind === 'detect' && m.ok) detected = true;
    else if (m.kind === 'firmwareVersion') firmware = { major: m.major, minor: m.minor };
    else if (m.kind === 'platform') platform = m.platform;
    else if (m.kind === 'mcu') mcu = m.mcu;
    else if (m.kind === 'reset') rebooted = true;
  });
  try {
    return await detectAttempts();
  } finally {
    unsubscribe();
  }

  async function detectAttempts(): Promise<DeviceIdentity | undefined> {
    for (let attempt = 1; attempt <= timing.detectAttempts; attempt++) {
      rebooted = false;
      log.debug('rnode.detect', { attempt });
      await link.send(
        { kind: 'detect' },
        { kind: 'query', what: 'firmwareVersion' },
        { kind: 'query', what: 'platform' },
        { kind: 'query', what: 'mcu' },
      );
      await link.waitFor(() => (detected && firmware !== undefined) || rebooted, timing.detectTimeoutMs);
      if (detected && firmware) {
        // Platform and MCU normally arrive in the same burst; give them a moment but do not insist.
        await link.waitFor(() => platform !== undefined && mcu !== undefined, Math.min(100, timing.detectTimeoutMs));
        return { firmware, platform, mcu };
      }
    }
    return undefined;
  }
}
