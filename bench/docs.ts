// Renders docs/benchmarks.md from the committed summaries in bench/results/: bench figures (bench/run.ts),
// the last long fuzz run (test/fuzz/run.ts), chaos results (test/chaos/run.ts) and the soak curve
// (test/soak/run.ts). `node bench/docs.ts` rewrites the page; each runner does so after it saves its summary.

import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { MachineDescription } from '../scripts/machine.ts';
import { machineLine } from '../scripts/machine.ts';
import { markdownTable } from '../scripts/text-table.ts';
import { type BenchReport, type Figure, formatRatio, formatValue, isBenchReport } from './harness.ts';
import { TARGETS, type Target } from './targets.ts';

export const ROOT = resolve(import.meta.dirname, '..');
export const RESULTS_DIR = join(ROOT, 'bench/results');
export const BENCH_SUMMARY = join(RESULTS_DIR, 'summary.json');
export const FUZZ_SUMMARY = join(RESULTS_DIR, 'fuzz-summary.json');
export const CHAOS_SUMMARY = join(RESULTS_DIR, 'chaos-summary.json');
export const SOAK_SUMMARY = join(RESULTS_DIR, 'soak-summary.json');
export const DOC_PATH = join(ROOT, 'docs/benchmarks.md');

export interface BenchSummary {
  readonly schema: 'outpost.bench-summary/v1';
  /** Latest full (not --quick) report per bench. */
  readonly reports: Readonly<Record<string, BenchReport>>;
}

export interface FuzzRow {
  readonly decoder: string;
  readonly module: string;
  readonly cases: number;
  readonly accepted: number;
  readonly rejected: number;
  readonly crashes: number;
  readonly hangs: number;
  readonly maxUs: number;
  readonly medianUs: number;
}

export interface FuzzSummary {
  readonly schema: 'outpost.fuzz/v1';
  readonly startedAt: string;
  readonly durationMs: number;
  readonly machine: MachineDescription;
  readonly casesPerDecoder: number;
  readonly workers: number;
  readonly budgetMs: number;
  readonly rows: readonly FuzzRow[];
}

export interface ChaosRow {
  readonly scenario: string;
  readonly cycles: number;
  readonly sent: number;
  readonly acknowledged: number;
  readonly stored: number;
  readonly lost: number;
  readonly duplicated: number;
  readonly maxRecoveryMs: number;
  readonly passed: boolean;
  readonly note?: string;
}

export interface ChaosSummary {
  readonly schema: 'outpost.chaos/v1';
  readonly startedAt: string;
  readonly durationMs: number;
  readonly machine: MachineDescription;
  readonly mode: 'full' | 'ci';
  readonly rows: readonly ChaosRow[];
}

export interface SoakSummary {
  readonly schema: 'outpost.soak/v1';
  readonly startedAt: string;
  readonly durationMs: number;
  readonly machine: MachineDescription;
  readonly hours: number;
  readonly warmupMinutes: number;
  readonly passed: boolean;
  /** Markdown (table and plot) written by the soak runner. */
  readonly markdown: string;
}

function readJson<T>(path: string, check: (v: unknown) => v is T): T | undefined {
  if (!existsSync(path)) return undefined;
  const v: unknown = JSON.parse(readFileSync(path, 'utf8'));
  if (!check(v)) throw new Error(`${path} is not in the expected format`);
  return v;
}

const isSummary = (v: unknown): v is BenchSummary =>
  typeof v === 'object' &&
  v !== null &&
  (v as BenchSummary).schema === 'outpost.bench-summary/v1' &&
  Object.values((v as BenchSummary).reports ?? {}).every(isBenchReport);
const hasSchema =
  <T>(schema: string) =>
  (v: unknown): v is T =>
    typeof v === 'object' && v !== null && (v as { schema?: unknown }).schema === schema;

export function readBenchSummary(): BenchSummary {
  return readJson(BENCH_SUMMARY, isSummary) ?? { schema: 'outpost.bench-summary/v1', reports: {} };
}

export interface DocInputs {
  readonly bench: BenchSummary;
  readonly fuzz?: FuzzSummary;
  readonly chaos?: ChaosSummary;
  readonly soak?: SoakSummary;
}

export function readDocInputs(): DocInputs {
  const fuzz = readJson(FUZZ_SUMMARY, hasSchema<FuzzSummary>('outpost.fuzz/v1'));
  const chaos = readJson(CHAOS_SUMMARY, hasSchema<ChaosSummary>('outpost.chaos/v1'));
  const soak = readJson(SOAK_SUMMARY, hasSchema<SoakSummary>('outpost.soak/v1'));
  return {
    bench: readBenchSummary(),
    ...(fuzz ? { fuzz } : {}),
    ...(chaos ? { chaos } : {}),
    ...(soak ? { soak } : {}),
  };
}

export type TargetStatus =
  | { readonly state: 'met' | 'gap'; readonly value: number; readonly figure: Figure; readonly report: BenchReport }
  | { readonly state: 'not measured'; readonly why: string };

export function evaluateTarget(t: Target, summary: BenchSummary): TargetStatus {
  const report = summary.reports[t.bench];
  if (!report) return { state: 'not measured', why: `bench ${t.bench} has not run (needs ${t.needs})` };
  const figure = report.figures.find((f) => f.id === t.figure);
  if (!figure)
    return { state: 'not measured', why: `bench ${t.bench} has no figure ${t.figure} yet (needs ${t.needs})` };
  const value = t.measure === 'ratio' ? figure.ratio : figure.median;
  if (value === undefined) return { state: 'not measured', why: `figure ${t.figure} has no baseline ratio` };
  const met = t.op === '>=' ? value >= t.bound : value <= t.bound;
  return { state: met ? 'met' : 'gap', value, figure, report };
}

const day = (iso: string) => iso.slice(0, 10);
const bound = (t: Target) => `${t.op === '>=' ? '≥' : '≤'} ${formatValue(t.bound)} ${t.unit}`;

function measuredText(t: Target, s: TargetStatus): string {
  if (s.state === 'not measured') return '—';
  const f = s.figure;
  if (t.measure === 'ratio') return `${formatRatio(s.value)} (${formatValue(f.median)} ${f.unit})`;
  return f.exact
    ? `${formatValue(f.median)} ${f.unit}`
    : `${formatValue(f.median)} ${f.unit} (${formatValue(f.min)}–${formatValue(f.max)})`;
}

/** Would the target's verdict change anywhere in the figure's min–max range? */
function straddles(t: Target, s: TargetStatus): boolean {
  if (s.state === 'not measured' || t.measure === 'ratio' || s.figure.exact) return false;
  const ok = (v: number) => (t.op === '>=' ? v >= t.bound : v <= t.bound);
  return ok(s.figure.min) !== ok(s.figure.max);
}

function figureRows(figures: readonly Figure[]): string[][] {
  return figures.map((f) => [
    f.label,
    `${formatValue(f.median)} ${f.unit}`,
    f.exact ? 'exact' : `${formatValue(f.min)}–${formatValue(f.max)}`,
    f.ratio !== undefined ? `${formatRatio(f.ratio)} of \`${f.baseline}\`` : '',
    `\`${f.id}\``,
  ]);
}

export function renderBenchmarksDoc(inputs: DocInputs): string {
  const out: string[] = [];
  const push = (...lines: string[]) => out.push(...lines);
  const reports = Object.values(inputs.bench.reports).sort((a, b) => a.bench.localeCompare(b.bench));
  push(
    '# Benchmarks, fuzzing, chaos and soak',
    '',
    '<!-- Generated by bench/docs.ts from bench/results/*summary.json: run the suites, do not edit by hand. -->',
    '',
    'What Outpost is measured to do, on which machine, and where it falls short. Every figure is the median of',
    'repeated runs with the min–max range beside it; where a baseline exists (a bare `better-sqlite3` insert loop,',
    'a bare `ws` echo, `node -e 0`), the ratio to it was measured in the same process in the same run, so it',
    'means more than the absolute number. The machines these ran on are shared and noisy: read the load column.',
    '',
    '| command | what it does |',
    '| --- | --- |',
    '| `npm run bench` | every `bench/*.bench.ts`; writes `bench/results/` and this page (`npm run bench -- NAME` for one) |',
    '| `npm run fuzz -- --cases N` | every decoder of outside bytes in `test/fuzz/decoders.ts` (default 1,000,000 cases each) |',
    '| `npm run chaos` | real processes on loopback under kill -9, a misbehaving TCP proxy, full disks, clock jumps, and a LoRa site whose gateway is killed, loses its radio and fills its disk |',
    '| `npm run soak -- --hours H` | control plane, gateway and agents on emulated radios under steady load, sampled every minute |',
    '',
  );

  push('## Machines', '');
  if (reports.length === 0) push('No bench has been run yet.', '');
  else {
    push(
      markdownTable(
        [{ title: 'bench' }, { title: 'date' }, { title: 'machine' }, { title: 'load at end' }, { title: 'runs' }],
        reports.map((r) => [
          r.bench,
          day(r.startedAt),
          machineLine(r.machine),
          r.loadAtEnd.map((x) => x.toFixed(1)).join(' / '),
          String(r.repeats),
        ]),
      ),
    );
  }

  const statuses = TARGETS.map((t) => ({ t, s: evaluateTarget(t, inputs.bench) }));
  push('## Targets', '');
  push(
    markdownTable(
      [{ title: 'target' }, { title: 'bound' }, { title: 'measured: median (min–max)' }, { title: 'status' }],
      statuses.map(({ t, s }) => [
        t.label,
        bound(t),
        measuredText(t, s),
        s.state === 'not measured'
          ? 'not measured'
          : `${s.state}${straddles(t, s) ? ' (range crosses the bound)' : ''}`,
      ]),
    ),
  );

  push('## Known gaps', '');
  const gaps: string[] = [];
  for (const { t, s } of statuses) {
    if (s.state === 'gap') {
      gaps.push(
        `- **${t.label}**: ${measuredText(t, s)} against ${bound(t)} (bench \`${t.bench}\`, ${day(s.report.startedAt)}, load ${s.report.machine.loadAvg[0].toFixed(1)}).`,
      );
    } else if (s.state === 'not measured') gaps.push(`- **${t.label}**: not measured — ${s.why}.`);
    else if (straddles(t, s)) gaps.push(`- **${t.label}**: the median meets ${bound(t)}, but not every run did.`);
  }
  for (const r of reports) {
    if (r.machine.loadAvg[0] > r.machine.availableCpus) {
      gaps.push(
        `- \`${r.bench}\` ran with load ${r.machine.loadAvg[0].toFixed(1)} on ${r.machine.availableCpus} CPUs: its absolute figures are pessimistic; the ratios hold better.`,
      );
    }
  }
  if (inputs.fuzz) {
    for (const row of inputs.fuzz.rows.filter((x) => x.crashes > 0 || x.hangs > 0)) {
      gaps.push(`- fuzzing \`${row.decoder}\`: ${row.crashes} crashes, ${row.hangs} cases over the time budget.`);
    }
  }
  if (inputs.chaos) {
    for (const row of inputs.chaos.rows.filter((x) => !x.passed)) {
      gaps.push(`- chaos \`${row.scenario}\` failed: ${row.note ?? `${row.lost} lost, ${row.duplicated} duplicated`}.`);
    }
  }
  if (inputs.soak && !inputs.soak.passed) gaps.push('- the last soak failed (see Soak below).');
  push(...(gaps.length > 0 ? gaps : ['None: every target is met.']), '');

  push('## Figures', '');
  for (const r of reports) {
    push(`### ${r.title} (\`${r.bench}\`)`, '');
    push(
      `${day(r.startedAt)}, ${r.repeats} measured runs per figure after a warm-up, load ${r.machine.loadAvg[0].toFixed(1)} → ${r.loadAtEnd[0].toFixed(1)}; \`npm run bench -- ${r.bench}\`.`,
      '',
    );
    push(
      markdownTable(
        [
          { title: 'figure' },
          { title: 'median', align: 'right' },
          { title: 'min–max', align: 'right' },
          { title: 'vs baseline (same run)' },
          { title: 'id' },
        ],
        figureRows(r.figures),
      ),
    );
    for (const n of r.notes) push(`- ${n}`);
    if (r.notes.length > 0) push('');
  }

  push('## Fuzzing', '');
  if (!inputs.fuzz) push('`npm run fuzz` has not been run yet.', '');
  else {
    const z = inputs.fuzz;
    push(
      `${day(z.startedAt)}: ${z.casesPerDecoder.toLocaleString('en-US')} cases per decoder over ${z.workers} workers in ${(z.durationMs / 60000).toFixed(1)} min; per-case budget ${z.budgetMs} ms; ${machineLine(z.machine)}.`,
      '',
      markdownTable(
        [
          { title: 'decoder' },
          { title: 'cases', align: 'right' },
          { title: 'accepted', align: 'right' },
          { title: 'rejected', align: 'right' },
          { title: 'crashes', align: 'right' },
          { title: 'hangs', align: 'right' },
          { title: 'max µs', align: 'right' },
          { title: 'median µs', align: 'right' },
        ],
        z.rows.map((x) => [
          `\`${x.decoder}\``,
          x.cases.toLocaleString('en-US'),
          x.accepted.toLocaleString('en-US'),
          x.rejected.toLocaleString('en-US'),
          String(x.crashes),
          String(x.hangs),
          formatValue(x.maxUs),
          formatValue(x.medianUs),
        ]),
      ),
    );
  }

  push(
    '## Chaos',
    '',
    'What each scenario does and checks, and which run in `npm test` (short variants): test/chaos/README.md.',
    '',
  );
  if (!inputs.chaos) push('`npm run chaos` has not been run yet.', '');
  else {
    const c = inputs.chaos;
    push(
      `${day(c.startedAt)} (${c.mode === 'ci' ? 'the short CI variant' : 'full run'}, ${(c.durationMs / 60000).toFixed(1)} min); ${machineLine(c.machine)}.`,
      '',
      markdownTable(
        [
          { title: 'scenario' },
          { title: 'cycles', align: 'right' },
          { title: 'sent', align: 'right' },
          { title: 'acknowledged', align: 'right' },
          { title: 'stored', align: 'right' },
          { title: 'lost', align: 'right' },
          { title: 'duplicated', align: 'right' },
          { title: 'max recovery', align: 'right' },
          { title: 'result' },
        ],
        c.rows.map((x) => [
          x.scenario,
          String(x.cycles),
          x.sent.toLocaleString('en-US'),
          x.acknowledged.toLocaleString('en-US'),
          x.stored.toLocaleString('en-US'),
          String(x.lost),
          String(x.duplicated),
          `${formatValue(x.maxRecoveryMs)} ms`,
          `${x.passed ? 'pass' : 'FAIL'}${x.note ? ` — ${x.note}` : ''}`,
        ]),
      ),
    );
  }

  push('## Soak', '');
  if (!inputs.soak) push('`npm run soak` has not been run yet.', '');
  else {
    const k = inputs.soak;
    push(
      `${day(k.startedAt)}: ${k.hours} h, warm-up ${k.warmupMinutes} min, ${k.passed ? 'passed' : 'FAILED'}; ${machineLine(k.machine)}.`,
      '',
      k.markdown.trimEnd(),
      '',
    );
  }
  return `${out
    .join('\n')
    .replace(/\n{3,}/g, '\n\n')
    .trimEnd()}\n`;
}

export function writeBenchmarksDoc(): void {
  writeFileSync(DOC_PATH, renderBenchmarksDoc(readDocInputs()));
}

if (process.argv[1] && resolve(process.argv[1]) === resolve(import.meta.filename)) {
  writeBenchmarksDoc();
  process.stdout.write(`wrote ${DOC_PATH}\n`);
}
