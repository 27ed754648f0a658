// `npm run soak -- --hours H [--agents N] [--rate R] [--warmup-min M] [--interval-s S]`: the system's daemons
// as real processes under steady load, each sampled every interval (RSS, V8 heap, active handles through a
// preload, queue depth through its API); fails when memory after warm-up grows by more than 5 %. Prints a
// table and ASCII plots and saves them for docs/benchmarks.md.

import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describeMachine } from '../../scripts/machine.ts';
import { createProgress, formatDuration } from '../../scripts/progress.ts';
import { markdownTable, textTable } from '../../scripts/text-table.ts';
import { agentRig, CHAOS_STREAM } from '../chaos/harness/agent-rig.ts';
import type { SupervisedProcess } from '../chaos/harness/process.ts';
import { asciiPlot, type Growth, growthAfterWarmup, type SoakSample } from './analysis.ts';

const PRELOAD = join(import.meta.dirname, 'process-stats-preload.ts');
/** Memory may grow at most this much between the first and the last window after warm-up. */
const MAX_GROWTH_PERCENT = 5;

interface Options {
  readonly hours: number;
  readonly agents: number;
  /** Records per second per agent. */
  readonly rate: number;
  readonly warmupMin: number;
  readonly intervalS: number;
}

function parse(argv: readonly string[]): Options {
  const get = (name: string, dflt: number) => {
    const i = argv.indexOf(`--${name}`);
    if (i < 0) return dflt;
    const v = Number(argv[i + 1]);
    if (!(v > 0)) throw new Error(`--${name} needs a positive number`);
    return v;
  };
  const hours = get('hours', 1);
  return {
    hours,
    agents: get('agents', 3),
    rate: get('rate', 50),
    warmupMin: get('warmup-min', Math.min(10, (hours * 60) / 6)),
    intervalS: get('interval-s', 60),
  };
}

interface Member {
  readonly name: string;
  readonly process: SupervisedProcess;
  readonly statsFile: string;
  /** Queue depth from the daemon's own API, when it has a queue. */
  queueDepth?(): Promise<number>;
  readonly samples: SoakSample[];
}

function lastStats(file: string): { rssBytes: number; heapUsedBytes: number; handles: number } | undefined {
  try {
    const lines = readFileSync(file, 'utf8').trimEnd().split('\n');
    return JSON.parse(lines[lines.length - 1]!) as { rssBytes: number; heapUsedBytes: number; handles: number };
  } catch {
    return undefined; // not written yet
  }
}

async function main(): Promise<number> {
  const o = parse(process.argv.slice(2));
  const dir = mkdtempSync(join(tmpdir(), 'outpost-soak-'));
  const durationMs = o.hours * 3_600_000;
  const members: Member[] = [];
  const stoppers: (() => Promise<void>)[] = [];
  process.stderr.write(
    `soak: ${o.hours} h, ${o.agents} agents at ${o.rate} records/s each, warm-up ${o.warmupMin} min, sample every ${o.intervalS} s\n`,
  );
  try {
    for (let i = 0; i < o.agents; i++) {
      const statsFile = join(dir, `agent${i}.stats.jsonl`);
      const rig = agentRig({
        dir: mkdtempSync(join(dir, `agent${i}-`)),
        nodeArgs: ['--import', PRELOAD],
        env: { OUTPOST_SOAK_STATS_FILE: statsFile, OUTPOST_SOAK_STATS_INTERVAL_MS: String((o.intervalS * 1000) / 2) },
      });
      await rig.process.start();
      const client = rig.client(30_000);
      members.push({
        name: `agent${i}`,
        process: rig.process,
        statsFile,
        queueDepth: async () => (await client.get<{ depth: number }>('/v1/queue')).depth,
        samples: [],
      });
      // Steady load: `rate` records each second, in one request.
      let value = 0;
      let stopped = false;
      const loop = (async () => {
        while (!stopped) {
          const t = performance.now();
          await client
            .post('/v1/telemetry', {
              records: Array.from({ length: o.rate }, () => ({ stream: CHAOS_STREAM, value: value++ })),
            })
            .catch(() => {}); // a refused push (queue full) is the queue's business, counted in its stats
          await new Promise((r) => setTimeout(r, Math.max(0, 1000 - (performance.now() - t))));
        }
      })();
      stoppers.push(async () => {
        stopped = true;
        await loop;
      });
    }

    const started = performance.now();
    const bar = createProgress({ total: Math.round(durationMs / 1000), label: 'soak' });
    for (;;) {
      const minute = (performance.now() - started) / 60_000;
      for (const m of members) {
        const s = lastStats(m.statsFile);
        if (!m.process.isRunning()) throw new Error(`${m.name} died during the soak:\n${m.process.tail(30)}`);
        if (!s) continue;
        m.samples.push({
          minute,
          rssMb: s.rssBytes / 1e6,
          heapMb: s.heapUsedBytes / 1e6,
          handles: s.handles,
          ...(m.queueDepth ? { queueDepth: await m.queueDepth().catch(() => -1) } : {}),
        });
      }
      const elapsed = performance.now() - started;
      bar.update(
        Math.round(elapsed / 1000),
        members.map((m) => `${m.name} ${m.samples.at(-1)?.rssMb.toFixed(0) ?? '?'} MB`).join(' '),
      );
      if (elapsed >= durationMs) break;
      await new Promise((r) => setTimeout(r, Math.min(o.intervalS * 1000, durationMs - elapsed)));
    }
    bar.finish();
  } finally {
    for (const stop of stoppers) await stop();
    for (const m of members) await m.process.stop();
  }

  // Verdicts and pictures.
  const windowMin = Math.max(o.intervalS / 60, Math.min(10, (o.hours * 60 - o.warmupMin) / 4));
  const verdicts = members.map((m) => ({
    name: m.name,
    rss: growthAfterWarmup(m.samples, (s) => s.rssMb, o.warmupMin, windowMin),
    heap: growthAfterWarmup(m.samples, (s) => s.heapMb, o.warmupMin, windowMin),
    handles: m.samples.map((s) => s.handles),
    maxQueue: Math.max(...m.samples.map((s) => s.queueDepth ?? 0)),
  }));
  const fmt = (g: Growth | undefined) =>
    g
      ? `${g.startMb.toFixed(1)} → ${g.endMb.toFixed(1)} MB (${g.percent >= 0 ? '+' : ''}${g.percent.toFixed(1)} %)`
      : 'run too short';
  const failed = verdicts.filter(
    (v) => !v.rss || !v.heap || v.rss.percent > MAX_GROWTH_PERCENT || v.heap.percent > MAX_GROWTH_PERCENT,
  );
  const columns = [
    { title: 'process' },
    { title: 'RSS after warm-up → end' },
    { title: 'heap after warm-up → end' },
    { title: 'handles min–max', align: 'right' as const },
    { title: 'max queue depth', align: 'right' as const },
    { title: 'verdict' },
  ];
  const rows = verdicts.map((v) => [
    v.name,
    fmt(v.rss),
    fmt(v.heap),
    `${Math.min(...v.handles)}–${Math.max(...v.handles)}`,
    String(v.maxQueue),
    failed.includes(v) ? `FAIL (> ${MAX_GROWTH_PERCENT} %)` : 'pass',
  ]);
  const series = (pick: (s: SoakSample) => number) =>
    Object.fromEntries(members.map((m) => [m.name, m.samples.map((s) => ({ minute: s.minute, value: pick(s) }))]));
  const rssPlot = asciiPlot(
    series((s) => s.rssMb),
    { unit: 'RSS MB' },
  );
  const heapPlot = asciiPlot(
    series((s) => s.heapMb),
    { unit: 'V8 heap used MB' },
  );
  process.stdout.write(`\n${textTable(columns, rows)}\n${rssPlot}\n${heapPlot}`);

  const markdown = [
    `Load: ${o.agents} agents, each pushed ${o.rate} records/s through its local API; samples every ${o.intervalS} s; growth compares the mean of the first and last ${windowMin.toFixed(0)} min after a ${o.warmupMin}-min warm-up (limit ${MAX_GROWTH_PERCENT} %).`,
    '',
    markdownTable(columns, rows),
    '```',
    rssPlot.trimEnd(),
    '```',
    '',
    '```',
    heapPlot.trimEnd(),
    '```',
  ].join('\n');
  const root = join(import.meta.dirname, '../..');
  writeFileSync(
    join(root, 'bench/results/soak-summary.json'),
    `${JSON.stringify(
      {
        schema: 'outpost.soak/v1',
        startedAt: new Date(Date.now() - durationMs).toISOString(),
        durationMs,
        machine: describeMachine(),
        hours: o.hours,
        warmupMinutes: o.warmupMin,
        passed: failed.length === 0,
        markdown,
        samples: Object.fromEntries(members.map((m) => [m.name, m.samples])),
      },
      null,
      2,
    )}\n`,
  );
  spawnSync(process.execPath, [join(root, 'bench/docs.ts')], { stdio: 'inherit' });
  process.stdout.write(`\nsoak ${failed.length === 0 ? 'passed' : 'FAILED'} after ${formatDuration(durationMs)}\n`);
  rmSync(dir, { recursive: true, force: true });
  return failed.length === 0 ? 0 : 1;
}

process.exitCode = await main();
