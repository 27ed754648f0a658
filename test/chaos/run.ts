// `npm run chaos [-- --ci] [--only NAME[,NAME…]]`: runs every chaos scenario (test/chaos/scenarios.ts) with real
// processes on loopback, prints the results table (scenario, cycles, sent, acknowledged, stored, lost,
// duplicated, max recovery) and saves it for docs/benchmarks.md. Exit 1 when any scenario fails.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createProgress, formatDuration } from '../../scripts/progress.ts';
import { type ChaosRow, chaosTable, saveChaosSummary } from './harness/report.ts';
import { SCENARIOS } from './scenarios.ts';

const argv = process.argv.slice(2);
const mode = argv.includes('--ci') ? ('ci' as const) : ('full' as const);
const onlyAt = argv.indexOf('--only');
const only = onlyAt >= 0 ? (argv[onlyAt + 1] ?? '').split(',') : [];
const chosen = only.length === 0 ? SCENARIOS : SCENARIOS.filter((s) => only.some((n) => s.name.includes(n)));

const rows: ChaosRow[] = [];
const skipped: string[] = [];
const started = performance.now();
for (const s of chosen) {
  const why = s.unavailable();
  if (why) {
    skipped.push(`${s.name}: ${why}`);
    continue;
  }
  process.stderr.write(`chaos: ${s.name} — ${s.claim}\n`);
  const dir = mkdtempSync(join(tmpdir(), 'outpost-chaos-'));
  let bar: ReturnType<typeof createProgress> | undefined;
  try {
    const row = await s.run({
      mode,
      dir,
      log: (line) => void process.stderr.write(`  [${s.name}] ${line}\n`),
      progress(done, total) {
        bar ??= createProgress({ total, label: `  ${s.name}` });
        bar.update(done);
        if (done >= total) bar.finish();
      },
    });
    rows.push(
      s.knownIssue && !row.passed
        ? { ...row, note: `${row.note ? `${row.note}; ` : ''}known issue: ${s.knownIssue}` }
        : row,
    );
  } catch (e) {
    rows.push({
      scenario: s.name,
      cycles: 0,
      sent: 0,
      acknowledged: 0,
      stored: 0,
      lost: 0,
      duplicated: 0,
      maxRecoveryMs: 0,
      passed: false,
      note: `did not complete: ${(e as Error).message.split('\n')[0]}`,
    });
    process.stderr.write(`${(e as Error).stack ?? String(e)}\n`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
const durationMs = performance.now() - started;
process.stdout.write(`\n${chaosTable(rows)}`);
for (const s of skipped) process.stdout.write(`skipped ${s}\n`);
// Only full runs are published; the short CI variant would hide the long one.
if (only.length === 0 && rows.length > 0 && mode === 'full') saveChaosSummary(rows, mode, durationMs);
const failed = rows.filter((r) => !r.passed).length;
process.stdout.write(`\n${rows.length - failed}/${rows.length} scenarios passed in ${formatDuration(durationMs)}\n`);
process.exitCode = failed > 0 ? 1 : 0;
