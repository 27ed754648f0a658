// The control plane under load, on loopback: tool-call round trips through the WSS hub and through the MCP gateway
// (p50/p99, against a bare `ws` echo measured in the same run) and calls/s with calls in flight; end-to-end
// telemetry agent → control-plane store through the agent's real upstream link and pump over a real outbox; the
// time to drain a 1,000,000-record backlog; and how many simulated agents (each the real upstream link) one
// control-plane process holds at once, with its resident memory.

import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { type AddressInfo, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { WebSocket, WebSocketServer } from 'ws';
import { enroll } from '../agent/enrollment.ts';
import { startUplinkPump } from '../agent/uplink-pump.ts';
import { createUpstreamLink, type UpstreamLink } from '../agent/upstream-link.ts';
import { type ControlPlaneHost, startControlPlaneHost } from '../controlplane/node/host.ts';
import { initStateDir } from '../controlplane/node/state-dir.ts';
import { type ControlPlaneLimits, DEVICE_AUDIENCE } from '../controlplane/settings.ts';
import { utf8 } from '../protocol/bytes.ts';
import { systemClock } from '../protocol/clock.ts';
import { didKeyFromEd25519 } from '../protocol/did-key.ts';
import { silentLogger } from '../protocol/log.ts';
import { type CapabilityManifest, decodeManifest, manifestHash } from '../protocol/manifest.ts';
import { MetricsRegistry } from '../protocol/metrics.ts';
import { ed25519KeyPair } from '../protocol/signing.ts';
import { encodeTelemetryUnit, MAX_UNIT_RECORDS, signTelemetryUnit } from '../protocol/telemetry.ts';
import { openDatabase } from '../store/database.ts';
import { createOutbox, OUTBOX_MIGRATIONS } from '../store/outbox.ts';
import { type BenchContext, ECHO_MESSAGE, elapsedMs, now, runBench, summarizeLatencies, timeCalls } from './harness.ts';

const ROOT = resolve(import.meta.dirname, '..');
const CLI = join(ROOT, 'cli/bin.ts');
/** Calls (and echoes) in flight for the calls/s figures. */
const IN_FLIGHT = 32;
/** The per-session envelope rate limit lifted for the round-trip runs (see the note where it is used). */
const UNTHROTTLED: Partial<ControlPlaneLimits> = { envelopesPerSecond: 1_000_000, envelopeBurst: 1_000_000 };

async function freePort(): Promise<number> {
  return new Promise((res) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as AddressInfo;
      s.close(() => res(port));
    });
  });
}

function manifestFor(did: string, name: string): CapabilityManifest {
  const m = JSON.parse(readFileSync(join(ROOT, 'examples/manifests/greenhouse.json'), 'utf8')) as CapabilityManifest;
  return decodeManifest({ ...m, device: { ...m.device, id: did, name } });
}

interface ControlPlaneDir {
  readonly dir: string;
  readonly url: string;
  readonly operatorKey: string;
}

async function newControlPlaneDir(parent: string, name: string): Promise<ControlPlaneDir> {
  const dir = mkdtempSync(join(parent, `${name}-`));
  const port = await freePort();
  const init = await initStateDir({
    dir,
    env: {},
    clock: systemClock,
    log: silentLogger,
    listenHost: '127.0.0.1',
    listenPort: port,
    tenant: 'bench',
    hybridTokens: false,
  });
  return { dir, url: `http://127.0.0.1:${port}`, operatorKey: init.created.operatorKey };
}

/** The control plane in this process (the host `outpost controlplane run` runs). */
function startHost(cp: ControlPlaneDir, limits?: Partial<ControlPlaneLimits>): Promise<ControlPlaneHost> {
  return startControlPlaneHost({
    dir: cp.dir,
    env: {},
    clock: systemClock,
    log: silentLogger,
    metrics: new MetricsRegistry(),
    version: 'bench',
    ...(limits ? { limits } : {}),
  });
}

async function post(url: string, path: string, auth: string, body: unknown): Promise<Record<string, unknown>> {
  const r = await fetch(`${url}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${auth}` },
    body: JSON.stringify(body),
  });
  const v = (await r.json()) as Record<string, unknown>;
  if (!r.ok) throw new Error(`${path}: ${JSON.stringify(v)}`);
  return v;
}

/** An enrolled agent: its identity, manifest and state dir (with the control plane's URL and its credential). */
interface SimAgent {
  readonly did: string;
  readonly seed: Uint8Array;
  readonly manifest: CapabilityManifest;
  readonly stateDir: string;
}

async function enrollSimAgent(cp: ControlPlaneDir, parent: string, name: string): Promise<SimAgent> {
  const seed = ed25519KeyPair().seed;
  const did = didKeyFromEd25519(ed25519KeyPair(seed).publicKey);
  const manifest = manifestFor(did, name);
  const stateDir = mkdtempSync(join(parent, 'agent-'));
  const { token } = (await post(cp.url, '/v1/operator/enroll-token', cp.operatorKey, {})) as { token: string };
  await enroll({ url: cp.url, token, stateDir, identity: { did, seed }, manifest, replace: false, nowMs: Date.now() });
  return { did, seed, manifest, stateDir };
}

/** The agent's real upstream link for an enrolled agent, answering every tool call at once. */
function openLink(a: SimAgent): UpstreamLink {
  const link = createUpstreamLink({
    stateDir: a.stateDir,
    clock: systemClock,
    log: silentLogger,
    heartbeatMs: 60_000,
    timeoutMs: 30_000,
  });
  link.bind({
    identity: { did: a.did, seed: a.seed },
    manifest: a.manifest,
    manifestHash: manifestHash(a.manifest),
    callTool: async (c) => ({ result: { bed: c.args.bed ?? 1, moisturePercent: 40 } }),
  });
  return link;
}

function connected(link: UpstreamLink): Promise<void> {
  if (link.state() === 'connected') return Promise.resolve();
  return new Promise((res) => {
    const off = link.onStateChange((s) => {
      if (s === 'connected') {
        off();
        res();
      }
    });
  });
}

async function startLink(a: SimAgent): Promise<UpstreamLink> {
  const link = openLink(a);
  await link.start();
  await connected(link);
  return link;
}

/** Sequential calls of `call`; per-call ms. */
/** `n` calls with `IN_FLIGHT` at a time; calls per second. */
async function callsPerSecond(n: number, call: () => Promise<unknown>): Promise<number> {
  let next = 0;
  const t0 = now();
  await Promise.all(
    Array.from({ length: IN_FLIGHT }, async () => {
      while (next < n) {
        next++;
        await call();
      }
    }),
  );
  return n / (elapsedMs(t0) / 1000);
}

/**
 * fetch for the MCP SDK client with a signal of its own per request. The SDK's Streamable HTTP transport hands its
 * one AbortSignal to every fetch, and undici keeps a listener on that signal per request until it is collected:
 * over thousands of calls the listeners pile up (MaxListenersExceededWarning) and each new one costs more, which
 * would show up as a slower gateway. Closing the transport still aborts requests in flight; the GET event stream
 * keeps its bridge until it ends.
 */
async function isolatingFetch(url: string | URL, init?: RequestInit): Promise<Response> {
  const parent = init?.signal;
  if (!parent) return fetch(url, init);
  const own = new AbortController();
  const onAbort = () => own.abort(parent.reason);
  if (parent.aborted) own.abort(parent.reason);
  else parent.addEventListener('abort', onAbort, { once: true });
  try {
    return await fetch(url, { ...init, signal: own.signal });
  } finally {
    if ((init?.method ?? 'GET') !== 'GET') parent.removeEventListener('abort', onAbort);
  }
}

/** A bare `ws` echo server and one client connection to it, in this process (as the hub and the agents are). */
async function wsEcho(): Promise<{ roundTrip(): Promise<void>; close(): Promise<void> }> {
  const server = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  await once(server, 'listening');
  server.on('connection', (s) => s.on('message', (data, isBinary) => s.send(data, { binary: isBinary })));
  const client = new WebSocket(`ws://127.0.0.1:${(server.address() as AddressInfo).port}`);
  await once(client, 'open');
  // Echoes come back in order: each resolves the oldest waiting round trip.
  const waiting: (() => void)[] = [];
  client.on('message', () => waiting.shift()?.());
  return {
    roundTrip: () =>
      new Promise<void>((done) => {
        waiting.push(done);
        client.send(ECHO_MESSAGE);
      }),
    async close() {
      client.close();
      await once(client, 'close');
      await new Promise<void>((done) => server.close(() => done()));
    },
  };
}

async function roundTrips(ctx: BenchContext, root: string): Promise<void> {
  const calls = ctx.size(2_000, 50);
  const burst = ctx.size(5_000, 200);
  const ms = { unit: 'ms', better: 'lower' as const };
  const perSecond = { unit: 'calls/s', better: 'higher' as const };

  const echo = await wsEcho();
  try {
    const echoed = await ctx.repeat('bare ws echo', async () =>
      summarizeLatencies(await timeCalls(calls, echo.roundTrip)),
    );
    ctx.figure({
      id: 'ws.p50',
      label: `baseline: bare ws echo of ${ECHO_MESSAGE.length} B, server in the same process, p50`,
      ...ms,
      samples: echoed.map((s) => s.p50),
    });
    ctx.figure({ id: 'ws.p99', label: 'baseline: bare ws echo, p99', ...ms, samples: echoed.map((s) => s.p99) });
    ctx.figure({
      id: 'ws.rate',
      label: `baseline: bare ws echoes per second, ${IN_FLIGHT} in flight`,
      unit: 'echoes/s',
      better: 'higher',
      samples: await ctx.repeat('bare ws echo, in flight', () => callsPerSecond(burst, echo.roundTrip)),
    });
  } finally {
    await echo.close();
  }

  const cp = await newControlPlaneDir(root, 'rtt');
  const host = await startHost(cp, UNTHROTTLED);
  try {
    const agent = await enrollSimAgent(cp, root, 'rtt-1');
    const link = await startLink(agent);
    const context = host.controlPlane.context;
    const session = context.sessions.get(agent.did);
    if (!session) throw new Error('the simulated agent has no hub session');
    const hubCall = async () => {
      const token = await context.issuer.issue(
        { aud: DEVICE_AUDIENCE, sub: 'bench', tid: session.tid, dev: agent.did, role: 'viewer', scope: '' },
        60_000,
      );
      await session.callTool({
        tool: 'soil.read_moisture',
        args: { bed: 2 },
        token: token.token,
        deadlineMs: Date.now() + 5000,
      });
    };
    const hub = await ctx.repeat('hub tool call', async () => summarizeLatencies(await timeCalls(calls, hubCall)));
    ctx.figure({
      id: 'hub.p50',
      label: 'tool call through the WSS hub (per-call token, tool.call, tool.result), p50',
      ...ms,
      baseline: 'ws.p50',
      samples: hub.map((s) => s.p50),
    });
    ctx.figure({
      id: 'hub.p99',
      label: 'tool call through the WSS hub, p99',
      ...ms,
      baseline: 'ws.p99',
      samples: hub.map((s) => s.p99),
    });

    const { token } = (await post(cp.url, '/v1/operator/tokens', cp.operatorKey, {
      role: 'viewer',
      subject: 'bench',
    })) as { token: string };
    const client = new Client({ name: 'outpost-bench', version: '1.0.0' });
    await client.connect(
      new StreamableHTTPClientTransport(new URL(`${cp.url}/mcp`), {
        requestInit: { headers: { authorization: `Bearer ${token}` } },
        fetch: isolatingFetch,
      }),
    );
    try {
      const mcpCall = async () => {
        const r = await client.callTool({ name: 'rtt-1.soil.read_moisture', arguments: { bed: 2 } });
        if (r.isError) throw new Error(JSON.stringify(r));
      };
      const mcp = await ctx.repeat('MCP tool call', async () => summarizeLatencies(await timeCalls(calls, mcpCall)));
      ctx.figure({
        id: 'mcp.p50',
        label: 'tool call through the MCP gateway (MCP SDK client over Streamable HTTP → hub → device), p50',
        ...ms,
        baseline: 'ws.p50',
        samples: mcp.map((s) => s.p50),
      });
      ctx.figure({
        id: 'mcp.p99',
        label: 'tool call through the MCP gateway, p99',
        ...ms,
        baseline: 'ws.p99',
        samples: mcp.map((s) => s.p99),
      });
      ctx.figure({
        id: 'hub.rate',
        label: `tool calls per second through the WSS hub, ${IN_FLIGHT} in flight to one device`,
        ...perSecond,
        baseline: 'ws.rate',
        samples: await ctx.repeat('hub tool calls, in flight', () => callsPerSecond(burst, hubCall)),
      });
      ctx.figure({
        id: 'mcp.rate',
        label: `tool calls per second through the MCP gateway, ${IN_FLIGHT} in flight to one device`,
        ...perSecond,
        baseline: 'ws.rate',
        samples: await ctx.repeat('MCP tool calls, in flight', () => callsPerSecond(burst, mcpCall)),
      });
    } finally {
      await client.close();
    }
    await link.stop();
  } finally {
    await host.close();
  }
  ctx.note(
    `Round trips: ${calls.toLocaleString('en-US')} sequential calls per run over loopback (no TLS); calls/s: ${burst.toLocaleString('en-US')} calls per run, ${IN_FLIGHT} in flight. The control plane, the simulated agent (the agent's real upstream link, answering at once) and the caller share one process, as do the echo server and client of the baseline. The hub path issues a per-call device token as the MCP gateway does. The per-session envelope rate limit (200/s, burst 400 by default) is lifted for these runs so that they measure the path, not the limiter.`,
  );
}

/**
 * Fills a real outbox with `records` signed records (units of 256), then drains it through the agent's upstream
 * link and pump into a fresh control plane in this process; seconds from the pump's start until the control
 * plane's store holds every record.
 */
async function drain(ctx: BenchContext, root: string, records: number): Promise<{ seconds: number; fillS: number }> {
  const cp = await newControlPlaneDir(root, 'drain');
  const host = await startHost(cp);
  try {
    const agent = await enrollSimAgent(cp, root, 'drainer');
    const db = openDatabase(join(agent.stateDir, 'outbox.db'), { migrations: [OUTBOX_MIGRATIONS] });
    try {
      const outbox = createOutbox(db, {
        key: new Uint8Array(32).fill(1),
        maxItems: 10_000_000,
        maxBytes: 4 * 1024 ** 3,
      });
      const fill0 = now();
      const ts = Date.now();
      const chunk = MAX_UNIT_RECORDS * 64;
      for (let first = 1; first <= records; first += chunk) {
        const items: { stream: string; payload: Uint8Array }[] = [];
        for (let u = first; u < Math.min(first + chunk, records + 1); u += MAX_UNIT_RECORDS) {
          const n = Math.min(MAX_UNIT_RECORDS, records + 1 - u);
          const recs = Array.from({ length: n }, (_, i) => ({
            seq: u + i,
            stream: 'soil.moisture',
            ts: ts + u + i,
            value: 40 + ((u + i) % 17) / 4,
          }));
          items.push({
            stream: 'soil.moisture',
            payload: utf8(encodeTelemetryUnit(signTelemetryUnit(agent.seed, recs))),
          });
        }
        outbox.append(items);
        ctx.progress(Math.min(first + chunk - 1, records), records, 'records queued');
      }
      const fillS = elapsedMs(fill0) / 1000;
      const link = await startLink(agent);
      const store = host.state.store;
      const tid = (await store.getDevice(agent.did))!.tid;
      const t0 = now();
      const pump = startUplinkPump({ outbox, uplink: link, log: silentLogger, maxItems: 64, maxBytes: 1 << 20 });
      for (;;) {
        const stored = await store.countTelemetry(tid, agent.did);
        ctx.progress(Math.min(stored, records), records, 'records stored');
        if (stored >= records) break;
        await new Promise((r) => setTimeout(r, 50));
      }
      const seconds = elapsedMs(t0) / 1000;
      await pump.stop();
      await link.stop();
      return { seconds, fillS };
    } finally {
      db.close();
    }
  } finally {
    await host.close();
    rmSync(cp.dir, { recursive: true, force: true });
  }
}

async function telemetry(ctx: BenchContext, root: string): Promise<void> {
  const records = ctx.size(200_000, 2_000);
  const e2e = await ctx.repeat('telemetry end to end', () => drain(ctx, root, records));
  ctx.figure({
    id: 'e2e.rate',
    label: `telemetry agent outbox → control-plane store over WSS, ${records.toLocaleString('en-US')} signed records`,
    unit: 'records/s',
    better: 'higher',
    samples: e2e.map((r) => records / r.seconds),
  });
  const backlog = ctx.size(1_000_000, 5_000);
  const backlogRuns = Math.min(3, ctx.repeats);
  const drained = await ctx.repeat(
    `${backlog.toLocaleString('en-US')}-record backlog`,
    () => drain(ctx, root, backlog),
    {
      repeats: backlogRuns,
      warmup: 0,
    },
  );
  ctx.figure({
    id: 'backlog.drain',
    label: `a ${backlog.toLocaleString('en-US')}-record backlog drained into the control-plane store`,
    unit: 's',
    better: 'lower',
    samples: drained.map((r) => r.seconds),
  });
  ctx.figure({
    id: 'backlog.rate',
    label: `${backlog.toLocaleString('en-US')}-record backlog, drain rate`,
    unit: 'records/s',
    better: 'higher',
    baseline: 'e2e.rate',
    samples: drained.map((r) => backlog / r.seconds),
  });
  ctx.figure({
    id: 'backlog.fill',
    label: `time to sign and queue the ${backlog.toLocaleString('en-US')}-record backlog in the agent's outbox (not part of the drain)`,
    unit: 's',
    better: 'lower',
    samples: drained.map((r) => r.fillS),
  });
  ctx.note(
    `Telemetry: each run fills a fresh agent outbox (SQLite) with signed units of ${MAX_UNIT_RECORDS} records, then times from the start of the agent's uplink pump (up to 64 units per telemetry.batch) through its upstream link and the hub until a fresh control plane's store counts every record (polled every 50 ms); agent link, pump and control plane share one process. The backlog figures come from ${backlogRuns} run${backlogRuns === 1 ? '' : 's'} without a warm-up (each one queues and drains ${backlog.toLocaleString('en-US')} records), the others from ${ctx.repeats} after one warm-up.`,
  );
}

function rssMb(pid: number): number {
  const kb = Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1]);
  return (kb * 1024) / 1e6;
}

/** `outpost controlplane run` from source as a child process; resolves once it serves. */
async function controlPlaneProcess(cp: ControlPlaneDir): Promise<{ pid: number; stop(): Promise<void> }> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !k.startsWith('OUTPOST_')) env[k] = v;
  const child: ChildProcess = spawn(
    process.execPath,
    [CLI, 'controlplane', 'run', '--state-dir', cp.dir, '--log-level', 'warning'],
    { env, stdio: ['ignore', 'ignore', 'pipe'] },
  );
  await new Promise<void>((res, rej) => {
    let seen = '';
    child.stderr!.on('data', (c: Buffer) => {
      seen += c.toString();
      if (seen.includes('serving')) res();
    });
    child.once('exit', () => rej(new Error(`control plane exited: ${seen}`)));
  });
  return {
    pid: child.pid!,
    async stop() {
      child.kill('SIGTERM');
      if (child.exitCode === null && child.signalCode === null) await once(child, 'exit');
    },
  };
}

async function agentsPerProcess(ctx: BenchContext, root: string): Promise<void> {
  const count = ctx.size(5_000, 20);
  const cp = await newControlPlaneDir(root, 'many');
  const agents: SimAgent[] = [];
  const settle = (ms: number) => new Promise((r) => setTimeout(r, ms));
  {
    // Enrolled once; every run starts a fresh control-plane process on the same state and connects them all.
    const enrolling = await controlPlaneProcess(cp);
    try {
      while (agents.length < count) {
        const batch = await Promise.all(
          Array.from({ length: Math.min(50, count - agents.length) }, (_, i) =>
            enrollSimAgent(cp, root, `a-${agents.length + i}`),
          ),
        );
        agents.push(...batch);
        ctx.progress(agents.length, count, 'agents enrolled');
      }
    } finally {
      await enrolling.stop();
    }
  }
  const runs = await ctx.repeat(`${count.toLocaleString('en-US')} agents on one control plane`, async () => {
    const proc = await controlPlaneProcess(cp);
    const links: UpstreamLink[] = [];
    try {
      await settle(ctx.quick ? 200 : 2_000);
      const idleMb = rssMb(proc.pid);
      const t0 = now();
      let up = 0;
      await Promise.all(
        agents.map(async (a) => {
          const link = openLink(a);
          links.push(link);
          await link.start();
          await connected(link);
          ctx.progress(++up, count, 'agents connected');
        }),
      );
      const connectS = elapsedMs(t0) / 1000;
      await settle(ctx.quick ? 200 : 2_000);
      const online = links.filter((l) => l.state() === 'connected').length;
      return { idleMb, connectS, online, mb: rssMb(proc.pid) };
    } finally {
      await Promise.all(links.map((l) => l.stop()));
      await proc.stop();
    }
  });
  ctx.figure({
    id: 'cp.rss.idle',
    label: 'baseline: control-plane process RSS, no agent connected',
    unit: 'MB',
    better: 'lower',
    samples: runs.map((r) => r.idleMb),
  });
  ctx.figure({
    id: 'agents.connected',
    label: `simulated agents connected at once to one control-plane process (of ${count.toLocaleString('en-US')} started)`,
    unit: 'agents',
    better: 'higher',
    samples: runs.map((r) => r.online),
  });
  ctx.figure({
    id: 'agents.connect',
    label: `time for ${count.toLocaleString('en-US')} agents to connect at once (WSS upgrade and hello handshake)`,
    unit: 's',
    better: 'lower',
    samples: runs.map((r) => r.connectS),
  });
  ctx.figure({
    id: 'agents.rss',
    label: `control-plane process RSS with ${count.toLocaleString('en-US')} agents connected`,
    unit: 'MB',
    better: 'lower',
    baseline: 'cp.rss.idle',
    samples: runs.map((r) => r.mb),
  });
  ctx.figure({
    id: 'agents.rss.per',
    label: 'control-plane RSS per connected agent',
    unit: 'kB',
    better: 'lower',
    samples: runs.map((r) => ((r.mb - r.idleMb) * 1000) / Math.max(1, r.online)),
  });
  ctx.note(
    `Agents: ${count.toLocaleString('en-US')} agents enrolled once; each run starts \`outpost controlplane run\` (from source) on that state, then starts every agent's real upstream link at once from the bench process, which all connect over loopback WSS (heartbeat 60 s). The count is bounded by what the bench starts, not a limit found. MB = 10^6 bytes of VmRSS.`,
  );
}

async function run(ctx: BenchContext): Promise<void> {
  const root = mkdtempSync(join(tmpdir(), 'outpost-bench-cp-'));
  try {
    await roundTrips(ctx, root);
    await telemetry(ctx, root);
    await agentsPerProcess(ctx, root);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

await runBench({
  name: 'controlplane',
  title: 'Control plane: tool-call round trips, telemetry, agents per process',
  run,
});
