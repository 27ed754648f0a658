// The fuzz engine itself: a crash fails an assert-mode run and is counted (with its input) in count mode;
// typed rejections are counted by code; expectations and the time budget are reported.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { OutpostError } from '../../protocol/errors.ts';
import {
  bucketMicros,
  checkExpectations,
  emptyResult,
  type FuzzTarget,
  histogramBucket,
  medianMicros,
  mergeResults,
  runTarget,
} from './engine.ts';

/** Accepts even bytes, rejects odd ones with a typed error, crashes (TypeError) on 0xff. */
const picky: FuzzTarget<number> = {
  inputs: fc.integer({ min: 0, max: 255 }),
  decode(n) {
    if (n === 255) throw new TypeError('boom');
    if (n % 2) throw new OutpostError('ODD', 'odd');
    return n;
  },
};

describe('fuzz engine', () => {
  it('assert mode fails on the first untyped error, with the input that caused it', async () => {
    await assert.rejects(runTarget(picky as FuzzTarget<unknown>, { cases: 5000, mode: 'assert', seed: 1 }), (e) => {
      assert.match(String((e as Error).message), /TypeError: boom/);
      assert.match(String((e as Error).message), /Counterexample: \[255\]/);
      return true;
    });
  });

  it('count mode runs every case and keeps samples of the crashes', async () => {
    const r = await runTarget(picky as FuzzTarget<unknown>, { cases: 5000, mode: 'count', seed: 1 });
    assert.equal(r.cases, 5000);
    assert.equal(r.accepted + r.rejected + r.crashes, 5000);
    assert.ok(r.crashes > 0 && r.crashSamples[0]!.input === '255');
    assert.equal(r.codes.ODD, r.rejected);
  });

  it('an async decoder is awaited; a rejected promise with an untyped error is a crash', async () => {
    const t: FuzzTarget<number> = {
      inputs: fc.integer({ min: 0, max: 3 }),
      async: true,
      async decode(n) {
        await Promise.resolve();
        if (n === 3) throw new RangeError('late');
      },
    };
    const r = await runTarget(t as FuzzTarget<unknown>, { cases: 500, mode: 'count', seed: 2 });
    assert.ok(r.crashes > 0 && r.accepted > 0);
  });

  it('counts cases over the time budget without failing', async () => {
    const slow: FuzzTarget<number> = {
      inputs: fc.constant(1),
      decode() {
        const until = process.hrtime.bigint() + 2_000_000n;
        while (process.hrtime.bigint() < until) {
          // busy for 2 ms
        }
      },
    };
    const r = await runTarget(slow as FuzzTarget<unknown>, { cases: 5, mode: 'assert', budgetMs: 1 });
    assert.equal(r.overBudget, 5);
    assert.ok(r.maxUs >= 2000 && r.slowSamples.length === 5);
  });

  it('expectations: accepted and rejected by default, named codes, and after()', async () => {
    const r = await runTarget(
      { inputs: fc.integer({ min: 0, max: 254 }), decode: picky.decode } as FuzzTarget<unknown>,
      { cases: 1000, mode: 'assert', seed: 3 },
    );
    assert.deepEqual(checkExpectations({ inputs: fc.constant(0), decode: () => 0 }, r), []);
    const problems = checkExpectations(
      {
        inputs: fc.constant(0),
        decode: () => 0,
        expect: { rejects: false, codes: ['EVEN'] },
        after: () => {
          throw new Error('state left dirty');
        },
      },
      r,
    );
    assert.equal(problems.length, 3, problems.join('; '));
  });

  it('histograms merge, and the median is within one bucket', () => {
    const a = {
      ...emptyResult(),
      cases: 3,
      histogram: emptyResult().histogram.map((_, i) => (i === histogramBucket(10) ? 3 : 0)),
    };
    const b = {
      ...emptyResult(),
      cases: 1,
      histogram: emptyResult().histogram.map((_, i) => (i === histogramBucket(1000) ? 1 : 0)),
    };
    const m = mergeResults(a, b);
    assert.equal(m.cases, 4);
    const med = medianMicros(m);
    assert.ok(med > 10 / 1.1 && med < 10 * 1.1, String(med));
    assert.ok(Math.abs(bucketMicros(histogramBucket(1000)) / 1000 - 1) < 0.05);
  });
});
