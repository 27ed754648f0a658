// Store time: milliseconds of observed time since a database was created, monotonic across wall-clock
// jumps and restarts. TTLs, age caps and retention are measured with it, never with the wall clock,
// because a Pi without RTC boots in the past and then jumps when NTP answers (docs/store.md §Clock jumps).

import type { Clock } from '../protocol/clock.ts';

/** Wall times before this (2025-01-01T00:00Z) are treated as an unsynchronised clock. */
export const DEFAULT_PLAUSIBLE_WALL_MS = Date.UTC(2025, 0, 1);
/** A downtime longer than this (10 years) is treated as a clock error and counted as zero. */
export const MAX_TRUSTED_GAP_MS = 10 * 366 * 24 * 3600 * 1000;

/** What was persisted at the last write: observed time so far, and the wall clock at that moment. */
export interface StoreTimeMark {
  readonly elapsedMs: number;
  readonly wallMs: number;
}

/**
 * The downtime to add when a database is reopened: the wall-clock gap since the last mark, but only
 * when both wall readings are plausible and the gap is neither negative nor absurd; otherwise zero,
 * so an unknown downtime makes items live longer, never expire early. Pure.
 */
export function trustedGapMs(
  mark: StoreTimeMark,
  wallNowMs: number,
  plausibleWallMs = DEFAULT_PLAUSIBLE_WALL_MS,
): number {
  if (!(mark.wallMs >= plausibleWallMs) || !(wallNowMs >= plausibleWallMs)) return 0;
  const gap = wallNowMs - mark.wallMs;
  return gap >= 0 && gap <= MAX_TRUSTED_GAP_MS ? gap : 0;
}

export interface StoreTime {
  /** Observed milliseconds since the database was created; never decreases within a process. */
  nowMs(): number;
  /** The mark to persist now (callers write it inside their own transaction). */
  mark(): StoreTimeMark;
}

/** Store time that continues from `persisted` (plus the trusted downtime) and then follows `clock.monotonicMs()`. */
export function createStoreTime(
  clock: Clock,
  persisted: StoreTimeMark,
  plausibleWallMs = DEFAULT_PLAUSIBLE_WALL_MS,
): StoreTime {
  const base = persisted.elapsedMs + trustedGapMs(persisted, clock.nowMs(), plausibleWallMs);
  const monoAtOpen = clock.monotonicMs();
  // Whole milliseconds: performance.now() is fractional, and the store keeps integers.
  const nowMs = () => Math.floor(base + Math.max(0, clock.monotonicMs() - monoAtOpen));
  return { nowMs, mark: () => ({ elapsedMs: nowMs(), wallMs: Math.floor(clock.nowMs()) }) };
}
