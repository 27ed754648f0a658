import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { isOutpostError } from '../../protocol/errors.ts';
import { createReplayWindow, LORA_SEQ_MAX, type ReplayVerdict } from '../../protocol/lora.ts';

function codeOf(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    return isOutpostError(e) ? e.code : `untyped: ${String(e)}`;
  }
  return 'accepted';
}

/** The specification as a model: every accepted seq remembered forever, the window rule applied on top. */
function modelVerdict(seen: Set<number>, highest: number, windowSize: number, seq: number): ReplayVerdict {
  if (seq > highest) return 'fresh';
  if (highest - seq >= windowSize) return 'too-old';
  return seen.has(seq) ? 'replay' : 'fresh';
}

/** Seqs that mostly move forward with reordering, repeats and occasional jumps, as LoRa delivery produces. */
const arrivals = fc.array(
  fc.oneof(
    { arbitrary: fc.integer({ min: -5, max: 3 }), weight: 6 },
    { arbitrary: fc.integer({ min: -300, max: 300 }), weight: 1 },
    { arbitrary: fc.constant(0), weight: 2 },
  ),
  { maxLength: 400 },
);

describe('replay window', () => {
  for (const windowSize of [1, 64, 100, 1024]) {
    it(`agrees with the model for window ${windowSize}`, () => {
      fc.assert(
        fc.property(fc.integer({ min: 0, max: 1000 }), arrivals, (start, steps) => {
          const w = createReplayWindow({ windowSize });
          const seen = new Set<number>();
          let highest = -1;
          let cursor = start;
          for (const step of steps) {
            cursor = Math.max(0, cursor + step);
            const expected = modelVerdict(seen, highest, windowSize, cursor);
            assert.equal(w.check(cursor), expected);
            if (expected === 'fresh') {
              w.accept(cursor);
              seen.add(cursor);
              highest = Math.max(highest, cursor);
            } else {
              assert.equal(
                codeOf(() => w.accept(cursor)),
                expected === 'replay' ? 'LORA_REPLAY' : 'LORA_SEQ_TOO_OLD',
              );
            }
          }
        }),
        { numRuns: 200 },
      );
    });
  }

  it('resumes from its persisted state with the same verdicts', () => {
    fc.assert(
      fc.property(
        fc.uniqueArray(fc.integer({ min: 0, max: 500 }), { maxLength: 80 }),
        fc.nat(600),
        (accepted, probe) => {
          const a = createReplayWindow({ windowSize: 128 });
          for (const s of accepted) if (a.check(s) === 'fresh') a.accept(s);
          const state = JSON.parse(JSON.stringify(a.state()));
          const b = createReplayWindow({ windowSize: 128, state });
          assert.equal(b.check(probe), a.check(probe));
          assert.deepEqual(b.state(), a.state());
        },
      ),
    );
  });

  it('handles the ends of the seq space and refuses malformed input', () => {
    const w = createReplayWindow({ windowSize: 8 });
    w.accept(LORA_SEQ_MAX);
    assert.equal(w.check(LORA_SEQ_MAX), 'replay');
    assert.equal(w.check(LORA_SEQ_MAX - 8), 'too-old');
    assert.equal(w.check(0), 'too-old');
    assert.equal(
      codeOf(() => w.check(LORA_SEQ_MAX + 1)),
      'LORA_SEQ_OUT_OF_RANGE',
    );
    assert.equal(
      codeOf(() => w.check(-1)),
      'LORA_SEQ_OUT_OF_RANGE',
    );
    assert.equal(
      codeOf(() => createReplayWindow({ windowSize: 0 })),
      'LORA_VALUE_UNSUPPORTED',
    );
    assert.equal(
      codeOf(() => createReplayWindow({ windowSize: 2048 })),
      'LORA_VALUE_UNSUPPORTED',
    );
    assert.equal(
      codeOf(() => createReplayWindow({ state: { highest: 5, bitmapHex: 'xyz' } })),
      'LORA_VALUE_UNSUPPORTED',
    );
    assert.equal(
      codeOf(() => createReplayWindow({ state: { highest: -2, bitmapHex: '0' } })),
      'LORA_VALUE_UNSUPPORTED',
    );
    const fresh = createReplayWindow();
    assert.deepEqual(fresh.state(), { highest: -1, bitmapHex: '0' });
    assert.equal(fresh.check(0), 'fresh');
  });
});
