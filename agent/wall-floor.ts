// A wall clock that never reads earlier than a floor: the first plausible time seen in a run, advanced by
// monotonic time, and persisted across restarts.
// Token and quorum expiry read it: setting the system clock back (no RTC, spoofed NTP) cannot revive an expired
// token or approval whose single-use record was already forgotten. Allowed hours still read the raw clock.

import { readFileSync } from 'node:fs';
import type { Clock } from '../protocol/clock.ts';
import { writeFileAtomic } from '../store/atomic-file.ts';
import { PLAUSIBLE_WALL_MS } from './wall-clock.ts';

/** The floor's file in the state dir. */
export const WALL_FLOOR_FILE = 'wall-floor';
/** The floor is written to disk when it has advanced this much; after a crash it lags by at most this. */
export const WALL_FLOOR_PERSIST_STEP_MS = 60_000;
/** A stored floor further ahead than this of the clock at start is refused as corrupt (a century). */
const MAX_SANE_WALL_MS = Date.UTC(2125, 0, 1);

export interface WallFloorClock extends Clock {
  /** The floor now (ms since the epoch; 0 when none was ever seen). */
  floorMs(): number;
}

export interface WallFloorOptions {
  readonly clock: Clock;
  /** File that keeps the floor (a decimal number of ms), written atomically. */
  readonly file: string;
  readonly plausibleMs?: number;
  readonly persistStepMs?: number;
}

function readFloor(file: string): number {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    return 0;
  }
  const v = Number(text.trim());
  return Number.isSafeInteger(v) && v > 0 && v < MAX_SANE_WALL_MS ? v : 0;
}

export function createWallFloorClock(o: WallFloorOptions): WallFloorClock {
  const plausibleMs = o.plausibleMs ?? PLAUSIBLE_WALL_MS;
  const step = o.persistStepMs ?? WALL_FLOOR_PERSIST_STEP_MS;
  const stored = readFloor(o.file);
  let persisted = stored;
  // The floor runs on monotonic time from an anchor: it advances as real time passes, whether or not anyone
  // reads the wall clock, and a wall clock stepped forward or back does not move it.
  let anchorWall = stored;
  let anchorMono = o.clock.monotonicMs();
  // Once per run, the first plausible reading at or above the stored floor re-anchors it (the boot's clock,
  // after the downtime the stored floor knows nothing of). Later readings never move the anchor.
  let anchored = false;

  function floorAt(mono: number): number {
    return anchorWall === 0 ? 0 : anchorWall + Math.max(0, Math.floor(mono - anchorMono));
  }

  function observe(): number {
    const raw = o.clock.nowMs();
    const mono = o.clock.monotonicMs();
    if (!anchored && raw >= plausibleMs && raw < MAX_SANE_WALL_MS && raw >= floorAt(mono)) {
      anchorWall = Math.floor(raw);
      anchorMono = mono;
      anchored = true;
    }
    const floor = floorAt(mono);
    if (floor > 0 && (floor - persisted >= step || persisted === 0)) {
      try {
        writeFileAtomic(o.file, `${floor}\n`, { mode: 0o600 });
        persisted = floor;
      } catch {
        // Disk full or read-only: the in-memory floor still holds for this run; retried on a later read.
      }
    }
    return Math.max(raw, floor);
  }

  return {
    nowMs: observe,
    monotonicMs: () => o.clock.monotonicMs(),
    floorMs: () => floorAt(o.clock.monotonicMs()),
  };
}
