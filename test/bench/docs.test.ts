// docs/benchmarks.md from summaries: targets met, missed (a known gap, never hidden) or not measured, the
// machine and load of each run, and the fuzz, chaos and soak sections.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { type BenchSummary, evaluateTarget, renderBenchmarksDoc } from '../../bench/docs.ts';
import { type BenchReport, makeFigure } from '../../bench/harness.ts';
import type { Target } from '../../bench/targets.ts';
import { describeMachine } from '../../scripts/machine.ts';

const machine = { ...describeMachine(), loadAvg: [0.5, 0.5, 0.5] as const, availableCpus: 2 };

function report(bench: string, figures: BenchReport['figures']): BenchReport {
  return {
    schema: 'outpost.bench/v1',
    bench,
    title: `${bench} title`,
    startedAt: '2026-01-02T03:04:05.000Z',
    durationMs: 1000,
    repeats: 5,
    quick: false,
    machine,
    loadAtEnd: [0.4, 0.4, 0.4],
    figures,
    notes: [],
  };
}

const fig = (id: string, samples: number[], base?: ReturnType<typeof makeFigure>) =>
  makeFigure(
    { id, label: id, unit: 'records/s', better: 'higher', samples, ...(base ? { baseline: base.id } : {}) },
    base,
  );

const target = (o: Partial<Target>): Target => ({
  id: 't',
  label: 'a target',
  bench: 'b',
  figure: 'f',
  measure: 'median',
  op: '>=',
  bound: 100,
  unit: 'records/s',
  needs: 'agent',
  ...o,
});

describe('benchmarks doc', () => {
  const base = fig('base', [10, 10, 10]);
  const summary: BenchSummary = {
    schema: 'outpost.bench-summary/v1',
    reports: { b: report('b', [base, fig('f', [90, 120, 150]), fig('slow', [20, 30, 40], base)]) },
  };

  it('evaluates targets on medians or ratios, and says why one is not measured', () => {
    assert.equal(evaluateTarget(target({}), summary).state, 'met');
    assert.equal(evaluateTarget(target({ bound: 200 }), summary).state, 'gap');
    assert.equal(
      evaluateTarget(target({ figure: 'slow', measure: 'ratio', op: '<=', bound: 3 }), summary).state,
      'met',
    );
    assert.equal(
      evaluateTarget(target({ figure: 'slow', measure: 'ratio', op: '<=', bound: 2 }), summary).state,
      'gap',
    );
    const missing = evaluateTarget(target({ bench: 'e2e' }), summary);
    assert.equal(missing.state, 'not measured');
    assert.match(missing.state === 'not measured' ? missing.why : '', /e2e has not run \(needs agent\)/);
  });

  it('renders machines, targets, every gap, figures with ratios, and the other suites', () => {
    const doc = renderBenchmarksDoc({
      bench: summary,
      fuzz: {
        schema: 'outpost.fuzz/v1',
        startedAt: '2026-01-02T00:00:00.000Z',
        durationMs: 60_000,
        machine,
        casesPerDecoder: 1_000_000,
        workers: 2,
        budgetMs: 250,
        rows: [
          {
            decoder: 'kiss',
            module: 'k.ts',
            cases: 10,
            accepted: 4,
            rejected: 6,
            crashes: 0,
            hangs: 0,
            maxUs: 9,
            medianUs: 1,
          },
          {
            decoder: 'bad',
            module: 'b.ts',
            cases: 10,
            accepted: 4,
            rejected: 5,
            crashes: 1,
            hangs: 0,
            maxUs: 9,
            medianUs: 1,
          },
        ],
      },
      chaos: {
        schema: 'outpost.chaos/v1',
        startedAt: '2026-01-02T00:00:00.000Z',
        durationMs: 60_000,
        machine,
        mode: 'full',
        rows: [
          {
            scenario: 'kill -9',
            cycles: 100,
            sent: 5,
            acknowledged: 5,
            stored: 5,
            lost: 0,
            duplicated: 0,
            maxRecoveryMs: 10,
            passed: true,
          },
        ],
      },
    });
    assert.match(doc, /\| b \| 2026-01-02 \| .*load 0\.5 \/ 0\.5 \/ 0\.5 \|/);
    assert.match(doc, /\| durable signed telemetry enqueue, batched \| ≥ 100,000 records\/s \| — \| not measured \|/);
    assert.match(doc, /\| `slow` \|/);
    assert.match(doc, /3\.00× of `base`/);
    assert.match(doc, /fuzzing `bad`: 1 crashes/);
    assert.match(doc, /\| kill -9 \| 100 \|/);
    assert.match(doc, /`npm run soak` has not been run yet/);
  });
});
