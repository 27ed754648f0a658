// `npm run bench [-- NAME… ] [--repeats N] [--quick] [--list]`: runs every bench/*.bench.ts (or those whose
// name contains a NAME) as its own process with --json, draws their progress, prints their figures, saves
// bench/results/<date>-<name>.json, updates bench/results/summary.json and rewrites docs/benchmarks.md.

import { spawn } from 'node:child_process';
import { mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { createProgress, formatDuration, type Progress } from '../scripts/progress.ts';
import {
  BENCH_SUMMARY,
  type BenchSummary,
  DOC_PATH,
  RESULTS_DIR,
  ROOT,
  readBenchSummary,
  writeBenchmarksDoc,
} from './docs.ts';
import { type BenchReport, figureTable, isBenchReport, PROGRESS_PREFIX } from './harness.ts';

interface Options {
  readonly names: readonly string[];
  readonly repeats?: number;
  readonly quick: boolean;
  readonly list: boolean;
  readonly write: boolean;
  readonly timeoutMin: number;
}

function parse(argv: readonly string[]): Options {
  const names: string[] = [];
  let repeats: number | undefined;
  let timeoutMin = 60;
  let quick = false;
  let list = false;
  let write = true;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--repeats') repeats = Number(argv[++i]);
    else if (a === '--timeout-min') timeoutMin = Number(argv[++i]);
    else if (a === '--quick') quick = true;
    else if (a === '--list') list = true;
    else if (a === '--no-write') write = false;
    else if (a.startsWith('--')) throw new Error(`unknown option ${a}`);
    else names.push(a);
  }
  if (repeats !== undefined && !(Number.isSafeInteger(repeats) && repeats >= 1)) throw new Error('--repeats N, N ≥ 1');
  // Figures from --quick runs are not figures: never publish them.
  return { names, ...(repeats ? { repeats } : {}), quick, list, write: write && !quick, timeoutMin };
}

export function benchFiles(): string[] {
  return readdirSync(join(ROOT, 'bench'))
    .filter((f) => f.endsWith('.bench.ts'))
    .sort();
}

/** Runs one bench file as a child process; resolves with its report or an error text. */
async function runOne(file: string, o: Options): Promise<BenchReport | { error: string }> {
  const name = file.replace(/\.bench\.ts$/, '');
  const args = [join(ROOT, 'bench', file), '--json', ...(o.repeats ? ['--repeats', String(o.repeats)] : [])];
  if (o.quick) args.push('--quick');
  const child = spawn(process.execPath, args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  child.stdout.setEncoding('utf8').on('data', (c: string) => (stdout += c));
  const bars = new Map<string, Progress>();
  const tail: string[] = [];
  createInterface({ input: child.stderr }).on('line', (line) => {
    if (line.startsWith(PROGRESS_PREFIX)) {
      const p = JSON.parse(line.slice(PROGRESS_PREFIX.length)) as {
        label: string;
        done: number;
        total: number;
        detail: string;
      };
      let bar = bars.get(p.label);
      if (!bar) {
        bar = createProgress({ total: p.total, label: `${name}: ${p.label}` });
        bars.set(p.label, bar);
      }
      bar.update(p.done, p.detail);
      if (p.done >= p.total) {
        bar.finish();
        bars.delete(p.label); // the same label may start again (the next run of a repeat)
      }
      return;
    }
    tail.push(line);
    if (tail.length > 40) tail.shift();
    process.stderr.write(`  [${name}] ${line}\n`);
  });
  const timer = setTimeout(() => child.kill('SIGKILL'), o.timeoutMin * 60_000);
  const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve) =>
    child.on('close', (c, s) => resolve([c, s])),
  );
  clearTimeout(timer);
  if (code !== 0) return { error: `exited with ${code ?? signal}\n${tail.join('\n')}` };
  try {
    const report: unknown = JSON.parse(stdout.trim().split('\n').pop() ?? '');
    if (!isBenchReport(report)) return { error: 'printed JSON that is not a BenchReport (bench/README.md)' };
    return report;
  } catch {
    return { error: 'did not print a BenchReport on stdout with --json (bench/README.md)' };
  }
}

async function main(): Promise<number> {
  const o = parse(process.argv.slice(2));
  const all = benchFiles();
  if (o.list) {
    for (const f of all) process.stdout.write(`${f.replace(/\.bench\.ts$/, '')}\n`);
    return 0;
  }
  const chosen = o.names.length === 0 ? all : all.filter((f) => o.names.some((n) => f.includes(n)));
  if (chosen.length === 0) {
    process.stderr.write(`no bench matches ${o.names.join(', ')}; --list shows them\n`);
    return 2;
  }
  const summary: BenchSummary = readBenchSummary();
  // Reports of benches that no longer exist are dropped, so the docs never show a figure nobody can re-run.
  const existing = new Set(all.map((f) => f.replace(/\.bench\.ts$/, '')));
  const reports = Object.fromEntries(Object.entries(summary.reports).filter(([name]) => existing.has(name)));
  const failures: string[] = [];
  const started = performance.now();
  for (const file of chosen) {
    const r = await runOne(file, o);
    if ('error' in r) {
      failures.push(`${file}: ${r.error}`);
      process.stderr.write(`\n${file} FAILED: ${r.error}\n`);
      continue;
    }
    process.stdout.write(`\n${r.title} (${formatDuration(r.durationMs)})\n\n${figureTable(r.figures)}`);
    for (const n of r.notes) process.stdout.write(`  · ${n}\n`);
    if (o.write) {
      mkdirSync(RESULTS_DIR, { recursive: true });
      writeFileSync(
        join(RESULTS_DIR, `${r.startedAt.slice(0, 10)}-${r.bench}.json`),
        `${JSON.stringify(r, null, 2)}\n`,
      );
      reports[r.bench] = r;
    }
  }
  if (o.write) {
    writeFileSync(BENCH_SUMMARY, `${JSON.stringify({ schema: 'outpost.bench-summary/v1', reports }, null, 2)}\n`);
    writeBenchmarksDoc();
    process.stdout.write(`\nwrote ${BENCH_SUMMARY} and ${DOC_PATH}\n`);
  }
  process.stdout.write(
    `\n${chosen.length - failures.length}/${chosen.length} benches ran in ${formatDuration(performance.now() - started)}\n`,
  );
  return failures.length > 0 ? 1 : 0;
}

process.exitCode = await main();
