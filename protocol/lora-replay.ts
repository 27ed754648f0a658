// Per-sender replay protection for LoRa frames (docs/protocol/lora-frames.md §10.2): the highest authenticated seq and
// a bitmap of the `windowSize` seqs at and below it, as in IPsec/DTLS anti-replay. Pure state; the owner persists it.

import { ProtocolError } from './errors.ts';
import { LORA_SEQ_MAX } from './lora-frame.ts';

export type ReplayVerdict = 'fresh' | 'replay' | 'too-old';

/** What to persist so a restart does not reopen the window: JSON-safe. */
export interface ReplayWindowState {
  /** Highest accepted seq, or −1 before the first frame. */
  readonly highest: number;
  /** Bit i (least significant first) set ⇔ seq (highest − i) was accepted; lowercase hex. */
  readonly bitmapHex: string;
}

export interface ReplayWindow {
  readonly windowSize: number;
  /** Classifies `seq` without changing anything: call before decrypting to drop replays cheaply. */
  check(seq: number): ReplayVerdict;
  /** Records an authenticated `seq`. Throws LORA_REPLAY or LORA_SEQ_TOO_OLD if check(seq) is not 'fresh'. */
  accept(seq: number): void;
  state(): ReplayWindowState;
}

export interface ReplayWindowOptions {
  /** Seqs at most this far below the highest are still accepted once each (default 64; 1..1024). */
  readonly windowSize?: number;
  /** A persisted state to resume from. */
  readonly state?: ReplayWindowState;
}

/** Creates a replay window. Throws LORA_VALUE_UNSUPPORTED for a bad size or a malformed persisted state. */
export function createReplayWindow(options: ReplayWindowOptions = {}): ReplayWindow {
  const windowSize = options.windowSize ?? 64;
  if (!Number.isInteger(windowSize) || windowSize < 1 || windowSize > 1024) {
    throw new ProtocolError('LORA_VALUE_UNSUPPORTED', `windowSize must be 1..1024, got ${windowSize}`);
  }
  const mask = (1n << BigInt(windowSize)) - 1n;
  let highest = -1;
  let bitmap = 0n;
  if (options.state !== undefined) {
    const s = options.state;
    if (
      !Number.isInteger(s.highest) ||
      s.highest < -1 ||
      s.highest > LORA_SEQ_MAX ||
      typeof s.bitmapHex !== 'string' ||
      !/^[0-9a-f]{1,256}$/.test(s.bitmapHex)
    ) {
      throw new ProtocolError('LORA_VALUE_UNSUPPORTED', 'malformed replay window state');
    }
    highest = s.highest;
    bitmap = highest < 0 ? 0n : BigInt(`0x${s.bitmapHex}`) & mask;
  }

  function check(seq: number): ReplayVerdict {
    if (!Number.isInteger(seq) || seq < 0 || seq > LORA_SEQ_MAX) {
      throw new ProtocolError('LORA_SEQ_OUT_OF_RANGE', `seq out of range: ${seq}`);
    }
    if (seq > highest) return 'fresh';
    const offset = highest - seq;
    if (offset >= windowSize) return 'too-old';
    return (bitmap >> BigInt(offset)) & 1n ? 'replay' : 'fresh';
  }

  return {
    windowSize,
    check,
    accept(seq) {
      const verdict = check(seq);
      if (verdict === 'replay') throw new ProtocolError('LORA_REPLAY', `seq ${seq} was already accepted`);
      if (verdict === 'too-old') {
        throw new ProtocolError('LORA_SEQ_TOO_OLD', `seq ${seq} is below the replay window`, {
          details: { highest, windowSize },
        });
      }
      if (seq > highest) {
        const shift = highest < 0 ? windowSize : Math.min(seq - highest, windowSize);
        bitmap = ((bitmap << BigInt(shift)) | 1n) & mask;
        highest = seq;
      } else {
        bitmap |= 1n << BigInt(highest - seq);
      }
    },
    state() {
      return { highest, bitmapHex: bitmap.toString(16) };
    },
  };
}
