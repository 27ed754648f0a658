// Wall-clock jumps for processes under test: start them with `node --import clock-offset-preload.ts` and the
// environment below, then move their clock with jump(); they see it within about 100 ms.

import { renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export const CLOCK_PRELOAD = join(import.meta.dirname, 'clock-offset-preload.ts');

export interface ClockControl {
  /** Node arguments to put before the script. */
  readonly nodeArgs: readonly string[];
  /** Environment entries the process needs. */
  readonly env: Readonly<Record<string, string>>;
  /** Shifts the wall clock by `deltaMs` more (negative: backwards). */
  jump(deltaMs: number): void;
  offsetMs(): number;
}

export function clockControl(dir: string): ClockControl {
  const file = join(dir, 'clock-offset-ms');
  let offset = 0;
  writeFileSync(file, '0');
  return {
    nodeArgs: ['--import', CLOCK_PRELOAD],
    env: { OUTPOST_CHAOS_CLOCK_FILE: file },
    jump(deltaMs) {
      offset += deltaMs;
      // Written aside and renamed over: the reader never sees a half-written number.
      writeFileSync(`${file}.tmp`, String(offset));
      renameSync(`${file}.tmp`, file);
    },
    offsetMs: () => offset,
  };
}
