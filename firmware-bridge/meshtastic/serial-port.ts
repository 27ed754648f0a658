// Opening a Meshtastic radio's serial port: 115200 8N1, exclusive, without adding HUPCL, after clearing
// HUPCL with stty so closing the port does not drop DTR and reset an ESP32 board (M4). Shared by the
// driver and the probe; the identity of the device node lets them notice an unplug the read side misses.

import { spawn } from 'node:child_process';
import { stat } from 'node:fs/promises';
import { SerialPort } from 'serialport';
import type { Logger } from '../../protocol/log.ts';
import { RadioError } from '../errors.ts';

/** What identifies the device node behind a path: a replugged device is a new node even at the same path. */
export interface DeviceIdentity {
  readonly dev: number;
  readonly ino: number;
  readonly rdev: number;
}

/** The identity of `path` now (following symlinks), or undefined when it does not exist. */
export async function deviceIdentity(path: string): Promise<DeviceIdentity | undefined> {
  try {
    const s = await stat(path);
    return { dev: s.dev, ino: s.ino, rdev: s.rdev };
  } catch {
    return undefined;
  }
}

export const sameDevice = (a: DeviceIdentity | undefined, b: DeviceIdentity | undefined): boolean =>
  a !== undefined && b !== undefined && a.dev === b.dev && a.ino === b.ino && a.rdev === b.rdev;

/**
 * Clears HUPCL on `path` with `stty -F PATH -hupcl` (what the Python client does with termios), so that
 * closing the port later leaves DTR alone. serialport's `hupcl: false` only avoids *setting* the flag;
 * it cannot clear one the tty already has. Returns false (and logs why) when stty is missing or fails.
 */
export async function clearHupcl(path: string, log: Logger, timeoutMs = 2_000): Promise<boolean> {
  return new Promise((resolve) => {
    // The path goes as one argv element, never through a shell.
    const child = spawn('stty', ['-F', path, '-hupcl'], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (d: string) => {
      stderr = (stderr + d).slice(-512);
    });
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
    }, timeoutMs);
    child.once('error', (e) => {
      clearTimeout(timer);
      log.warning('meshtastic.hupcl_not_cleared', { path, error: e.message });
      resolve(false);
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      if (code !== 0) log.warning('meshtastic.hupcl_not_cleared', { path, stderr: stderr.trim(), code });
      resolve(code === 0);
    });
  });
}

/** Maps an open failure to RadioError PORT_FAILED with advice, or undefined when the device is simply absent. */
export function openFailure(path: string, e: unknown): RadioError | undefined {
  const message = e instanceof Error ? e.message : String(e);
  if (/ENOENT|No such file/i.test(message)) return undefined;
  if (/EACCES|Permission denied/i.test(message)) {
    return new RadioError('PORT_FAILED', `permission denied opening ${path}: add the service user to group dialout`, {
      cause: e,
      details: { path },
    });
  }
  if (/EBUSY|lock|Resource temporarily unavailable/i.test(message)) {
    return new RadioError('PORT_FAILED', `${path} is in use by another program (a phone app bridge, ModemManager?)`, {
      cause: e,
      details: { path },
    });
  }
  return new RadioError('PORT_FAILED', `cannot open ${path}: ${message}`, { cause: e, details: { path } });
}

/**
 * Opens `path` and resolves with the open port; rejects with the raw error (see openFailure). The port
 * is opened by us, never by a helper that might close a port that never opened (M6).
 */
export function openMeshtasticPort(path: string, baudRate = 115_200): Promise<SerialPort> {
  return new Promise((resolve, reject) => {
    const port = new SerialPort({
      path,
      baudRate,
      dataBits: 8,
      stopBits: 1,
      parity: 'none',
      rtscts: false,
      xon: false,
      xoff: false,
      hupcl: false,
      lock: true,
      autoOpen: false,
    });
    port.open((e) => (e ? reject(e) : resolve(port)));
  });
}

/** Writes and waits until the bytes left the process; rejects on error or after `timeoutMs` (a dead port). */
export function writeAll(port: SerialPort, bytes: Uint8Array, timeoutMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`write stalled for ${timeoutMs} ms`)), timeoutMs);
    port.write(Buffer.from(bytes), (e) => {
      if (e) {
        clearTimeout(timer);
        reject(e);
        return;
      }
      port.drain((d) => {
        clearTimeout(timer);
        if (d) reject(d);
        else resolve();
      });
    });
  });
}

/** Closes the port, swallowing errors (it may already be gone). */
export function closeQuietly(port: SerialPort): Promise<void> {
  return new Promise((resolve) => {
    port.removeAllListeners('data');
    if (!port.isOpen) return resolve();
    port.close(() => resolve());
  });
}
