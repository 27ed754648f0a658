// The page's pure rules: ages, plot geometry, tools by class, histogram bars, numeric values.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { ago, histogramBars, histogramMean, numericValue, plotPath, toolsByClass } from '../../dashboard/app/format.ts';

describe('dashboard format', () => {
  it('says how long ago, in the largest sensible unit', () => {
    assert.equal(ago(null, 0), 'never');
    assert.equal(ago(1_000, 13_000), '12s ago');
    assert.equal(ago(0, 5 * 60_000), '5m ago');
    assert.equal(ago(0, 3 * 3_600_000), '3h ago');
    assert.equal(ago(0, 3 * 86_400_000), '3d ago');
    assert.equal(ago(10_000, 0), '0s ago', 'a clock a little behind is not "in the future"');
  });

  it('keeps every plotted point inside the box, whatever the series', () => {
    fc.assert(
      fc.property(
        fc.array(fc.record({ t: fc.double(), v: fc.double() }), { maxLength: 50 }),
        fc.integer({ min: 10, max: 500 }),
        fc.integer({ min: 10, max: 200 }),
        (points, w, h) => {
          const g = plotPath(points, w, h);
          for (const m of g.path.matchAll(/[ML](-?[\d.]+),(-?[\d.]+)/g)) {
            const x = Number(m[1]);
            const y = Number(m[2]);
            assert.ok(x >= 0 && x <= w && y >= 0 && y <= h, `${x},${y} outside ${w}×${h}`);
          }
          const finite = points.filter((p) => Number.isFinite(p.t) && Number.isFinite(p.v));
          assert.equal(g.path === '' ? 0 : g.path.split(' ').length, finite.length);
        },
      ),
    );
  });

  it('draws higher values higher up, and a constant series flat in the middle', () => {
    const g = plotPath(
      [
        { t: 0, v: 1 },
        { t: 1, v: 5 },
      ],
      100,
      50,
    );
    const ys = [...g.path.matchAll(/,(-?[\d.]+)/g)].map((m) => Number(m[1]));
    assert.ok(ys[1]! < ys[0]!);
    assert.deepEqual([g.min, g.max, g.last], [1, 5, 5]);
    const flat = plotPath(
      [
        { t: 0, v: 3 },
        { t: 1, v: 3 },
      ],
      100,
      50,
    );
    assert.match(flat.path, /^M[\d.]+,25\.0 L[\d.]+,25\.0$/);
  });

  it('groups tools by safety class in order of risk', () => {
    assert.deepEqual(
      toolsByClass([
        { name: 'valve.open', safetyClass: 'physical_actuation' },
        { name: 'env.read', safetyClass: 'read_only' },
        { name: 'fan.set', safetyClass: 'reversible' },
        { name: 'sys.info', safetyClass: 'read_only' },
      ]),
      [
        ['read_only', ['env.read', 'sys.info']],
        ['reversible', ['fan.set']],
        ['physical_actuation', ['valve.open']],
      ],
    );
  });

  it('turns a cumulative histogram into bars, and averages it', () => {
    const h = {
      buckets: [
        { le: -120, count: 1 },
        { le: -90, count: 4 },
        { le: '+Inf' as const, count: 6 },
      ],
      count: 6,
      sum: -600,
    };
    assert.deepEqual(histogramBars(h), [
      { label: '≤ -120', count: 1 },
      { label: '≤ -90', count: 3 },
      { label: '> -90', count: 2 },
    ]);
    assert.equal(histogramMean(h), -100);
    assert.equal(histogramMean({ buckets: [], count: 0, sum: 0 }), null);
    assert.deepEqual(histogramBars(null), []);
  });

  it('reads numbers, and only numbers, as plottable', () => {
    assert.equal(numericValue(3.5), 3.5);
    assert.equal(numericValue('-12.25'), -12.25);
    assert.equal(numericValue(true), null);
    assert.equal(numericValue('1e999'), null);
    assert.equal(numericValue(Number.NaN), null);
    assert.equal(numericValue({ v: 1 }), null);
  });
});
