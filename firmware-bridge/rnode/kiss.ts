// KISS framing as RNode speaks it (RADIO_PROTOCOLS §1.1): FEND-delimited frames, a raw command byte,
// escaped arguments. Pure: bytes in, frames and typed violations out; no streams, timers or logs.

import { RadioError } from '../errors.ts';

export const FEND = 0xc0;
export const FESC = 0xdb;
export const TFEND = 0xdc;
export const TFESC = 0xdd;
/** Largest argument the firmware and Reticulum accept in one frame (firmware MTU). */
export const KISS_MAX_DATA_BYTES = 508;

export interface KissFrame {
  /** Command byte, sent raw (never escaped, never FEND). */
  readonly command: number;
  /** Un-escaped argument bytes. */
  readonly data: Uint8Array;
}

/** Escapes FESC first and FEND second, as RNS does (the other order would double-escape). */
export function escapeKiss(data: Uint8Array): Uint8Array {
  let extra = 0;
  for (const b of data) if (b === FEND || b === FESC) extra++;
  if (extra === 0) return Uint8Array.from(data);
  const out = new Uint8Array(data.length + extra);
  let j = 0;
  for (const b of data) {
    if (b === FESC) {
      out[j++] = FESC;
      out[j++] = TFESC;
    } else if (b === FEND) {
      out[j++] = FESC;
      out[j++] = TFEND;
    } else out[j++] = b;
  }
  return out;
}

/** Reverses escapeKiss. Throws KISS_BAD_ESCAPE for FESC not followed by TFEND/TFESC, KISS_BAD_FRAME for a raw FEND. */
export function unescapeKiss(data: Uint8Array): Uint8Array {
  const out = new Uint8Array(data.length);
  let j = 0;
  for (let i = 0; i < data.length; i++) {
    const b = data[i]!;
    if (b === FEND) {
      throw new RadioError('KISS_BAD_FRAME', 'unescaped FEND inside a frame', { details: { offset: i } });
    }
    if (b !== FESC) {
      out[j++] = b;
      continue;
    }
    const next = data[i + 1];
    if (next === TFEND) out[j++] = FEND;
    else if (next === TFESC) out[j++] = FESC;
    else {
      throw new RadioError(
        'KISS_BAD_ESCAPE',
        `FESC followed by ${next === undefined ? 'end of frame' : `0x${next.toString(16)}`}`,
        {
          details: { offset: i },
        },
      );
    }
    i++;
  }
  return out.slice(0, j);
}

function checkCommand(command: number): void {
  if (!Number.isInteger(command) || command < 0 || command > 0xff || command === FEND) {
    throw new RadioError('KISS_BAD_FRAME', `a KISS command is one byte other than FEND, got ${command}`, {
      details: { command },
    });
  }
}

/**
 * Frames `data` as `FEND command escaped(data) FEND`. Throws KISS_BAD_FRAME for a command that is not a
 * byte or is FEND, and KISS_FRAME_TOO_LONG above `maxDataBytes` (default 508).
 */
export function encodeKissFrame(
  command: number,
  data: Uint8Array = new Uint8Array(0),
  maxDataBytes = KISS_MAX_DATA_BYTES,
): Uint8Array {
  checkCommand(command);
  if (data.length > maxDataBytes) {
    throw new RadioError('KISS_FRAME_TOO_LONG', `frame argument of ${data.length} bytes exceeds ${maxDataBytes}`, {
      details: { length: data.length, maxDataBytes },
    });
  }
  const body = escapeKiss(data);
  const out = new Uint8Array(body.length + 3);
  out[0] = FEND;
  out[1] = command;
  out.set(body, 2);
  out[out.length - 1] = FEND;
  return out;
}

/** Frames several commands in one buffer, sharing the FEND between neighbours (as RNS writes its detect burst). */
export function encodeKissFrames(frames: readonly KissFrame[], maxDataBytes = KISS_MAX_DATA_BYTES): Uint8Array {
  const parts = frames.map((f) => encodeKissFrame(f.command, f.data, maxDataBytes).subarray(0, -1));
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0) + 1);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  out[at] = FEND;
  return out;
}

/**
 * Decodes exactly one complete frame `FEND command escaped-data FEND` (extra leading/trailing FENDs allowed).
 * Throws KISS_BAD_FRAME, KISS_BAD_ESCAPE or KISS_FRAME_TOO_LONG.
 */
export function decodeKissFrame(bytes: Uint8Array, maxDataBytes = KISS_MAX_DATA_BYTES): KissFrame {
  let start = 0;
  let end = bytes.length;
  if (bytes[0] !== FEND || bytes[end - 1] !== FEND || end < 3) {
    throw new RadioError('KISS_BAD_FRAME', 'a frame starts and ends with FEND and holds a command byte');
  }
  while (start < end && bytes[start] === FEND) start++;
  while (end > start && bytes[end - 1] === FEND) end--;
  if (start === end) throw new RadioError('KISS_BAD_FRAME', 'empty frame');
  const command = bytes[start]!;
  const data = unescapeKiss(bytes.subarray(start + 1, end));
  if (data.length > maxDataBytes) {
    throw new RadioError('KISS_FRAME_TOO_LONG', `frame argument of ${data.length} bytes exceeds ${maxDataBytes}`, {
      details: { length: data.length, maxDataBytes },
    });
  }
  return { command, data };
}

export type KissEvent =
  | { readonly type: 'frame'; readonly frame: KissFrame }
  /** A frame was dropped for a protocol violation; decoding continues at the next FEND. */
  | { readonly type: 'violation'; readonly error: RadioError };

export interface KissDecoder {
  /** Feeds bytes; returns the frames completed and the violations seen, in order. Never throws. */
  push(chunk: Uint8Array): KissEvent[];
  /** Drops any partial frame and waits for the next FEND (the 100 ms silence rule lives in the driver). */
  reset(): void;
  /** True while a frame has started (command byte seen) but not ended. */
  hasPartialFrame(): boolean;
  /** Bytes outside any frame seen so far (before the first FEND, or after a violation). */
  garbageBytes(): number;
}

export interface KissDecoderOptions {
  /** Largest argument kept; longer frames are dropped with KISS_FRAME_TOO_LONG (default 508). */
  readonly maxDataBytes?: number;
}

/**
 * A streaming decoder: any FEND ends the current frame and starts the next; the first byte after it is
 * the command; FEND FEND is an empty frame and yields nothing. Memory is bounded by maxDataBytes.
 */
export function createKissDecoder(options: KissDecoderOptions = {}): KissDecoder {
  const max = options.maxDataBytes ?? KISS_MAX_DATA_BYTES;
  const buf = new Uint8Array(max);
  let state: 'hunting' | 'frame' | 'discarding' = 'hunting';
  let command: number | undefined;
  let length = 0;
  let escaped = false;
  let garbage = 0;

  const startFrame = () => {
    state = 'frame';
    command = undefined;
    length = 0;
    escaped = false;
  };

  return {
    push(chunk) {
      const events: KissEvent[] = [];
      const violate = (error: RadioError) => {
        events.push({ type: 'violation', error });
        state = 'discarding';
      };
      for (const b of chunk) {
        if (b === FEND) {
          if (state === 'frame' && command !== undefined) {
            if (escaped) {
              events.push({
                type: 'violation',
                error: new RadioError('KISS_BAD_ESCAPE', 'frame ended right after FESC', { details: { command } }),
              });
            } else {
              events.push({ type: 'frame', frame: { command, data: buf.slice(0, length) } });
            }
          }
          startFrame();
          continue;
        }
        if (state !== 'frame') {
          garbage++;
          continue;
        }
        if (command === undefined) {
          command = b;
          continue;
        }
        let value = b;
        if (escaped) {
          escaped = false;
          if (b === TFEND) value = FEND;
          else if (b === TFESC) value = FESC;
          else {
            violate(
              new RadioError('KISS_BAD_ESCAPE', `FESC followed by 0x${b.toString(16)}`, {
                details: { command, offset: length },
              }),
            );
            continue;
          }
        } else if (b === FESC) {
          escaped = true;
          continue;
        }
        if (length >= max) {
          violate(
            new RadioError('KISS_FRAME_TOO_LONG', `frame argument exceeds ${max} bytes`, {
              details: { command, maxDataBytes: max },
            }),
          );
          continue;
        }
        buf[length++] = value;
      }
      return events;
    },
    reset() {
      state = 'discarding';
      command = undefined;
      length = 0;
      escaped = false;
    },
    hasPartialFrame: () => state === 'frame' && command !== undefined,
    garbageBytes: () => garbage,
  };
}
