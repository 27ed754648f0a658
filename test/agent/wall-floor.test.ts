import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { createWallFloorClock } from '../../agent/wall-floor.ts';
import { FakeClock } from '../../protocol/clock.ts';

const dir = mkdtempSync(join(tmpdir(), 'outpost-wall-floor-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const T = Date.UTC(2026, 5, 1);

describe('wall-time floor', () => {
  it('never reads earlier than the latest plausible time seen, across a restart', () => {
    const file = join(dir, 'a');
    const clock = new FakeClock(T);
    const floored = createWallFloorClock({ clock, file });
    assert.equal(floored.nowMs(), T);
    clock.jumpWallMs(-3_600_000); // clock set back an hour
    assert.equal(floored.nowMs(), T);
    assert.equal(Number(readFileSync(file, 'utf8')), T);
    // A new process (after a reboot with the clock still in the past) keeps the floor.
    const again = createWallFloorClock({ clock, file });
    assert.equal(again.nowMs(), T);
  });

  it('persists in steps and ignores implausible readings', () => {
    const file = join(dir, 'b');
    const clock = new FakeClock(Date.UTC(2020, 0, 1)); // unset RTC
    const floored = createWallFloorClock({ clock, file, persistStepMs: 60_000 });
    assert.equal(floored.nowMs(), Date.UTC(2020, 0, 1));
    assert.equal(floored.floorMs(), 0);
    clock.jumpWallMs(T - clock.nowMs()); // the first plausible time (NTP) sets the floor outright
    floored.nowMs();
    clock.advance(30_000);
    assert.equal(floored.nowMs(), T + 30_000);
    assert.equal(Number(readFileSync(file, 'utf8')), T, 'a 30 s advance is not written yet');
    clock.advance(30_000);
    floored.nowMs();
    assert.equal(Number(readFileSync(file, 'utf8')), T + 60_000);
  });

  it('does not follow a forward step faster than real time passes, so valid tokens stay valid', () => {
    const file = join(dir, 'fwd');
    const clock = new FakeClock(T);
    const floored = createWallFloorClock({ clock, file });
    floored.nowMs();
    clock.jumpWallMs(10 * 86_400_000); // spoofed NTP: ten days ahead
    clock.advance(5_000);
    assert.equal(floored.nowMs(), T + 10 * 86_400_000 + 5_000, 'reads the clock while it is ahead');
    assert.equal(floored.floorMs(), T + 5_000, 'but the floor moved only by the real 5 s');
    clock.jumpWallMs(-10 * 86_400_000); // corrected
    assert.equal(floored.nowMs(), T + 5_000);
    clock.jumpWallMs(-86_400_000); // and now set back a day below the truth
    assert.equal(floored.nowMs(), T + 5_000, 'the floor holds');
  });

  it('advances with real time even when nobody reads it, and a restart re-anchors once at or above the floor', () => {
    const file = join(dir, 'restart');
    const clock = new FakeClock(T);
    const first = createWallFloorClock({ clock, file, persistStepMs: 1 });
    first.nowMs();
    clock.advance(600_000);
    clock.jumpWallMs(-600_000);
    assert.equal(first.nowMs(), T + 600_000, 'ten real minutes passed, whatever the clock says');
    // Reboot: the clock comes up a day in the past, then NTP sets it right.
    const second = createWallFloorClock({ clock, file, persistStepMs: 1 });
    clock.jumpWallMs(-86_400_000);
    assert.equal(second.nowMs(), T + 600_000);
    clock.jumpWallMs(86_400_000 + 3_600_000); // the true time after an hour of downtime
    assert.equal(second.nowMs(), T + 3_600_000);
    assert.equal(second.floorMs(), T + 3_600_000);
    clock.jumpWallMs(-3_600_000);
    assert.equal(second.nowMs(), T + 3_600_000, 'set back again: the floor holds');
  });

  it('treats a garbled floor file as absent', () => {
    const file = join(dir, 'c');
    writeFileSync(file, 'not a number');
    const clock = new FakeClock(T);
    assert.equal(createWallFloorClock({ clock, file }).floorMs(), 0);
  });
});
