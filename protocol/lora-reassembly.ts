// Reassembly of fragmented LoRa messages (docs/protocol/lora-frames.md §7.3): a pure state object fed with
// authenticated frames, bounded in messages and bytes, with timeouts read from the Clock passed in.

import { concatBytes, toHex } from './bytes.ts';
import type { Clock } from './clock.ts';
import { ProtocolError } from './errors.ts';
import type { LoraDirection, LoraFrameType, OpenedLoraFrame } from './lora-frame.ts';

/** A whole message: an unfragmented frame's payload, or the joined chunks of all its fragments. */
export interface LoraMessage {
  readonly type: LoraFrameType;
  readonly direction: LoraDirection;
  readonly shortId: Uint8Array;
  /** Seq of the first (or only) frame: with shortId and direction, the message's identity. */
  readonly firstSeq: number;
  readonly payload: Uint8Array;
  /** L flag of the frame that completed the message. */
  readonly listen: boolean;
}

export type ReassemblyResult =
  | { readonly status: 'complete'; readonly message: LoraMessage }
  | { readonly status: 'pending'; readonly received: number; readonly count: number }
  | { readonly status: 'duplicate' }
  | { readonly status: 'dropped'; readonly reason: 'mismatch' | 'too-large' };

/** Counters since creation, plus what is buffered now. */
export interface ReassemblyStats {
  readonly pendingMessages: number;
  readonly pendingBytes: number;
  readonly completed: number;
  readonly duplicates: number;
  /** Partial messages dropped because they were not complete within timeoutMs. */
  readonly expired: number;
  /** Partial messages dropped to make room (maxMessages, maxMessagesPerSource, maxBytes). */
  readonly evicted: number;
  /** Partial messages dropped because a fragment disagreed with them on type or count. */
  readonly mismatched: number;
  /** Fragments refused because they alone exceed maxBytes. */
  readonly tooLarge: number;
}

export interface LoraReassembler {
  /** Adds an authenticated frame (from openLoraFrame). Unfragmented frames complete at once. */
  add(frame: OpenedLoraFrame): ReassemblyResult;
  /** Drops partial messages older than timeoutMs; returns how many. add() sweeps too. */
  sweep(): number;
  stats(): ReassemblyStats;
}

export interface LoraReassemblerOptions {
  readonly clock: Clock;
  /** Partial messages held at once, over all senders (default 32). */
  readonly maxMessages?: number;
  /** Partial messages held at once per sender and direction (default 2). */
  readonly maxMessagesPerSource?: number;
  /** Buffered fragment bytes over all partial messages (default 64 KiB). */
  readonly maxBytes?: number;
  /** A partial message is dropped this long after its first fragment arrived (default 1 h, §7.3). */
  readonly timeoutMs?: number;
}

interface Partial {
  readonly source: string;
  readonly type: LoraFrameType;
  readonly direction: LoraDirection;
  readonly shortId: Uint8Array;
  readonly firstSeq: number;
  readonly count: number;
  readonly chunks: (Uint8Array | undefined)[];
  received: number;
  bytes: number;
  readonly startedMs: number;
}

function positiveInteger(v: number | undefined, fallback: number, what: string): number {
  const n = v ?? fallback;
  if (!Number.isSafeInteger(n) || n < 1) throw new ProtocolError('LORA_VALUE_UNSUPPORTED', `${what} must be ≥ 1`);
  return n;
}

/** Creates a reassembler. Throws LORA_VALUE_UNSUPPORTED for non-positive limits. */
export function createLoraReassembler(options: LoraReassemblerOptions): LoraReassembler {
  const clock = options.clock;
  const maxMessages = positiveInteger(options.maxMessages, 32, 'maxMessages');
  const maxPerSource = positiveInteger(options.maxMessagesPerSource, 2, 'maxMessagesPerSource');
  const maxBytes = positiveInteger(options.maxBytes, 64 * 1024, 'maxBytes');
  const timeoutMs = positiveInteger(options.timeoutMs, 60 * 60_000, 'timeoutMs');
  // Map iteration order is insertion order, so the first entry is always the oldest partial message.
  const partials = new Map<string, Partial>();
  const perSource = new Map<string, number>();
  let pendingBytes = 0;
  const counters = { completed: 0, duplicates: 0, expired: 0, evicted: 0, mismatched: 0, tooLarge: 0 };

  function remove(key: string, p: Partial): void {
    partials.delete(key);
    pendingBytes -= p.bytes;
    const n = (perSource.get(p.source) ?? 1) - 1;
    if (n === 0) perSource.delete(p.source);
    else perSource.set(p.source, n);
  }

  function sweep(): number {
    const now = clock.monotonicMs();
    let n = 0;
    for (const [key, p] of partials) {
      if (now - p.startedMs >= timeoutMs) {
        remove(key, p);
        n++;
      }
    }
    counters.expired += n;
    return n;
  }

  function evictOldest(except: string | undefined, source?: string): boolean {
    for (const [key, p] of partials) {
      if (key === except || (source !== undefined && p.source !== source)) continue;
      remove(key, p);
      counters.evicted++;
      return true;
    }
    return false;
  }

  function add(frame: OpenedLoraFrame): ReassemblyResult {
    sweep();
    const { header, payload } = frame;
    if (header.fragment === undefined) {
      counters.completed++;
      return {
        status: 'complete',
        message: {
          type: header.type,
          direction: header.direction,
          shortId: header.shortId,
          firstSeq: header.seq,
          payload,
          listen: header.listen,
        },
      };
    }
    const { index, count } = header.fragment;
    const firstSeq = header.seq - index;
    // Per session, not per short id: short ids collide (by chance, or ground by an attacker's device).
    const source = `${header.direction}:${toHex(header.shortId)}:${frame.sessionTag ?? ''}`;
    const key = `${source}:${firstSeq}`;
    let p = partials.get(key);
    if (p !== undefined && (p.type !== header.type || p.count !== count)) {
      remove(key, p);
      counters.mismatched++;
      return { status: 'dropped', reason: 'mismatch' };
    }
    if (p?.chunks[index] !== undefined) {
      counters.duplicates++;
      return { status: 'duplicate' };
    }
    if (payload.length > maxBytes) {
      if (p !== undefined) remove(key, p);
      counters.tooLarge++;
      return { status: 'dropped', reason: 'too-large' };
    }
    if (p === undefined) {
      if ((perSource.get(source) ?? 0) >= maxPerSource) evictOldest(undefined, source);
      if (partials.size >= maxMessages) evictOldest(undefined);
      p = {
        source,
        type: header.type,
        direction: header.direction,
        shortId: header.shortId,
        firstSeq,
        count,
        chunks: new Array<Uint8Array | undefined>(count).fill(undefined),
        received: 0,
        bytes: 0,
        startedMs: clock.monotonicMs(),
      };
      partials.set(key, p);
      perSource.set(source, (perSource.get(source) ?? 0) + 1);
    }
    while (pendingBytes + payload.length > maxBytes) {
      if (!evictOldest(key)) break;
    }
    if (pendingBytes + payload.length > maxBytes) {
      remove(key, p);
      counters.tooLarge++;
      return { status: 'dropped', reason: 'too-large' };
    }
    p.chunks[index] = payload;
    p.received++;
    p.bytes += payload.length;
    pendingBytes += payload.length;
    if (p.received < count) return { status: 'pending', received: p.received, count };
    remove(key, p);
    counters.completed++;
    return {
      status: 'complete',
      message: {
        type: p.type,
        direction: p.direction,
        shortId: p.shortId,
        firstSeq,
        payload: concatBytes(...(p.chunks as Uint8Array[])),
        listen: header.listen,
      },
    };
  }

  return {
    add,
    sweep,
    stats: () => ({ pendingMessages: partials.size, pendingBytes, ...counters }),
  };
}
