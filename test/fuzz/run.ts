// `npm run fuzz [-- --cases N] [--only NAME[,NAME…]] [--workers W] [--budget-ms MS] [--seed S]`: every decoder
// in test/fuzz/decoders.ts at N cases (default 1,000,000), sharded over worker threads (default: one per CPU),
// with a progress bar and a summary table (decoder, cases, accepted, rejected, crashes, hangs, max/median µs).
// A case over the per-case budget counts as a hang; one that never returns is caught by a watchdog, its input
// saved, its thread replaced. Crash and hang inputs go to test-artifacts/fuzz/. Exit 1 on any crash or hang.

import { spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import { describeMachine } from '../../scripts/machine.ts';
import { createProgress, formatCount, formatDuration } from '../../scripts/progress.ts';
import { textTable } from '../../scripts/text-table.ts';
import {
  emptyResult,
  type FuzzDecoder,
  type FuzzRunResult,
  type FuzzSample,
  medianMicros,
  mergeResults,
} from './engine.ts';
import { type ShardRequest, STASH_BYTES, STASH_HEADER_BYTES, type WorkerMessage } from './shard-protocol.ts';

const ROOT = resolve(import.meta.dirname, '../..');
const ARTIFACTS = join(ROOT, 'test-artifacts/fuzz');

interface Options {
  readonly cases: number;
  readonly only: readonly string[];
  readonly workers: number;
  readonly budgetMs: number;
  readonly seed: number;
  readonly hangMs: number;
  /** Module exporting DECODERS (default test/fuzz/decoders.ts; tests of this runner pass their own). */
  readonly registry: string;
  readonly list: boolean;
}

function parse(argv: readonly string[]): Options {
  const o = {
    cases: 1_000_000,
    only: [] as string[],
    workers: availableParallelism(),
    budgetMs: 250,
    seed: 1,
    hangMs: 0,
    list: false,
    registry: pathToFileURL(join(import.meta.dirname, 'decoders.ts')).href,
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const next = () => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${a} needs a value`);
      return v;
    };
    if (a === '--cases') o.cases = Number(next());
    else if (a === '--only') o.only.push(...next().split(','));
    else if (a === '--workers') o.workers = Number(next());
    else if (a === '--budget-ms') o.budgetMs = Number(next());
    else if (a === '--seed') o.seed = Number(next());
    else if (a === '--hang-ms') o.hangMs = Number(next());
    else if (a === '--registry') o.registry = pathToFileURL(resolve(next())).href;
    else if (a === '--list') o.list = true;
    else throw new Error(`unknown option ${a} (see the header of test/fuzz/run.ts)`);
  }
  for (const [k, v] of Object.entries({ cases: o.cases, workers: o.workers, budgetMs: o.budgetMs, seed: o.seed })) {
    if (!Number.isSafeInteger(v) || v < (k === 'seed' ? 0 : 1)) throw new Error(`--${k} must be a whole number`);
  }
  return { ...o, hangMs: o.hangMs > 0 ? o.hangMs : Math.max(20_000, 40 * o.budgetMs) };
}

interface Shard {
  readonly decoder: string;
  readonly cases: number;
  readonly seed: number;
}

interface Slot {
  worker: Worker;
  readonly buffer: SharedArrayBuffer;
  readonly counters: Int32Array;
  shard: Shard | undefined;
  startedCount: number;
  lastCount: number;
  lastChangeMs: number;
  finish: ((m: WorkerMessage | { type: 'hang'; sample: FuzzSample }) => void) | undefined;
}

function newWorker(buffer: SharedArrayBuffer, registry: string): Worker {
  return new Worker(new URL('./worker.ts', import.meta.url), { workerData: { buffer, registry } });
}

function stashedInput(slot: Slot): string {
  const len = slot.counters[1]!;
  const bytes = new Uint8Array(slot.buffer, STASH_HEADER_BYTES, STASH_BYTES).slice(0, len);
  return slot.counters[2] === 1
    ? JSON.stringify(Buffer.from(bytes).toString('utf8'))
    : `hex:${Buffer.from(bytes).toString('hex')}`;
}

async function main(): Promise<number> {
  const o = parse(process.argv.slice(2));
  const { DECODERS } = (await import(o.registry)) as { DECODERS: readonly FuzzDecoder[] };
  if (o.list) {
    for (const d of DECODERS) process.stdout.write(`${d.name.padEnd(24)} ${d.module}\n`);
    return 0;
  }
  const chosen = o.only.length === 0 ? DECODERS : DECODERS.filter((d) => o.only.some((n) => d.name.includes(n)));
  if (chosen.length === 0) throw new Error(`no decoder matches ${o.only.join(', ')} (--list shows them)`);
  const shardCases = Math.max(1, Math.ceil(o.cases / Math.max(1, o.workers)));
  const shards: Shard[] = [];
  for (const d of chosen) {
    for (let done = 0, i = 0; done < o.cases; done += shardCases, i++) {
      shards.push({ decoder: d.name, cases: Math.min(shardCases, o.cases - done), seed: o.seed * 1000 + i });
    }
  }
  const total = chosen.length * o.cases;
  process.stderr.write(
    `fuzz: ${chosen.length} decoders × ${formatCount(o.cases)} cases, ${o.workers} workers, budget ${o.budgetMs} ms per case, seed ${o.seed}\n`,
  );
  const results = new Map<string, FuzzRunResult>(chosen.map((d) => [d.name, emptyResult()]));
  const hangs = new Map<string, number>();
  const failures: string[] = [];
  const progress = createProgress({ total, label: 'fuzz' });
  const started = performance.now();
  let finishedCases = 0;

  const slots: Slot[] = Array.from({ length: o.workers }, () => {
    const buffer = new SharedArrayBuffer(STASH_HEADER_BYTES + STASH_BYTES);
    return {
      worker: newWorker(buffer, o.registry),
      buffer,
      counters: new Int32Array(buffer, 0, 4),
      shard: undefined,
      startedCount: 0,
      lastCount: 0,
      lastChangeMs: performance.now(),
      finish: undefined,
    };
  });
  const attach = (slot: Slot) => {
    slot.worker.on('message', (m: WorkerMessage) => {
      if (m.type !== 'progress') slot.finish?.(m);
    });
    slot.worker.on('error', (e) => slot.finish?.({ type: 'failed', error: e.stack ?? e.message }));
  };
  slots.forEach(attach);

  const running = () => slots.reduce((n, s) => n + (s.shard ? s.counters[0]! - s.startedCount : 0), 0);
  const watchdog = setInterval(() => {
    const now = performance.now();
    for (const s of slots) {
      if (!s.shard) continue;
      const c = s.counters[0]!;
      if (c !== s.lastCount) {
        s.lastCount = c;
        s.lastChangeMs = now;
      } else if (now - s.lastChangeMs > o.hangMs) {
        s.finish?.({ type: 'hang', sample: { input: stashedInput(s), detail: `no return within ${o.hangMs} ms` } });
      }
    }
    progress.update(finishedCases + running());
  }, 250);

  const queue = [...shards];
  await Promise.all(
    slots.map(async (slot) => {
      for (let shard = queue.shift(); shard; shard = queue.shift()) {
        slot.shard = shard;
        slot.startedCount = slot.counters[0]!;
        slot.lastCount = slot.startedCount;
        slot.lastChangeMs = performance.now();
        const outcome = await new Promise<WorkerMessage | { type: 'hang'; sample: FuzzSample }>((resolveShard) => {
          slot.finish = resolveShard;
          slot.worker.postMessage({ type: 'run', ...shard, budgetMs: o.budgetMs } satisfies ShardRequest);
        });
        slot.finish = undefined;
        const ran = slot.counters[0]! - slot.startedCount;
        slot.shard = undefined;
        finishedCases += shard.cases;
        const prev = results.get(shard.decoder)!;
        if (outcome.type === 'done') {
          results.set(shard.decoder, mergeResults(prev, outcome.result));
          for (const c of outcome.checks) failures.push(`${shard.decoder}: ${c}`);
        } else if (outcome.type === 'hang') {
          hangs.set(shard.decoder, (hangs.get(shard.decoder) ?? 0) + 1);
          results.set(
            shard.decoder,
            mergeResults(prev, { ...emptyResult(), cases: ran, slowSamples: [outcome.sample] }),
          );
          await slot.worker.terminate();
          slot.worker = newWorker(slot.buffer, o.registry);
          attach(slot);
        } else if (outcome.type === 'failed') {
          failures.push(`${shard.decoder}: setup or run failed: ${outcome.error}`);
        }
      }
    }),
  );
  clearInterval(watchdog);
  await Promise.all(slots.map((s) => s.worker.terminate()));
  const durationMs = performance.now() - started;
  progress.finish(`fuzz: ${formatCount(total)} cases in ${formatDuration(durationMs)}`);

  const rows = chosen.map((d) => {
    const r = results.get(d.name)!;
    return {
      decoder: d.name,
      module: d.module,
      cases: r.cases,
      accepted: r.accepted,
      rejected: r.rejected,
      crashes: r.crashes,
      hangs: r.overBudget + (hangs.get(d.name) ?? 0),
      maxUs: Math.round(r.maxUs),
      medianUs: Number(medianMicros(r).toFixed(1)),
    };
  });
  process.stdout.write(
    `\n${textTable(
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
      rows.map((r) => [
        r.decoder,
        formatCount(r.cases),
        formatCount(r.accepted),
        formatCount(r.rejected),
        String(r.crashes),
        String(r.hangs),
        formatCount(r.maxUs),
        r.medianUs.toFixed(1),
      ]),
    )}`,
  );

  // Inputs that crashed or hung, one file each, to become regression seeds.
  let saved = 0;
  for (const d of chosen) {
    const r = results.get(d.name)!;
    for (const [kind, samples] of [
      ['crash', r.crashSamples],
      ['slow', r.slowSamples],
    ] as const) {
      samples.forEach((s, i) => {
        mkdirSync(ARTIFACTS, { recursive: true });
        writeFileSync(join(ARTIFACTS, `${d.name}-${kind}-${i}.txt`), `${s.detail}\n${s.input}\n`);
        saved++;
      });
    }
  }
  if (saved > 0) process.stdout.write(`\n${saved} crash/slow inputs saved in ${ARTIFACTS}\n`);
  for (const f of failures) process.stdout.write(`FAILED ${f}\n`);

  const bad = rows.some((r) => r.crashes > 0 || r.hangs > 0) || failures.length > 0;
  if (o.only.length === 0 && o.registry.endsWith('/test/fuzz/decoders.ts')) {
    const summary = {
      schema: 'outpost.fuzz/v1',
      startedAt: new Date(Date.now() - durationMs).toISOString(),
      durationMs,
      machine: describeMachine(),
      casesPerDecoder: o.cases,
      workers: o.workers,
      budgetMs: o.budgetMs,
      rows,
    };
    writeFileSync(join(ROOT, 'bench/results/fuzz-summary.json'), `${JSON.stringify(summary, null, 2)}\n`);
    spawnSync(process.execPath, [join(ROOT, 'bench/docs.ts')], { stdio: 'inherit' });
  }
  process.stdout.write(
    `\n${bad ? 'FAIL' : 'ok'}: ${rows.reduce((n, r) => n + r.crashes, 0)} crashes, ${rows.reduce((n, r) => n + r.hangs, 0)} hangs\n`,
  );
  return bad ? 1 : 0;
}

process.exitCode = await main();
