// Chaos results: one row per scenario (cycles, records sent / acknowledged / stored, lost, duplicated, the
// longest recovery), printed as a table and saved for docs/benchmarks.md.

import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describeMachine } from '../../../scripts/machine.ts';
import { formatCount } from '../../../scripts/progress.ts';
import { textTable } from '../../../scripts/text-table.ts';

export interface ChaosRow {
  readonly scenario: string;
  readonly cycles: number;
  /** Records the producers offered. */
  readonly sent: number;
  /** Records the system said it had durably taken (the producer got "accepted"). */
  readonly acknowledged: number;
  /** Distinct records in the final store. */
  readonly stored: number;
  /** Acknowledged records missing from the store: must be 0. */
  readonly lost: number;
  /** Records stored more than once: must be 0. */
  readonly duplicated: number;
  /** Longest time from a fault to recovery (reconnected, draining again), ms. */
  readonly maxRecoveryMs: number;
  readonly passed: boolean;
  readonly note?: string;
}

const ROOT = resolve(import.meta.dirname, '../../..');

export function chaosTable(rows: readonly ChaosRow[]): string {
  return textTable(
    [
      { title: 'scenario' },
      { title: 'cycles', align: 'right' },
      { title: 'sent', align: 'right' },
      { title: 'acked', align: 'right' },
      { title: 'stored', align: 'right' },
      { title: 'lost', align: 'right' },
      { title: 'dup', align: 'right' },
      { title: 'max recovery', align: 'right' },
      { title: 'result' },
    ],
    rows.map((r) => [
      r.scenario,
      String(r.cycles),
      formatCount(r.sent),
      formatCount(r.acknowledged),
      formatCount(r.stored),
      String(r.lost),
      String(r.duplicated),
      `${formatCount(r.maxRecoveryMs)} ms`,
      `${r.passed ? 'pass' : 'FAIL'}${r.note ? ` (${r.note})` : ''}`,
    ]),
  );
}

/** Saves the rows as bench/results/chaos-summary.json and re-renders docs/benchmarks.md. */
export function saveChaosSummary(rows: readonly ChaosRow[], mode: 'full' | 'ci', durationMs: number): void {
  const summary = {
    schema: 'outpost.chaos/v1',
    startedAt: new Date(Date.now() - durationMs).toISOString(),
    durationMs,
    machine: describeMachine(),
    mode,
    rows,
  };
  writeFileSync(join(ROOT, 'bench/results/chaos-summary.json'), `${JSON.stringify(summary, null, 2)}\n`);
  spawnSync(process.execPath, [join(ROOT, 'bench/docs.ts')], { stdio: 'inherit' });
}
