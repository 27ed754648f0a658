// Every decoder of outside bytes in the registry (test/fuzz/decoders.ts), at fuzzCases() inputs each
// (10,000 by default): 0 crashes and 0 untyped errors; accepted/rejected as the entry expects. The time per
// case is reported as a diagnostic, never asserted here (npm run fuzz reports cases over budget).

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { fuzzCases } from '../support/fuzz.ts';
import { DECODERS } from './decoders.ts';
import { checkExpectations, medianMicros, runTarget } from './engine.ts';

const seed = Number.isSafeInteger(Number(process.env.OUTPOST_FUZZ_SEED))
  ? Number(process.env.OUTPOST_FUZZ_SEED)
  : undefined;

describe('fuzz registry: every decoder of outside bytes is total', () => {
  it('names are unique', () => {
    const names = DECODERS.map((d) => d.name);
    assert.equal(new Set(names).size, names.length);
  });

  for (const decoder of DECODERS) {
    it(`${decoder.name} (${decoder.module}) over ${fuzzCases()} inputs`, async (t) => {
      const target = decoder.setup();
      try {
        const r = await runTarget(target, {
          cases: fuzzCases(),
          mode: 'assert',
          ...(seed !== undefined ? { seed } : {}),
        });
        assert.equal(r.crashes, 0);
        assert.deepEqual(checkExpectations(target, r), []);
        t.diagnostic(
          `accepted ${r.accepted}, rejected ${r.rejected}, median ${medianMicros(r).toFixed(1)} µs, max ${Math.round(r.maxUs)} µs, over budget ${r.overBudget}`,
        );
      } finally {
        target.dispose?.();
      }
    });
  }
});
