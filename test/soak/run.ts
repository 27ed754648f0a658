// `npm run soak -- --hours H [--rate R] [--warmup-min M] [--interval-s S] [--flap-min F] [--outage-min O]`: the
// demo site's daemons (control plane, gateway, radio sim, WSS and LoRa-only agents) as real processes under steady
// load with the gateway's backhaul pulled now and then, each sampled every interval (RSS, V8 heap, active handles
// through a preload; queue depths through their APIs); fails when memory after warm-up grows by more than 5 %.
// Prints a table and ASCII plots and saves them for docs/benchmarks.md.

import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLocalApiClient } from '../../agent/local-api/client.ts';
import { runDemo } from '../../cli/demo-run.ts';
import type { DemoSnapshot } from '../../cli/demo-view.ts';
import { describeMachine } from '../../scripts/machine.ts';
import { createProgress, formatDuration } from '../../scripts/progress.ts';
import { markdownTable, textTable } from '../../scripts/text-table.ts';
import { asciiPlot, type Growth, growthAfterWarmup, type SoakSample } from './analysis.ts';

const PRELOAD = join(import.meta.dirname, 'process-stats-preload.ts');
/** Memory may grow at most this much between the first and the last window after warm-up. */
const MAX_GROWTH_PERCENT = 5;
/** The demo site's agents that have an IP uplink; the soak pushes its steady load through them. */
const WSS_AGENTS = ['greenhouse-1', 'greenhouse-2'];

interface Options {
  readonly hours: number;
  /** Records per second pushed into each WSS agent (on top of every agent's own sampled streams). */
  readonly rate: number;
  readonly warmupMin: number;
  readonly intervalS: number;
  /** The gateway's backhaul is pulled for `outageMin` minutes every `flapMin` minutes. */
  readonly flapMin: number;
  readonly outageMin: number;
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
    rate: get('rate', 50),
    warmupMin: get('warmup-min', Math.min(10, (hours * 60) / 6)),
    intervalS: get('interval-s', 60),
    flapMin: get('flap-min', Math.min(15, (hours * 60) / 4)),
    outageMin: get('outage-min', Math.min(3, (hours * 60) / 20)),
  };
}

interface StatsLine {
  ts: number;
  pid: number;
  argv: string[];
  rssBytes: number;
  heapUsedBytes: number;
  heapTotalBytes?: number;
  externalBytes: number;
  handles: number;
}

/** What a process is, from its command line: "control plane", "gateway", "radio sim" or the agent's name. */
function roleOf(argv: readonly string[]): string | undefined {
  const a = argv.join(' ');
  if (a.startsWith('controlplane run')) return 'control plane';
  if (a.startsWith('gateway run')) return 'gateway';
  if (a.startsWith('radio sim')) return 'radio sim';
  const m = /^agent run --config \S*\/([^/\s]+)\.toml/.exec(a);
  return m ? `agent ${m[1]}` : undefined; // one-shot commands (init, enroll …) are not soaked
}

function readStats(dir: string): Map<string, StatsLine[]> {
  const byRole = new Map<string, StatsLine[]>();
  for (const f of readdirSync(dir).filter((n) => n.endsWith('.jsonl'))) {
    const lines = readFileSync(join(dir, f), 'utf8')
      .trimEnd()
      .split('\n')
      .flatMap((l) => {
        try {
          return [JSON.parse(l) as StatsLine];
        } catch {
          return []; // a line being written
        }
      });
    const role = lines[0] && roleOf(lines[0].argv);
    if (role) byRole.set(role, lines);
  }
  return byRole;
}

async function freePort(): Promise<number> {
  const s = createServer().listen(0, '127.0.0.1');
  await new Promise((r) => s.once('listening', r));
  const port = (s.address() as { port: number }).port;
  await new Promise((r) => s.close(r));
  return port;
}

interface Member {
  readonly name: string;
  readonly samples: SoakSample[];
}

async function main(): Promise<number> {
  const o = parse(process.argv.slice(2));
  const dir = mkdtempSync(join(tmpdir(), 'outpost-soak-'));
  const statsDir = join(dir, 'stats');
  mkdirSync(statsDir);
  const durationMs = o.hours * 3_600_000;
  process.stderr.write(
    `soak: ${o.hours} h of the demo site (control plane, gateway on an emulated RNode and Meshtastic radio, 2 WSS agents, 2 LoRa-only agents), ` +
      `${o.rate} records/s pushed into each WSS agent, backhaul pulled ${o.outageMin} min every ${o.flapMin} min, ` +
      `warm-up ${o.warmupMin} min, sample every ${o.intervalS} s\n`,
  );

  // The site runs as the demo runs it, every process started with the stats preload.
  const stop = new AbortController();
  const toggles: ((key: string) => void)[] = [];
  const keys: AsyncIterable<string> = {
    async *[Symbol.asyncIterator]() {
      for (;;) {
        const key = await new Promise<string>((r) => toggles.push(r));
        if (stop.signal.aborted) return;
        yield key;
      }
    },
  };
  const pressB = () => toggles.shift()?.('b');
  let ready!: () => void;
  const isReady = new Promise<void>((r) => {
    ready = r;
  });
  let failure: string | undefined;
  let last: DemoSnapshot | undefined;
  const site = runDemo({
    stateDir: join(dir, 'site'),
    port: await freePort(),
    mode: 'json',
    refreshMs: Math.min(o.intervalS * 1000, 30_000),
    env: {
      ...process.env,
      NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ''} --expose-gc --import ${PRELOAD}`.trim(),
      OUTPOST_SOAK_STATS_DIR: statsDir,
      OUTPOST_SOAK_STATS_INTERVAL_MS: String((o.intervalS * 1000) / 2),
    },
    keys,
    signal: stop.signal,
    write: (text) => {
      for (const line of text.split('\n').filter(Boolean)) {
        const e = JSON.parse(line) as { event: string; message?: string } & DemoSnapshot;
        if (e.event === 'ready') ready();
        else if (e.event === 'snapshot') last = e;
        else if (e.event === 'error') failure = e.message;
      }
    },
  });
  const siteDone = site.then((code) => {
    if (!stop.signal.aborted) failure ??= `the site stopped by itself (exit ${code})`;
  });
  await Promise.race([isReady, siteDone]);
  if (failure) throw new Error(failure);

  const members = new Map<string, Member>();
  let pushed = 0;
  let refused = 0;
  const loops: Promise<void>[] = [];
  try {
    // Steady load: `rate` records each second into each WSS agent's ingest stream, in one request.
    for (const name of WSS_AGENTS) {
      const client = createLocalApiClient({ socketPath: join(dir, 'site', name, 'agent.sock'), timeoutMs: 30_000 });
      loops.push(
        (async () => {
          let value = 0;
          while (!stop.signal.aborted) {
            const t = performance.now();
            await client
              .post('/v1/telemetry', {
                records: Array.from({ length: o.rate }, () => ({ stream: 'site.counter', value: value++ })),
              })
              .then(() => {
                pushed += o.rate;
              })
              .catch(() => {
                refused += o.rate; // a full queue refuses; the queue counts it too
              });
            await new Promise((r) => setTimeout(r, Math.max(0, 1000 - (performance.now() - t))));
          }
        })(),
      );
    }

    const started = performance.now();
    let backhaulDown = false;
    const bar = createProgress({ total: Math.round(durationMs / 1000), label: 'soak' });
    for (;;) {
      if (failure) throw new Error(failure);
      const minute = (performance.now() - started) / 60_000;
      // Pull the backhaul for outageMin out of every flapMin minutes, so that queues fill and drain all along.
      const shouldBeDown = minute % o.flapMin >= o.flapMin - o.outageMin;
      if (shouldBeDown !== backhaulDown) {
        pressB();
        backhaulDown = shouldBeDown;
      }
      const depths = new Map<string, number>();
      for (const q of last?.queues ?? []) if (q.depth !== null) depths.set(`agent ${q.agent}`, q.depth);
      if (last?.gateway) depths.set('gateway', last.gateway.uplink.frames);
      for (const [name, lines] of readStats(statsDir)) {
        const s = lines.at(-1)!;
        const m = members.get(name) ?? { name, samples: [] };
        members.set(name, m);
        m.samples.push({
          minute,
          rssMb: s.rssBytes / 1e6,
          heapMb: s.heapUsedBytes / 1e6,
          ...(s.heapTotalBytes ? { heapCommittedMb: s.heapTotalBytes / 1e6 } : {}),
          externalMb: s.externalBytes / 1e6,
          handles: s.handles,
          ...(depths.has(name) ? { queueDepth: depths.get(name)! } : {}),
        });
      }
      const elapsed = performance.now() - started;
      bar.update(
        Math.round(elapsed / 1000),
        `${members.size} processes, ${pushed} pushed${backhaulDown ? ', backhaul down' : ''}`,
      );
      if (elapsed >= durationMs) break;
      await new Promise((r) => setTimeout(r, Math.min(o.intervalS * 1000, durationMs - elapsed)));
    }
    bar.finish();
  } finally {
    stop.abort();
    toggles.shift()?.('q');
    await Promise.all(loops);
    await siteDone;
  }
  const stored = (last?.telemetry ?? []).reduce((n, t) => n + t.total, 0);
  process.stdout.write(
    `\nload: ${pushed} records pushed and acknowledged, ${refused} refused; the control plane held ${stored} records at the last snapshot\n`,
  );

  // Verdicts and pictures.
  const windowMin = Math.max(o.intervalS / 60, Math.min(10, (o.hours * 60 - o.warmupMin) / 4));
  const verdicts = [...members.values()].map((m) => ({
    name: m.name,
    rss: growthAfterWarmup(m.samples, (s) => s.rssMb, o.warmupMin, windowMin),
    heap: growthAfterWarmup(m.samples, (s) => s.heapMb, o.warmupMin, windowMin),
    external: growthAfterWarmup(m.samples, (s) => s.externalMb ?? 0, o.warmupMin, windowMin),
    committed: growthAfterWarmup(m.samples, (s) => s.heapCommittedMb ?? 0, o.warmupMin, windowMin),
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
    { title: 'V8 heap committed → end' },
    { title: 'external (buffers) → end' },
    { title: 'handles min–max', align: 'right' as const },
    { title: 'max queue depth', align: 'right' as const },
    { title: 'verdict' },
  ];
  const rows = verdicts.map((v) => [
    v.name,
    fmt(v.rss),
    fmt(v.heap),
    fmt(v.committed),
    fmt(v.external),
    `${Math.min(...v.handles)}–${Math.max(...v.handles)}`,
    String(v.maxQueue),
    failed.includes(v) ? `FAIL (> ${MAX_GROWTH_PERCENT} %)` : 'pass',
  ]);
  const series = (pick: (s: SoakSample) => number) =>
    Object.fromEntries(
      [...members.values()].map((m) => [m.name, m.samples.map((s) => ({ minute: s.minute, value: pick(s) }))]),
    );
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
    `Load: the demo site (control plane, gateway on an emulated RNode and Meshtastic radio, 2 WSS and 2 LoRa-only agents sampling their sensors), plus ${o.rate} records/s pushed into each WSS agent through its local API (${pushed} acknowledged, ${refused} refused; ${stored} stored by the control plane at the end); the gateway's backhaul pulled for ${o.outageMin} min every ${o.flapMin} min; samples every ${o.intervalS} s; growth compares the mean of the first and last ${windowMin.toFixed(0)} min after a ${o.warmupMin}-min warm-up (limit ${MAX_GROWTH_PERCENT} %).`,
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
        samples: Object.fromEntries([...members.values()].map((m) => [m.name, m.samples])),
        load: { pushed, refused, storedAtLastSnapshot: stored },
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
