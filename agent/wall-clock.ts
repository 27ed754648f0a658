// When the wall clock can be trusted: a Pi without RTC boots in the past until NTP (or the uplink) sets it.
// Decisions that need wall time (allowed hours, token and quorum expiry) check this first.

import type { Clock } from '../protocol/clock.ts';

/**
 * Wall times before this are treated as an unset clock: no genuine clock reads earlier than the day this
 * code was written (the same floor the store uses for its trusted downtime).
 */
export const PLAUSIBLE_WALL_MS = Date.UTC(2025, 0, 1);

export function isWallClockTrusted(clock: Clock, floorMs = PLAUSIBLE_WALL_MS): boolean {
  return clock.nowMs() >= floorMs;
}
