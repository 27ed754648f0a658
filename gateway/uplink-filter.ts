// The gateway's cheap checks on a frame heard from a radio, in the order of lora-frames.md §8.1: bound the
// length and decode the cleartext header; drop what is not uplink, from short ids the control plane does
// not route here, or revoked; drop recent duplicates; rate-limit per device. Enroll requests from unknown
// devices pass only with a valid self-signature, under their own rate limit. No key is needed or used:
// the gateway cannot tell a forged tag from a good one, and does not try.

import { isOutpostError } from '../protocol/errors.ts';
import type { LoraFrameType, LoraHeader } from '../protocol/lora.ts';
import { checkEnrollRequest, decodeLoraHeader } from '../protocol/lora.ts';
import { initialBucket, type TokenBucketConfig, type TokenBucketState, take } from '../store/token-bucket.ts';
import { createDedupWindow } from './dedup-window.ts';

export const UPLINK_DROP_REASONS = [
  'too_short',
  'too_long',
  'malformed',
  'not_uplink',
  'unknown_device',
  'revoked',
  'duplicate',
  'rate_limited',
  'enroll_invalid',
  'enroll_rate_limited',
] as const;
export type UplinkDropReason = (typeof UPLINK_DROP_REASONS)[number];

/** Store class of an accepted frame: decides its priority in the uplink store (and what is dropped first). */
export type UplinkClass = 'result' | 'enroll' | 'telemetry' | 'heartbeat';

export type UplinkVerdict =
  | {
      readonly accept: true;
      readonly header: LoraHeader;
      readonly shortIdHex: string;
      readonly class: UplinkClass;
    }
  | { readonly accept: false; readonly reason: UplinkDropReason; readonly shortIdHex?: string };

export type DeviceStanding = 'served' | 'revoked' | 'unknown';

/** Which devices this gateway serves, as the control plane last said (persisted across restarts). */
export interface DeviceDirectory {
  standing(shortIdHex: string): DeviceStanding;
}

export interface UplinkFilterOptions {
  readonly directory: DeviceDirectory;
  /** The radio's profile limit (lora-frames.md §6): 233 Meshtastic, 254 RNode. */
  readonly maxFrameBytes: number;
  /** A (short id, seq) heard again within this is a duplicate (default 10 min). */
  readonly dedupWindowMs?: number;
  readonly dedupMaxEntries?: number;
  /** Per served device (default 0.2 frames/s, burst 32). */
  readonly perDevice?: TokenBucketConfig;
  /** Enroll requests per unknown short id (default 1 per 60 s, burst 3). */
  readonly perEnrollee?: TokenBucketConfig;
  /** Enroll requests from all unknown devices together (default 1 per 10 s, burst 10). */
  readonly enrollTotal?: TokenBucketConfig;
  /** Rate-limit state kept for at most this many short ids (default 4096); the least recent is forgotten. */
  readonly maxTrackedIds?: number;
}

export interface UplinkFilter {
  /** Checks one frame heard at gateway monotonic `nowMs`. Never throws for any bytes. */
  check(frame: Uint8Array, nowMs: number): UplinkVerdict;
  /** Entries held in the duplicate window and rate-limit table (both bounded). */
  sizes(): { dedup: number; buckets: number };
}

const CLASS_OF: Readonly<Partial<Record<LoraFrameType, UplinkClass>>> = {
  'tool.result': 'result',
  'enroll.request': 'enroll',
  telemetry: 'telemetry',
  heartbeat: 'heartbeat',
};

/** Lowercase hex of a 4-byte short id. */
export function shortIdHex(shortId: Uint8Array): string {
  return Buffer.from(shortId).toString('hex');
}

export function createUplinkFilter(options: UplinkFilterOptions): UplinkFilter {
  const perDevice = options.perDevice ?? { ratePerSec: 0.2, burst: 32 };
  const perEnrollee = options.perEnrollee ?? { ratePerSec: 1 / 60, burst: 3 };
  const enrollTotal = options.enrollTotal ?? { ratePerSec: 0.1, burst: 10 };
  const maxTracked = options.maxTrackedIds ?? 4096;
  const dedup = createDedupWindow({
    windowMs: options.dedupWindowMs ?? 600_000,
    maxEntries: options.dedupMaxEntries ?? 4096,
  });
  const buckets = new Map<string, TokenBucketState>();
  let enrollBucket: TokenBucketState | undefined;

  function takeToken(key: string, config: TokenBucketConfig, nowMs: number): boolean {
    const state = buckets.get(key) ?? initialBucket(config, nowMs);
    const r = take(state, config, 1, nowMs);
    buckets.delete(key); // re-insert: the map's order is least-recently-used first
    buckets.set(key, r.state);
    if (buckets.size > maxTracked) buckets.delete(buckets.keys().next().value as string);
    return r.ok;
  }

  return {
    check(frame, nowMs) {
      let header: LoraHeader;
      try {
        header = decodeLoraHeader(frame, { maxFrameBytes: options.maxFrameBytes }).header;
      } catch (e) {
        if (isOutpostError(e, 'LORA_FRAME_TOO_LONG')) return { accept: false, reason: 'too_long' };
        if (isOutpostError(e, 'LORA_FRAME_TOO_SHORT')) return { accept: false, reason: 'too_short' };
        return { accept: false, reason: 'malformed' };
      }
      const id = shortIdHex(header.shortId);
      if (header.direction !== 'uplink') return { accept: false, reason: 'not_uplink', shortIdHex: id };
      const standing = options.directory.standing(id);
      if (standing === 'revoked') return { accept: false, reason: 'revoked', shortIdHex: id };
      if (header.type === 'enroll.request') {
        try {
          checkEnrollRequest(frame);
        } catch {
          return { accept: false, reason: 'enroll_invalid', shortIdHex: id };
        }
      } else if (standing === 'unknown') {
        return { accept: false, reason: 'unknown_device', shortIdHex: id };
      }
      if (dedup.seen(`${id}:${header.seq}`, nowMs)) return { accept: false, reason: 'duplicate', shortIdHex: id };
      if (header.type === 'enroll.request' && standing === 'unknown') {
        const total = take(enrollBucket ?? initialBucket(enrollTotal, nowMs), enrollTotal, 1, nowMs);
        if (!total.ok) {
          enrollBucket = total.state;
          return { accept: false, reason: 'enroll_rate_limited', shortIdHex: id };
        }
        // The shared bucket is charged only when this enrollee's own bucket lets the frame through.
        if (!takeToken(`enroll:${id}`, perEnrollee, nowMs)) {
          return { accept: false, reason: 'enroll_rate_limited', shortIdHex: id };
        }
        enrollBucket = total.state;
      } else if (!takeToken(id, perDevice, nowMs)) {
        return { accept: false, reason: 'rate_limited', shortIdHex: id };
      }
      const cls = CLASS_OF[header.type];
      if (cls === undefined) return { accept: false, reason: 'not_uplink', shortIdHex: id };
      return { accept: true, header, shortIdHex: id, class: cls };
    },
    sizes: () => ({ dedup: dedup.size(), buckets: buckets.size }),
  };
}
