// The bench interface: figures (median, range, ratio to a same-run baseline), the --json report a bench
// prints for the runner, and its progress lines.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import {
  type BenchReport,
  formatValue,
  isBenchReport,
  makeFigure,
  PROGRESS_PREFIX,
  percentileSorted,
  summarizeLatencies,
} from '../../bench/harness.ts';

describe('bench harness', () => {
  it('a figure is the median and range of its samples, and its ratio is of medians', () => {
    const base = makeFigure({ id: 'b', label: 'b', unit: 'x', better: 'higher', samples: [4, 1, 3] });
    assert.deepEqual([base.median, base.min, base.max], [3, 1, 4]);
    const f = makeFigure(
      { id: 'f', label: 'f', unit: 'x', better: 'higher', samples: [6, 7, 9, 10], baseline: 'b' },
      base,
    );
    assert.equal(f.median, 8);
    assert.equal(f.ratio, 8 / 3);
    assert.equal(f.baseline, 'b');
  });

  it('refuses a figure without finite samples: a bench bug is not a result', () => {
    assert.throws(() => makeFigure({ id: 'x', label: 'x', unit: 'x', better: 'none', samples: [] }));
    assert.throws(() => makeFigure({ id: 'x', label: 'x', unit: 'x', better: 'none', samples: [1, Number.NaN] }));
  });

  it('percentiles are nearest-rank', () => {
    const s = Array.from({ length: 100 }, (_, i) => i + 1);
    assert.equal(percentileSorted(s, 50), 50);
    assert.equal(percentileSorted(s, 99), 99);
    assert.equal(percentileSorted(s, 100), 100);
    const l = summarizeLatencies([5, 1, 3, 2, 4]);
    assert.deepEqual([l.p50, l.p99, l.max, l.mean], [3, 5, 5, 3]);
  });

  it('formats integers exactly and fractions to three significant digits', () => {
    assert.deepEqual(
      [formatValue(26), formatValue(103855), formatValue(0.0241), formatValue(12.34)],
      ['26', '103,855', '0.024', '12.3'],
    );
  });

  it('with --json a bench prints exactly one report on stdout and its progress on stderr', () => {
    const r = spawnSync(
      process.execPath,
      [join(import.meta.dirname, 'fixtures/tiny.bench.ts'), '--json', '--repeats', '2'],
      {
        encoding: 'utf8',
      },
    );
    assert.equal(r.status, 0, r.stderr);
    const report = JSON.parse(r.stdout) as BenchReport;
    assert.ok(isBenchReport(report));
    assert.equal(report.bench, 'tiny');
    assert.equal(report.repeats, 2);
    const byId = Object.fromEntries(report.figures.map((f) => [f.id, f]));
    // warm-up dropped: baseline samples 11, 12; measured (no warm-up, 3 runs) 23, 24, 25
    assert.deepEqual(byId.base!.samples, [11, 12]);
    assert.deepEqual(byId.fast!.samples, [23, 24, 25]);
    assert.equal(byId.fast!.ratio, 24 / 11.5);
    assert.equal(byId.bytes!.exact, true);
    assert.deepEqual(report.notes, ['quick false, repeats 2']);
    const progress = r.stderr
      .split('\n')
      .filter((l) => l.startsWith(PROGRESS_PREFIX))
      .map((l) => JSON.parse(l.slice(PROGRESS_PREFIX.length)) as { label: string; done: number; total: number });
    assert.deepEqual(
      progress.filter((p) => p.label === 'baseline').map((p) => `${p.done}/${p.total}`),
      ['0/3', '1/3', '2/3', '3/3'],
    );
  });
});
