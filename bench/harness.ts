// The bench interface: a bench file calls `runBench({ name, title, run })`; `run(ctx)` records figures.
// Alone it prints a table; with `--json` (how bench/run.ts spawns it) stdout is exactly one BenchReport
// and progress goes to stderr as `@@progress {…}` lines for the runner to draw. See bench/README.md.

import { describeMachine, type MachineDescription } from '../scripts/machine.ts';
import { createProgress, type Progress } from '../scripts/progress.ts';
import { textTable } from '../scripts/text-table.ts';

export const REPORT_SCHEMA = 'outpost.bench/v1';
export const PROGRESS_PREFIX = '@@progress ';

/** Which way is better for a figure; 'none' for descriptive figures (counts, sizes with no preference). */
export type Better = 'higher' | 'lower' | 'none';

export interface Figure {
  /** Stable id within its bench (targets and docs refer to it), e.g. 'enqueue.batched'. */
  readonly id: string;
  readonly label: string;
  readonly unit: string;
  readonly better: Better;
  /** One value per repeated run (each run is a full measurement, e.g. a rate or a run's p99). */
  readonly samples: readonly number[];
  readonly median: number;
  readonly min: number;
  readonly max: number;
  /** Counted or computed, not timed: one value, no spread (bytes per frame, readings per frame). */
  readonly exact?: boolean;
  /** Id of the figure in the same report this one is compared with. */
  readonly baseline?: string;
  /** median / baseline median, both measured in the same run of the same process. */
  readonly ratio?: number;
  readonly note?: string;
}

export interface BenchReport {
  readonly schema: typeof REPORT_SCHEMA;
  readonly bench: string;
  readonly title: string;
  readonly startedAt: string;
  readonly durationMs: number;
  readonly repeats: number;
  readonly quick: boolean;
  /** Machine and its load when the bench started. */
  readonly machine: MachineDescription;
  readonly loadAtEnd: readonly [number, number, number];
  readonly figures: readonly Figure[];
  readonly notes: readonly string[];
}

export interface FigureInput {
  readonly id: string;
  readonly label: string;
  readonly unit: string;
  readonly better: Better;
  readonly samples: readonly number[];
  readonly baseline?: string;
  readonly exact?: boolean;
  readonly note?: string;
}

export interface BenchContext {
  /** Measured runs per figure (`--repeats`, default 5); warm-up runs come on top. */
  readonly repeats: number;
  /** `--quick`: small sizes, for checking that a bench works, not for figures. */
  readonly quick: boolean;
  /** `full` normally, `quick` (default full/100, at least 1) under --quick. */
  size(full: number, quick?: number): number;
  progress(done: number, total: number, detail?: string): void;
  /** A line for people, on stderr. */
  log(line: string): void;
  /** A remark published with the figures (method, caveats). */
  note(text: string): void;
  /**
   * Runs `once` `warmup` times (default 1, results dropped) then `repeats` times; returns the measured results.
   * Progress is reported per run under `label`.
   */
  repeat<T>(
    label: string,
    once: (run: number) => Promise<T> | T,
    options?: { readonly repeats?: number; readonly warmup?: number },
  ): Promise<T[]>;
  /** Records a figure (a baseline must be recorded before the figures that refer to it). */
  figure(input: FigureInput): Figure;
  /** Records a deterministic figure (one value). */
  exact(id: string, label: string, unit: string, value: number, note?: string): Figure;
}

export interface BenchDefinition {
  /** The file stem: bench/<name>.bench.ts. */
  readonly name: string;
  readonly title: string;
  run(ctx: BenchContext): Promise<void>;
}

export function median(values: readonly number[]): number {
  if (values.length === 0) return Number.NaN;
  const s = [...values].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/** Nearest-rank percentile (p in 0..100) of already sorted values. */
export function percentileSorted(sorted: readonly number[] | Float64Array, p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))]!;
}

export interface LatencySummary {
  readonly count: number;
  readonly p50: number;
  readonly p90: number;
  readonly p99: number;
  readonly max: number;
  readonly mean: number;
}

/** p50/p90/p99/max/mean of a latency sample (any unit). */
export function summarizeLatencies(values: readonly number[] | Float64Array): LatencySummary {
  const s = Float64Array.from(values).sort();
  let sum = 0;
  for (const v of s) sum += v;
  return {
    count: s.length,
    p50: percentileSorted(s, 50),
    p90: percentileSorted(s, 90),
    p99: percentileSorted(s, 99),
    max: s.length > 0 ? s[s.length - 1]! : Number.NaN,
    mean: s.length > 0 ? sum / s.length : Number.NaN,
  };
}

/** Runs `call` `n` times one after another; each run's latency in ms. */
export async function timeCalls(n: number, call: () => Promise<unknown>): Promise<Float64Array> {
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const t = now();
    await call();
    out[i] = elapsedMs(t);
  }
  return out;
}

/**
 * What the bare `ws` echo baselines send: a tool.call envelope's size on the wire (protocol/envelope.ts vectors are
 * 300–400 bytes), so the baseline moves what a call moves.
 */
export const ECHO_MESSAGE = JSON.stringify({
  v: 2,
  id: 'AAAAAAAAAAAAAAAAAAAAAA',
  tid: '0e6c3a3d-952c-55af-be8a-3d562dcf52c7',
  type: 'tool.call',
  ts: 1767225660000,
  seq: 1,
  src: 'cp:bench',
  dst: 'did:key:z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK',
  body: { callId: 'c-000000000001', tool: 'climate.read', args: { zone: 3 }, deadlineMs: 1767225690000 },
});

/** Nanosecond timer start; pair with `elapsedMs` / `ratePerSecond`. */
export function now(): bigint {
  return process.hrtime.bigint();
}

export function elapsedMs(startNs: bigint): number {
  return Number(process.hrtime.bigint() - startNs) / 1e6;
}

export function ratePerSecond(count: number, startNs: bigint): number {
  return count / (elapsedMs(startNs) / 1000);
}

/** Builds a figure from its samples; throws on an empty or non-finite sample (a bench bug, not a result). */
export function makeFigure(input: FigureInput, baseline?: Figure): Figure {
  if (input.samples.length === 0 || input.samples.some((v) => !Number.isFinite(v))) {
    throw new Error(`figure ${input.id}: samples must be finite numbers, got [${input.samples.join(', ')}]`);
  }
  const med = median(input.samples);
  return {
    id: input.id,
    label: input.label,
    unit: input.unit,
    better: input.better,
    samples: [...input.samples],
    median: med,
    min: Math.min(...input.samples),
    max: Math.max(...input.samples),
    ...(input.exact ? { exact: true } : {}),
    ...(baseline ? { baseline: baseline.id, ratio: med / baseline.median } : {}),
    ...(input.note ? { note: input.note } : {}),
  };
}

/** Human number: 3 significant digits below 100, thousands separators above. */
export function formatValue(n: number): string {
  if (!Number.isFinite(n)) return String(n);
  if (Number.isInteger(n)) return n.toLocaleString('en-US');
  const a = Math.abs(n);
  if (a >= 100) return Math.round(n).toLocaleString('en-US');
  if (a >= 10) return n.toFixed(1);
  if (a >= 1) return n.toFixed(2);
  if (a === 0) return '0';
  return n.toPrecision(2);
}

export function formatRatio(r: number): string {
  return `${r >= 10 ? r.toFixed(1) : r.toFixed(2)}×`;
}

/** The figures of a report as an aligned table. */
export function figureTable(figures: readonly Figure[]): string {
  return textTable(
    [
      { title: 'figure' },
      { title: 'median', align: 'right' },
      { title: 'unit' },
      { title: 'min–max', align: 'right' },
      { title: 'vs baseline', align: 'right' },
    ],
    figures.map((f) => [
      f.label,
      formatValue(f.median),
      f.unit,
      f.exact ? 'exact' : `${formatValue(f.min)}–${formatValue(f.max)}`,
      f.ratio !== undefined ? `${formatRatio(f.ratio)} ${f.baseline}` : '',
    ]),
  );
}

function parseArgs(argv: readonly string[]): { json: boolean; repeats: number; quick: boolean } {
  const at = argv.indexOf('--repeats');
  const repeats = at >= 0 ? Number(argv[at + 1]) : 5;
  if (!Number.isSafeInteger(repeats) || repeats < 1) throw new Error('--repeats needs a whole number ≥ 1');
  return { json: argv.includes('--json'), repeats, quick: argv.includes('--quick') };
}

/** Runs a bench definition as this process's main program (see the file comment). */
export async function runBench(def: BenchDefinition, argv: readonly string[] = process.argv.slice(2)): Promise<void> {
  const args = parseArgs(argv);
  const machine = describeMachine();
  const startedAt = new Date().toISOString();
  const t0 = now();
  const figures: Figure[] = [];
  const notes: string[] = [];
  const bars = new Map<string, Progress>();
  let currentLabel = def.name;

  /** One bar per label: the runs of a repeat(), or a bench's own progress inside a run (`label · unit`). */
  const emit = (label: string, done: number, total: number, detail: string) => {
    if (args.json) {
      process.stderr.write(`${PROGRESS_PREFIX}${JSON.stringify({ label, done, total, detail })}\n`);
      return;
    }
    let bar = bars.get(label);
    if (!bar) {
      bar = createProgress({ total, label: `${def.name}: ${label}` });
      bars.set(label, bar);
    }
    bar.update(done, detail);
    if (done >= total) {
      bar.finish();
      bars.delete(label);
    }
  };
  const progress = (done: number, total: number, detail = '') =>
    emit(`${currentLabel} · ${detail || 'progress'}`, done, total, '');

  const ctx: BenchContext = {
    repeats: args.repeats,
    quick: args.quick,
    size: (full, quick) => (args.quick ? (quick ?? Math.max(1, Math.floor(full / 100))) : full),
    progress,
    log: (line) => void process.stderr.write(`${line}\n`),
    note: (text) => void notes.push(text),
    async repeat(label, once, options = {}) {
      const repeats = options.repeats ?? args.repeats;
      const warmup = options.warmup ?? 1;
      currentLabel = label;
      const out = [];
      const total = warmup + repeats;
      emit(label, 0, total, 'warm-up');
      for (let i = 0; i < total; i++) {
        const r = await once(i);
        if (i >= warmup) out.push(r);
        emit(label, i + 1, total, i + 1 < warmup ? 'warm-up' : '');
      }
      return out;
    },
    figure(input) {
      if (figures.some((f) => f.id === input.id)) throw new Error(`figure ${input.id} recorded twice`);
      let base: Figure | undefined;
      if (input.baseline !== undefined) {
        base = figures.find((f) => f.id === input.baseline);
        if (!base) throw new Error(`figure ${input.id}: baseline ${input.baseline} not recorded yet`);
      }
      const f = makeFigure(input, base);
      figures.push(f);
      return f;
    },
    exact(id, label, unit, value, note) {
      return ctx.figure({ id, label, unit, better: 'none', samples: [value], exact: true, ...(note ? { note } : {}) });
    },
  };

  await def.run(ctx);
  const report: BenchReport = {
    schema: REPORT_SCHEMA,
    bench: def.name,
    title: def.title,
    startedAt,
    durationMs: elapsedMs(t0),
    repeats: args.repeats,
    quick: args.quick,
    machine,
    loadAtEnd: describeMachine().loadAvg,
    figures,
    notes,
  };
  if (args.json) {
    process.stdout.write(`${JSON.stringify(report)}\n`);
  } else {
    process.stdout.write(`\n${def.title}\n\n${figureTable(figures)}`);
    for (const n of notes) process.stdout.write(`  · ${n}\n`);
  }
}

/** Checks that a parsed value is a BenchReport (the runner reads other processes' output). */
export function isBenchReport(v: unknown): v is BenchReport {
  if (typeof v !== 'object' || v === null) return false;
  const r = v as Partial<BenchReport>;
  return (
    r.schema === REPORT_SCHEMA &&
    typeof r.bench === 'string' &&
    Array.isArray(r.figures) &&
    r.figures.every(
      (f) =>
        typeof f?.id === 'string' &&
        typeof f.median === 'number' &&
        Array.isArray(f.samples) &&
        typeof f.unit === 'string',
    )
  );
}
