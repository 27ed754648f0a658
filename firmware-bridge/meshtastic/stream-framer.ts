// Meshtastic stream-API framing (0x94 0xC3, 16-bit big-endian length, protobuf body): a pure encoder
// and a streaming decoder that separates frames from the unframed debug text the firmware prints.
//
// Why the decoder backtracks. The stream has no escaping and no CRC, so "0x94 0xC3 <len>" may appear
// inside a frame body (binary payloads, M2) and inside the text around frames (a UTF-8 log line, or
// garbage after a reboot, M1/M10). Two rules keep every real frame:
//  1. A body is opaque once a header is taken: bytes 0x94 0xC3 inside it are never looked at. This is
//     what the firmware does and what the JS client got wrong (M2).
//  2. A header is only a *candidate* until its whole body has arrived and `accept(body)` (in practice:
//     "decodes as a FromRadio with a known payload") says yes. A rejected candidate gives up only its
//     first byte: scanning resumes at the byte after its 0x94, so a real frame that a false header in
//     garbage would have swallowed is still found. Bytes inside a rejected candidate's span that do not
//     become frames are reported as `noise`, not as debug text, so a torn frame (M11) never looks like
//     the log text that signals a silent reboot (M10). When a frame is found inside a rejected span it
//     was written into the middle of the other one, so the span is pushed back by its length.
// A stray 0x94 not followed by 0xC3, or a header announcing more than `maxBodyBytes`, is resolved at the
// next byte (M1 cannot stall the decoder). In valid UTF-8 text a 0x94 0xC3 pair is always followed by
// a continuation byte (≥ 0x80), i.e. a length above 512, so log text never even forms a candidate.
// Only a candidate whose body has not fully arrived is held; the caller calls `flush()` after the line
// has been idle (the firmware writes each frame at once), which rejects it and releases what it held.

import { MeshtasticError } from './errors.ts';

/** First and second frame start bytes [MT-FW src/mesh/StreamAPI.h START1/START2]. */
export const STREAM_START1 = 0x94;
export const STREAM_START2 = 0xc3;
export const STREAM_HEADER_BYTES = 4;
/** Largest body the firmware sends or accepts (MAX_TO_FROM_RADIO_SIZE). */
export const MAX_STREAM_BODY_BYTES = 512;

/** Frames `body` for the wire. Throws MT_FRAME_TOO_LONG above `maxBodyBytes` (default 512). */
export function encodeStreamFrame(body: Uint8Array, maxBodyBytes = MAX_STREAM_BODY_BYTES): Uint8Array {
  if (body.length > maxBodyBytes || body.length > 0xffff) {
    throw new MeshtasticError('MT_FRAME_TOO_LONG', `frame body of ${body.length} bytes exceeds ${maxBodyBytes}`, {
      details: { bodyBytes: body.length, maxBodyBytes },
    });
  }
  const out = new Uint8Array(STREAM_HEADER_BYTES + body.length);
  out[0] = STREAM_START1;
  out[1] = STREAM_START2;
  out[2] = body.length >> 8;
  out[3] = body.length & 0xff;
  out.set(body, STREAM_HEADER_BYTES);
  return out;
}

export type StreamEvent =
  /** One accepted frame body, in order. */
  | { readonly kind: 'frame'; readonly body: Uint8Array }
  /** Unframed bytes outside any rejected candidate, decoded as UTF-8 (invalid sequences become U+FFFD). */
  | { readonly kind: 'debug'; readonly text: string }
  /** A header whose body was refused (`invalid`) or never completed before flush (`incomplete`). */
  | { readonly kind: 'rejected'; readonly bodyBytes: number; readonly reason: 'invalid' | 'incomplete' }
  /** Unframed bytes inside a rejected candidate's span (torn frames, garbage). */
  | { readonly kind: 'noise'; readonly bytes: Uint8Array };

export interface StreamDecoderOptions {
  /** Headers announcing more are not frames (default 512, the firmware's limit). */
  readonly maxBodyBytes?: number;
  /**
   * Decides whether a complete candidate body is a frame. Default: accept everything (the firmware's
   * own rule). Drivers pass a protobuf plausibility check; an exception counts as "no".
   */
  readonly accept?: (body: Uint8Array) => boolean;
}

export interface StreamDecoderStats {
  readonly frames: number;
  readonly rejectedInvalid: number;
  readonly rejectedIncomplete: number;
  /** Headers announcing more than maxBodyBytes (treated as text). */
  readonly oversizeHeaders: number;
  readonly debugBytes: number;
  readonly noiseBytes: number;
}

export interface StreamDecoder {
  /** Consumes bytes; returns the events they complete, in stream order. */
  push(chunk: Uint8Array): StreamEvent[];
  /** The line went idle or ended: rejects a partial candidate and releases every held byte. */
  flush(): StreamEvent[];
  /** Bytes held waiting for the rest of a header or body. */
  pendingBytes(): number;
  stats(): StreamDecoderStats;
}

/** Creates a streaming decoder (see the file comment for the resynchronisation rules). */
export function createStreamDecoder(options: StreamDecoderOptions = {}): StreamDecoder {
  const maxBodyBytes = options.maxBodyBytes ?? MAX_STREAM_BODY_BYTES;
  if (!Number.isInteger(maxBodyBytes) || maxBodyBytes < 0 || maxBodyBytes > 0xffff) {
    throw new MeshtasticError('MT_INVALID_OPTION', `maxBodyBytes must be 0..65535, got ${maxBodyBytes}`);
  }
  const accept = options.accept ?? (() => true);
  const text = new TextDecoder('utf-8', { fatal: false });
  let buf = new Uint8Array(0);
  // Bytes of `buf` before this index lie inside a rejected candidate's span: they are noise, not text.
  let discardUntil = 0;
  const st = { frames: 0, rejectedInvalid: 0, rejectedIncomplete: 0, oversizeHeaders: 0, debugBytes: 0, noiseBytes: 0 };

  const isAccepted = (body: Uint8Array): boolean => {
    try {
      return accept(body) === true;
    } catch {
      // A throwing check means "not a frame"; the bytes are re-scanned as text.
      return false;
    }
  };

  /** Emits bytes [from, to) of `buf` that are not part of any frame. */
  const emitUnframed = (out: StreamEvent[], from: number, to: number): void => {
    if (to <= from) return;
    const split = Math.min(Math.max(discardUntil, from), to);
    if (split > from) {
      const bytes = buf.slice(from, split);
      st.noiseBytes += bytes.length;
      out.push({ kind: 'noise', bytes });
    }
    if (to > split) {
      st.debugBytes += to - split;
      const t = text.decode(buf.subarray(split, to), { stream: true });
      if (t.length > 0) out.push({ kind: 'debug', text: t });
    }
  };

  const run = (final: boolean): StreamEvent[] => {
    const out: StreamEvent[] = [];
    const len = buf.length;
    let i = 0;
    let runStart = 0;
    while (i < len) {
      if (buf[i] !== STREAM_START1) {
        i++;
        continue;
      }
      // A header needs 4 bytes; wait for them unless the stream has ended.
      if (i + 1 < len && buf[i + 1] !== STREAM_START2) {
        i++;
        continue;
      }
      if (i + STREAM_HEADER_BYTES > len) {
        if (final) {
          i++;
          continue;
        }
        break;
      }
      const bodyBytes = (buf[i + 2]! << 8) | buf[i + 3]!;
      if (bodyBytes > maxBodyBytes) {
        st.oversizeHeaders++;
        i++;
        continue;
      }
      const end = i + STREAM_HEADER_BYTES + bodyBytes;
      if (end > len) {
        if (!final) break;
        st.rejectedIncomplete++;
        out.push({ kind: 'rejected', bodyBytes, reason: 'incomplete' });
        discardUntil = Math.max(discardUntil, len);
        i++;
        continue;
      }
      const body = buf.slice(i + STREAM_HEADER_BYTES, end);
      if (isAccepted(body)) {
        emitUnframed(out, runStart, i);
        st.frames++;
        out.push({ kind: 'frame', body });
        // A frame found inside a rejected span was written into the middle of another (M11): the
        // rejected frame's remaining bytes follow it, displaced by its length, so they stay noise.
        if (i < discardUntil) discardUntil = end + (discardUntil - i);
        i = end;
        runStart = end;
        continue;
      }
      st.rejectedInvalid++;
      out.push({ kind: 'rejected', bodyBytes, reason: 'invalid' });
      discardUntil = Math.max(discardUntil, end);
      i++;
    }
    emitUnframed(out, runStart, i);
    if (final) {
      const tail = text.decode();
      if (tail.length > 0) out.push({ kind: 'debug', text: tail });
    }
    buf = buf.slice(i);
    discardUntil = Math.max(0, discardUntil - i);
    return out;
  };

  return {
    push(chunk) {
      if (chunk.length === 0) return [];
      const next = new Uint8Array(buf.length + chunk.length);
      next.set(buf, 0);
      next.set(chunk, buf.length);
      buf = next;
      return run(false);
    },
    flush() {
      return run(true);
    },
    pendingBytes: () => buf.length,
    stats: () => ({ ...st }),
  };
}
