import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { asciiPlot, growthAfterWarmup, type SoakSample } from './analysis.ts';

const run = (f: (minute: number) => number, minutes = 60): SoakSample[] =>
  Array.from({ length: minutes + 1 }, (_, minute) => ({ minute, rssMb: f(minute), heapMb: 10, handles: 5 }));

describe('soak analysis', () => {
  it('flat memory after a warm-up ramp is no growth', () => {
    const g = growthAfterWarmup(
      run((m) => (m < 10 ? 20 + m : 30)),
      (s) => s.rssMb,
      10,
      10,
    )!;
    assert.equal(g.percent, 0);
  });

  it('a steady leak shows as growth between the first and last windows after warm-up', () => {
    const g = growthAfterWarmup(
      run((m) => 30 + m * 0.2),
      (s) => s.rssMb,
      10,
      10,
    )!;
    // first window minutes 10..19 (mean 32.9), last window 51..60 (mean 41.1)
    assert.ok(Math.abs(g.startMb - 32.9) < 1e-9 && Math.abs(g.endMb - 41.1) < 1e-9);
    assert.ok(g.percent > 5);
  });

  it('a run too short for two windows after warm-up has no verdict', () => {
    assert.equal(
      growthAfterWarmup(
        run(() => 30, 20),
        (s) => s.rssMb,
        10,
        10,
      ),
      undefined,
    );
  });

  it('plots every series with its own mark and labels the axes', () => {
    const text = asciiPlot(
      {
        agent: [
          { minute: 0, value: 30 },
          { minute: 60, value: 40 },
        ],
        gateway: [{ minute: 30, value: 35 }],
      },
      { unit: 'RSS MB', height: 5, width: 20 },
    );
    const lines = text.split('\n');
    assert.match(lines[0]!, /^ +40\.\d \|\s{19}\*$/, 'the last agent sample sits top right');
    assert.match(lines[4]!, /^ +29\.\d \|\*$/, 'the first agent sample sits bottom left');
    assert.ok(text.includes('+ gateway') && text.includes('60 min'));
  });
});
