// The agent's footprint as a process: cold start to ready against `node -e 0` and the CLI's `version` (both
// measured in the same run), cold start of the single binary to "connected, manifest announced" to a control plane
// on loopback, resident memory idle with 10 tools, and resident memory after 1,000,000 records passed through its
// local API into its durable queue.

import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { createLocalApiClient } from '../agent/local-api/client.ts';
import { initStateDir } from '../controlplane/node/state-dir.ts';
import { systemClock } from '../protocol/clock.ts';
import { silentLogger } from '../protocol/log.ts';
import { buildBinaries, defaultBuildCacheDir } from '../scripts/sea-build.ts';
import { type BenchContext, elapsedMs, now, ratePerSecond, runBench } from './harness.ts';

const ROOT = resolve(import.meta.dirname, '..');
const CLI = join(ROOT, 'cli/bin.ts');
const STREAM = 'bench.value';

/** Environment for child processes: none of this shell's OUTPOST_* settings. */
function childEnv(): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !k.startsWith('OUTPOST_')) env[k] = v;
  return env;
}

function writeConfig(dir: string, tools: number): string {
  const file = join(dir, 'agent.toml');
  const toolText = Array.from(
    { length: tools },
    (_, i) =>
      `[[tools]]\nname = "bench.tool${i}"\ndescription = "Tool ${i}."\nsafety_class = "read_only"\n[tools.exec]\nargv = ["/bin/echo", "${i}"]\n`,
  ).join('\n');
  writeFileSync(
    file,
    [
      '[agent]',
      'name = "bench"',
      '[paths]',
      `state_dir = "${join(dir, 'state')}"`,
      `socket = "${join(dir, 'agent.sock')}"`,
      '[mcp]',
      'http_port = 0',
      '[metrics]',
      'port = 0',
      '[queue]',
      `max_bytes = ${512 * 1024 * 1024}`,
      `max_records = 2000000`,
      '[[streams]]',
      `name = "${STREAM}"`,
      'unit = "1"',
      'source = { kind = "ingest" }',
      toolText,
    ].join('\n'),
  );
  return file;
}

/** The agent as run from source (`node cli/bin.ts`) or as the single binary. */
interface Outpost {
  readonly command: string;
  readonly prefix: readonly string[];
}
const FROM_SOURCE: Outpost = { command: process.execPath, prefix: [CLI] };

/** Ms from spawn to exit of `command args`. */
async function timeToExit(command: string, args: readonly string[]): Promise<number> {
  const t0 = now();
  const child = spawn(command, [...args], { cwd: ROOT, env: childEnv(), stdio: 'ignore' });
  const [code] = (await once(child, 'exit')) as [number | null];
  if (code !== 0) throw new Error(`${args.join(' ')} exited ${code}`);
  return elapsedMs(t0);
}

interface RunningAgent {
  readonly pid: number;
  readonly readyMs: number;
  stop(): Promise<void>;
}

/**
 * Starts the agent; resolves when it logs `readyOn` (agent.started: serving locally; link.manifest_accepted: the
 * control plane answered its manifest announcement), with the ms it took.
 */
async function startAgent(
  configFile: string,
  outpost: Outpost = FROM_SOURCE,
  readyOn = 'agent.started',
): Promise<RunningAgent> {
  const t0 = now();
  const child = spawn(outpost.command, [...outpost.prefix, 'agent', 'run', '--config', configFile], {
    cwd: ROOT,
    env: childEnv(),
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  const lines: string[] = [];
  await new Promise<void>((resolveReady, reject) => {
    createInterface({ input: child.stderr! }).on('line', (l) => {
      lines.push(l);
      if (l.includes(readyOn)) resolveReady();
    });
    child.once('exit', (c) => reject(new Error(`the agent exited (${c}) before it was ready:\n${lines.join('\n')}`)));
  });
  const readyMs = elapsedMs(t0);
  return {
    pid: child.pid!,
    readyMs,
    async stop() {
      child.kill('SIGTERM');
      await once(child, 'exit');
    },
  };
}

async function freePort(): Promise<number> {
  return new Promise((done) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => done(port));
    });
  });
}

/** Runs `command args` to completion with `input` on stdin; its stdout. */
async function runToEnd(command: string, args: readonly string[], input = ''): Promise<string> {
  const child = spawn(command, [...args], { cwd: ROOT, env: childEnv(), stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.setEncoding('utf8').on('data', (c: string) => (out += c));
  child.stderr.setEncoding('utf8').on('data', (c: string) => (err += c));
  child.stdin.end(input);
  const [code] = (await once(child, 'exit')) as [number | null];
  if (code !== 0) throw new Error(`${args.join(' ')} exited ${code}:\n${err}`);
  return out;
}

interface DeviceView {
  readonly device: string;
  readonly online: boolean;
  readonly session: { readonly manifestHash: string; readonly callable: boolean } | null;
  readonly manifest: { readonly accepted: string | null };
}

/**
 * A control plane on loopback (`outpost controlplane run` from the binary) with one agent enrolled in a state dir
 * of its own; `devices()` reads the operator API.
 */
async function controlPlaneWithAgent(
  dir: string,
  binary: Outpost,
  agentConfig: string,
): Promise<{ devices(): Promise<DeviceView[]>; stop(): Promise<void> }> {
  const cpDir = join(dir, 'cp');
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const init = await initStateDir({
    dir: cpDir,
    env: {},
    clock: systemClock,
    log: silentLogger,
    listenHost: '127.0.0.1',
    listenPort: port,
    tenant: 'bench',
    hybridTokens: false,
  });
  const operatorKey = init.created.operatorKey;
  const child = spawn(binary.command, [...binary.prefix, 'controlplane', 'run', '--state-dir', cpDir], {
    cwd: ROOT,
    env: childEnv(),
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  const lines: string[] = [];
  await new Promise<void>((serving, reject) => {
    createInterface({ input: child.stderr! }).on('line', (l) => {
      lines.push(l);
      if (l.includes('server.listening')) serving();
    });
    child.once('exit', (c) => reject(new Error(`the control plane exited (${c}):\n${lines.join('\n')}`)));
  });
  const operator = async (method: string, path: string, body?: unknown) => {
    const r = await fetch(`${url}${path}`, {
      method,
      headers: {
        authorization: `Bearer ${operatorKey}`,
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    const v: unknown = await r.json();
    if (!r.ok) throw new Error(`${method} ${path}: ${JSON.stringify(v)}`);
    return v;
  };
  const { token } = (await operator('POST', '/v1/operator/enroll-token', {})) as { token: string };
  await runToEnd(
    binary.command,
    [...binary.prefix, 'enroll', '--url', url, '--token-file', '-', '--config', agentConfig, '--json'],
    token,
  );
  return {
    devices: async () => ((await operator('GET', '/v1/operator/devices')) as { devices: DeviceView[] }).devices,
    async stop() {
      child.kill('SIGTERM');
      await once(child, 'exit');
    },
  };
}

function rssMb(pid: number): number {
  const kb = Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1]);
  return (kb * 1024) / 1e6;
}

const settle = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function run(ctx: BenchContext): Promise<void> {
  const root = mkdtempSync(join(tmpdir(), 'outpost-bench-footprint-'));
  let n = 0;
  const fresh = () => {
    const d = join(root, `a${n++}`);
    mkdirSync(d);
    return d;
  };
  try {
    const ms = { unit: 'ms', better: 'lower' as const };
    ctx.figure({
      id: 'node-e0',
      label: 'baseline: node -e 0',
      ...ms,
      samples: await ctx.repeat('node -e 0', () => timeToExit(process.execPath, ['-e', '0'])),
    });
    ctx.figure({
      id: 'version',
      label: 'from source: `outpost version` (node cli/bin.ts)',
      ...ms,
      baseline: 'node-e0',
      samples: await ctx.repeat('outpost version', () => timeToExit(process.execPath, [CLI, 'version'])),
    });
    ctx.figure({
      id: 'firstboot.started',
      label: 'from source: agent first start (identity created) to ready, off-grid',
      ...ms,
      baseline: 'node-e0',
      samples: await ctx.repeat('agent first start', async () => {
        const a = await startAgent(writeConfig(fresh(), 10));
        await a.stop();
        return a.readyMs;
      }),
    });
    const warmDir = fresh();
    const warmConfig = writeConfig(warmDir, 10);
    await (await startAgent(warmConfig)).stop();
    ctx.figure({
      id: 'coldstart.started',
      label: 'from source: agent start with existing state to ready, off-grid',
      ...ms,
      baseline: 'node-e0',
      samples: await ctx.repeat('agent restart', async () => {
        const a = await startAgent(warmConfig);
        await a.stop();
        return a.readyMs;
      }),
    });

    // The shipped form: the single binary (scripts/sea-build.ts), built here for this machine's arch.
    const binDir = join(root, 'bin');
    const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string };
    ctx.log('building the single binary for the shipped-form figures…');
    const built = await buildBinaries({
      root: ROOT,
      outDir: binDir,
      cacheDir: defaultBuildCacheDir(),
      version: pkg.version,
      archs: [process.arch === 'arm64' ? 'arm64' : 'x64'],
      compressedSizes: false,
    });
    const binary: Outpost = { command: built.binaries[0]!.path, prefix: [] };
    ctx.exact('bin.bytes', 'single binary size', 'MB', built.binaries[0]!.bytes / 1e6);
    ctx.figure({
      id: 'bin.version',
      label: "baseline: the binary's `version`",
      ...ms,
      baseline: 'node-e0',
      samples: await ctx.repeat('binary version', () => timeToExit(binary.command, ['version'])),
    });
    const binWarm = writeConfig(fresh(), 10);
    await (await startAgent(binWarm, binary)).stop();
    ctx.figure({
      id: 'bin.coldstart.started',
      label: 'binary: agent start with existing state to ready, off-grid',
      ...ms,
      baseline: 'node-e0',
      samples: await ctx.repeat('binary agent restart', async () => {
        const a = await startAgent(binWarm, binary);
        await a.stop();
        return a.readyMs;
      }),
    });
    // "Connected, manifest announced": an enrolled agent (the binary) started against a control plane on
    // loopback, timed from spawn to the agent's link.manifest_accepted line, which it logs on the control plane's
    // manifest.ack for the hash it announced; each run then checks on the operator API that the control plane
    // holds the device online with that manifest as its accepted one.
    const linkedDir = fresh();
    const linkedConfig = writeConfig(linkedDir, 10);
    const cp = await controlPlaneWithAgent(linkedDir, binary, linkedConfig);
    try {
      ctx.figure({
        id: 'bin.coldstart.connected',
        label:
          'binary: agent start with existing state to connected, manifest announced and acknowledged (loopback control plane)',
        ...ms,
        baseline: 'node-e0',
        samples: await ctx.repeat('binary agent to connected', async () => {
          const a = await startAgent(linkedConfig, binary, 'link.manifest_accepted');
          try {
            const [device] = await cp.devices();
            if (
              !device?.online ||
              !device.session?.callable ||
              device.session.manifestHash !== device.manifest.accepted
            )
              throw new Error(
                `the control plane does not hold the agent online and callable: ${JSON.stringify(device)}`,
              );
          } finally {
            await a.stop();
          }
          return a.readyMs;
        }),
      });
    } finally {
      await cp.stop();
    }
    const bareNode = ctx.figure({
      id: 'rss.node',
      label: 'baseline: idle RSS of a bare node process (setInterval only)',
      unit: 'MB',
      better: 'lower',
      samples: await ctx.repeat(
        'bare node idle RSS',
        async () => {
          const child = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000); console.log("up")'], {
            stdio: ['ignore', 'pipe', 'ignore'],
          });
          await once(createInterface({ input: child.stdout! }), 'line');
          await settle(ctx.quick ? 500 : 5_000);
          const mb = rssMb(child.pid!);
          child.kill('SIGKILL');
          await once(child, 'exit');
          return mb;
        },
        { repeats: Math.min(3, ctx.repeats) },
      ),
    });
    ctx.note(
      `A bare Node ${process.version} process idles at ${bareNode.median.toFixed(0)} MB of RSS on this machine: the runtime alone sits near the 45 MB idle target.`,
    );
    ctx.figure({
      id: 'bin.rss.idle',
      baseline: 'rss.node',
      label: 'binary: agent idle RSS with 10 exec tools + built-ins',
      unit: 'MB',
      better: 'lower',
      samples: await ctx.repeat(
        'binary idle RSS',
        async () => {
          const a = await startAgent(writeConfig(fresh(), 10), binary);
          await settle(ctx.quick ? 500 : 5_000);
          const mb = rssMb(a.pid);
          await a.stop();
          return mb;
        },
        { repeats: Math.min(3, ctx.repeats) },
      ),
    });

    const records = ctx.size(1_000_000, 20_000);
    const through = await ctx.repeat(
      `${records.toLocaleString('en-US')} records in`,
      async () => {
        const dir = fresh();
        const a = await startAgent(writeConfig(dir, 10), binary);
        const client = createLocalApiClient({ socketPath: join(dir, 'agent.sock'), timeoutMs: 60_000 });
        const batch = 256;
        let sent = 0;
        const t0 = now();
        await Promise.all(
          Array.from({ length: 4 }, async () => {
            while (sent < records) {
              const from = sent;
              sent += batch;
              await client.post('/v1/telemetry', {
                records: Array.from({ length: batch }, (_, k) => ({ stream: STREAM, value: from + k })),
              });
              ctx.progress(Math.min(sent, records), records, 'records');
            }
          }),
        );
        const rate = ratePerSecond(records, t0);
        await settle(ctx.quick ? 500 : 5_000);
        const mb = rssMb(a.pid);
        await a.stop();
        return { rate, mb };
      },
      { repeats: Math.min(3, ctx.repeats), warmup: 0 },
    );
    ctx.figure({
      id: 'ingest.api',
      label: 'binary: telemetry pushed through the local API into the durable queue, 4 clients × 256 per request',
      unit: 'records/s',
      better: 'higher',
      samples: through.map((t) => t.rate),
    });
    ctx.figure({
      id: 'rss.after1m',
      label: `binary: agent RSS after ${records.toLocaleString('en-US')} records passed through (queued, idle again)`,
      unit: 'MB',
      better: 'lower',
      samples: through.map((t) => t.mb),
    });
    ctx.note(
      'MB = 10^6 bytes of VmRSS. Start times are from spawn to the agent.started log line (to link.manifest_accepted for `connected`); `from source` runs cli/bin.ts under Node with type stripping; `binary` is the single executable the installer ships. For `connected` the control plane is the same binary, already running, in its own process on 127.0.0.1 (no TLS), with the agent enrolled once before the runs.',
    );
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

await runBench({ name: 'agent-footprint', title: 'Agent footprint: cold start and resident memory', run });
