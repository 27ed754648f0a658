// Free space on the state filesystem, checked at most once a second: telemetry yields before the disk is
// full, so the space that is left goes to the records that must not be lost (audit entries, tool runs).

import { statfsSync } from 'node:fs';
import type { Clock } from '../protocol/clock.ts';

export interface SpaceGuard {
  /** False when fewer than `reserveBytes` are free for unprivileged writers. */
  hasRoom(): boolean;
}

const CHECK_INTERVAL_MS = 1_000;

export function createSpaceGuard(o: { path: string; reserveBytes: number; clock: Clock }): SpaceGuard {
  let checkedAt = Number.NEGATIVE_INFINITY;
  let room = true;
  return {
    hasRoom() {
      if (o.reserveBytes <= 0) return true;
      const now = o.clock.monotonicMs();
      if (now - checkedAt >= CHECK_INTERVAL_MS) {
        checkedAt = now;
        try {
          const s = statfsSync(o.path);
          room = s.bavail * s.bsize >= o.reserveBytes;
        } catch {
          room = true; // cannot tell: let the write itself report a full disk
        }
      }
      return room;
    },
  };
}
