// Shared fixtures for radio tests: temp dirs for pty links, a raw KISS host on a real serial port,
// waits on driver status and packets, and a logger whose lines can be awaited.

import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SerialPort } from 'serialport';
import type { RadioStatus, ReceivedPacket } from '../../firmware-bridge/radio.ts';
import { type DeviceMessage, decodeDeviceMessage } from '../../firmware-bridge/rnode/commands.ts';
import { createKissDecoder, encodeKissFrame, type KissFrame } from '../../firmware-bridge/rnode/kiss.ts';
import { createLogger, type Logger } from '../../protocol/log.ts';

/** A temp directory removed by the returned cleanup. */
export async function tempDir(prefix = 'outpost-radio-'): Promise<{ dir: string; cleanup: () => Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  return { dir, cleanup: () => rm(dir, { recursive: true, force: true }) };
}

/** Resolves with the first value of `iterable` matching `predicate`; rejects after `timeoutMs`. */
export async function firstMatch<T>(
  iterable: AsyncIterable<T>,
  predicate: (v: T) => boolean,
  timeoutMs: number,
  what = 'value',
): Promise<T> {
  const it = iterable[Symbol.asyncIterator]();
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)), timeoutMs);
  });
  try {
    for (;;) {
      const r = await Promise.race([it.next(), timeout]);
      if (r.done) throw new Error(`stream ended while waiting for ${what}`);
      if (predicate(r.value)) return r.value;
    }
  } finally {
    clearTimeout(timer);
    await it.return?.();
  }
}

export function waitForStatus(
  radio: { statusChanges(): AsyncIterable<RadioStatus> },
  predicate: (s: RadioStatus) => boolean,
  timeoutMs = 10_000,
  what = 'status',
): Promise<RadioStatus> {
  return firstMatch(radio.statusChanges(), predicate, timeoutMs, what);
}

export const isState =
  (state: RadioStatus['state'], code?: string) =>
  (s: RadioStatus): boolean =>
    s.state === state && (code === undefined || (s.state === 'error' && s.code === code));

/** Collects packets from a radio from now on. */
export function collectPackets(radio: { packets(): AsyncIterable<ReceivedPacket> }): {
  readonly got: ReceivedPacket[];
  waitForCount(n: number, timeoutMs?: number): Promise<void>;
} {
  const got: ReceivedPacket[] = [];
  const waiters: (() => void)[] = [];
  void (async () => {
    for await (const p of radio.packets()) {
      got.push(p);
      for (const w of waiters.splice(0)) w();
    }
  })();
  return {
    got,
    async waitForCount(n, timeoutMs = 10_000) {
      const deadline = Date.now() + timeoutMs;
      while (got.length < n) {
        const left = deadline - Date.now();
        if (left <= 0) throw new Error(`timed out with ${got.length}/${n} packets`);
        await new Promise<void>((resolve) => {
          const t = setTimeout(resolve, left);
          waiters.push(() => {
            clearTimeout(t);
            resolve();
          });
        });
      }
    },
  };
}

/** A logger whose events can be awaited by name. */
export function createWatchLogger(): {
  logger: Logger;
  lines: string[];
  waitForEvent(event: string, timeoutMs?: number): Promise<string>;
} {
  const lines: string[] = [];
  const waiters: { event: string; resolve: (l: string) => void }[] = [];
  const logger = createLogger({
    level: 'debug',
    format: 'json',
    sink: (line) => {
      lines.push(line);
      const event = (JSON.parse(line) as { event: string }).event;
      for (const w of waiters.filter((x) => x.event === event)) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve(line);
      }
    },
  });
  return {
    logger,
    lines,
    waitForEvent(event, timeoutMs = 10_000) {
      return new Promise((resolve, reject) => {
        const t = setTimeout(() => reject(new Error(`timed out waiting for log event ${event}`)), timeoutMs);
        waiters.push({
          event,
          resolve: (l) => {
            clearTimeout(t);
            resolve(l);
          },
        });
      });
    },
  };
}

/** A bare KISS host on a real serial port, for testing the emulator without the driver. */
export interface RawKissHost {
  readonly frames: KissFrame[];
  write(command: number, data?: Uint8Array | number[]): Promise<void>;
  writeRaw(bytes: Uint8Array | number[]): Promise<void>;
  /** Waits for a device frame (seen since the last `mark()`) whose decoded message matches. */
  expect(predicate: (m: DeviceMessage) => boolean, timeoutMs?: number): Promise<DeviceMessage>;
  /** Messages decoded since the last mark(). */
  messages(): DeviceMessage[];
  mark(): void;
  close(): Promise<void>;
}

export async function openRawKissHost(path: string): Promise<RawKissHost> {
  const port = new SerialPort({ path, baudRate: 115_200, autoOpen: false });
  await new Promise<void>((resolve, reject) => port.open((e) => (e ? reject(e) : resolve())));
  const decoder = createKissDecoder();
  const frames: KissFrame[] = [];
  let markAt = 0;
  const listeners = new Set<() => void>();
  port.on('data', (chunk: Buffer) => {
    for (const ev of decoder.push(chunk)) if (ev.type === 'frame') frames.push(ev.frame);
    for (const l of listeners) l();
  });
  const decoded = () =>
    frames.slice(markAt).flatMap((f) => {
      try {
        return [decodeDeviceMessage(f)];
      } catch {
        return [];
      }
    });
  const writeRaw = (bytes: Uint8Array | number[]) =>
    new Promise<void>((resolve, reject) => port.write(Buffer.from(bytes), (e) => (e ? reject(e) : resolve())));
  return {
    frames,
    write: (command, data = []) => writeRaw(encodeKissFrame(command, Uint8Array.from(data))),
    writeRaw,
    messages: decoded,
    mark() {
      markAt = frames.length;
    },
    expect(predicate, timeoutMs = 2_000) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const m = decoded().find(predicate);
          if (m) {
            listeners.delete(check);
            clearTimeout(t);
            resolve(m);
          }
        };
        const t = setTimeout(() => {
          listeners.delete(check);
          reject(
            new Error(
              `no matching device frame within ${timeoutMs} ms; saw ${JSON.stringify(decoded().map((m) => m.kind))}`,
            ),
          );
        }, timeoutMs);
        listeners.add(check);
        check();
      });
    },
    close: () => new Promise<void>((resolve) => (port.isOpen ? port.close(() => resolve()) : resolve())),
  };
}
