import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { FakeClock } from '../../protocol/clock.ts';
import { createTokenBucket, initialBucket, refill, take } from '../../store/token-bucket.ts';
import { throwsStore } from './fixtures.ts';

describe('token bucket', () => {
  it('starts full, refills at the rate, caps at the burst', () => {
    const cfg = { ratePerSec: 10, burst: 5 };
    let s = initialBucket(cfg, 1000);
    for (let i = 0; i < 5; i++) {
      const r = take(s, cfg, 1, 1000);
      assert.equal(r.ok, true);
      s = r.state;
    }
    const empty = take(s, cfg, 1, 1000);
    assert.deepEqual([empty.ok, empty.waitMs], [false, 100]);
    assert.equal(take(s, cfg, 1, 1100).ok, true);
    assert.equal(refill(s, cfg, 1_000_000).tokens, 5);
    assert.equal(take(s, cfg, 6, 1000).waitMs, Number.POSITIVE_INFINITY, 'more than the burst never fits');
  });

  it('never gains tokens when time goes backwards', () => {
    const cfg = { ratePerSec: 1, burst: 10 };
    const s = { tokens: 2, atMs: 5000 };
    assert.deepEqual(refill(s, cfg, 1000), { tokens: 2, atMs: 5000 });
  });

  it('never lets more through than burst + rate × time (property)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 100 }),
        fc.integer({ min: 1, max: 50 }),
        fc.array(fc.record({ dt: fc.integer({ min: 0, max: 500 }), n: fc.integer({ min: 0, max: 20 }) }), {
          maxLength: 200,
        }),
        (ratePerSec, burst, steps) => {
          const cfg = { ratePerSec, burst };
          let s = initialBucket(cfg, 0);
          let now = 0;
          let taken = 0;
          for (const step of steps) {
            now += step.dt;
            const r = take(s, cfg, step.n, now);
            s = r.state;
            if (r.ok) taken += step.n;
            else assert.ok(r.waitMs > 0);
            assert.ok(s.tokens >= 0 && s.tokens <= burst);
          }
          assert.ok(taken <= burst + (ratePerSec * now) / 1000 + 1e-9);
        },
      ),
    );
  });

  it('createTokenBucket reads monotonic time, so wall-clock jumps change nothing', () => {
    const clock = new FakeClock();
    const bucket = createTokenBucket({ ratePerSec: 2, burst: 2, clock });
    assert.equal(bucket.tryTake(2), true);
    assert.equal(bucket.tryTake(), false);
    clock.jumpWallMs(86_400_000);
    assert.equal(bucket.tryTake(), false);
    assert.equal(bucket.waitMs(), 500);
    clock.advance(500);
    assert.equal(bucket.waitMs(), 0);
    assert.equal(bucket.available(), 1);
    assert.equal(bucket.tryTake(), true);
  });

  it('rejects nonsense configurations and amounts', () => {
    throwsStore(() => initialBucket({ ratePerSec: 0, burst: 1 }, 0), 'STORE_BAD_ARGUMENT');
    throwsStore(() => initialBucket({ ratePerSec: 1, burst: Number.NaN }, 0), 'STORE_BAD_ARGUMENT');
    throwsStore(() => take({ tokens: 1, atMs: 0 }, { ratePerSec: 1, burst: 1 }, -1, 0), 'STORE_BAD_ARGUMENT');
  });
});
