// A minimal stream-API host for emulator tests: opens a pty through serialport, writes ToRadio frames
// and records what comes back (decoded FromRadio frames and console text), with awaitable conditions.

import { SerialPort } from 'serialport';
import {
  decodeFromRadio,
  encodeToRadio,
  type FromRadio,
  isPlausibleFromRadio,
  type ToRadio,
} from '../../firmware-bridge/meshtastic/protobuf.ts';
import { createStreamDecoder, encodeStreamFrame } from '../../firmware-bridge/meshtastic/stream-framer.ts';

export interface RawHost {
  readonly frames: FromRadio[];
  readonly bodies: Uint8Array[];
  text(): string;
  readonly rawBytes: number[];
  send(m: ToRadio): Promise<void>;
  write(bytes: Uint8Array): Promise<void>;
  /** Resolves once `predicate()` holds (checked after every chunk); rejects after `timeoutMs`. */
  until(predicate: () => boolean, what: string, timeoutMs?: number): Promise<void>;
  /** Index of the next frame to look at, for tests that wait for "a new frame such that …". */
  mark(): number;
  close(): Promise<void>;
}

export async function openRawHost(path: string): Promise<RawHost> {
  const port = new SerialPort({ path, baudRate: 115_200, autoOpen: false, hupcl: false });
  await new Promise<void>((resolve, reject) => port.open((e) => (e ? reject(e) : resolve())));
  const decoder = createStreamDecoder({ accept: isPlausibleFromRadio });
  const frames: FromRadio[] = [];
  const bodies: Uint8Array[] = [];
  const rawBytes: number[] = [];
  let text = '';
  const waiters = new Set<() => void>();
  port.on('data', (chunk: Buffer) => {
    rawBytes.push(...chunk);
    for (const ev of decoder.push(new Uint8Array(chunk))) {
      if (ev.kind === 'frame') {
        bodies.push(ev.body);
        frames.push(decodeFromRadio(ev.body));
      } else if (ev.kind === 'debug') text += ev.text;
    }
    for (const w of [...waiters]) w();
  });
  port.on('error', () => {
    // The emulator unplugging makes the pty fail; tests look at what arrived before.
  });
  const write = (bytes: Uint8Array) =>
    new Promise<void>((resolve, reject) =>
      port.write(Buffer.from(bytes), (e) => (e ? reject(e) : port.drain(() => resolve()))),
    );
  return {
    frames,
    bodies,
    rawBytes,
    text: () => text,
    send: (m) => write(encodeStreamFrame(encodeToRadio(m))),
    write,
    mark: () => frames.length,
    until(predicate, what, timeoutMs = 10_000) {
      if (predicate()) return Promise.resolve();
      return new Promise<void>((resolve, reject) => {
        const check = () => {
          if (!predicate()) return;
          waiters.delete(check);
          clearTimeout(timer);
          resolve();
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`timed out waiting for ${what}`));
        }, timeoutMs);
        waiters.add(check);
      });
    },
    close: () =>
      new Promise<void>((resolve) => {
        if (!port.isOpen) return resolve();
        port.close(() => resolve());
      }),
  };
}
