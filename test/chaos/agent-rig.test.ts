// The bookkeeping of the chaos verdicts: what counts as lost, duplicated or moved.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { newTally, reconcile } from './harness/agent-rig.ts';

describe('chaos reconcile', () => {
  it('counts acknowledged-but-missing as lost, repeats as duplicated, and a changed seq as moved', () => {
    const tally = newTally();
    for (const [v, seq] of [
      [1, 1],
      [2, 2],
      [3, 3],
      [4, 4],
    ] as const)
      tally.acked.set(v, seq);
    const r = reconcile(tally, [
      { seq: 1, value: 1 },
      { seq: 2, value: 2 },
      { seq: 5, value: 2 }, // the same value stored twice
      { seq: 9, value: 3 }, // stored, but not under the seq the producer was told
      { seq: 6, value: 99 }, // unacknowledged (its request was cut): neither lost nor a duplicate
    ]);
    assert.deepEqual(r, { lost: 1, duplicated: 1, moved: 1, distinct: 4 });
  });

  it('the same seq used for two values is a duplicate', () => {
    assert.equal(
      reconcile(newTally(), [
        { seq: 1, value: 'a' },
        { seq: 1, value: 'b' },
      ]).duplicated,
      1,
    );
  });
});
