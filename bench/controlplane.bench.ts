// Control-plane benchmark: tool-call round trip through the WSS hub and through the MCP gateway (p50/p99) against a
// bare `ws` echo in the same run; end-to-end telemetry throughput agent → control-plane store (the agent's upstream
// link and pump over a real outbox); time to drain a 1,000,000-record backlog; how many agents one control-plane
// process holds (simulated agents, each the real upstream link, in this process). Prints figures; no thresholds.
// Run: `npx node bench/controlplane.bench.ts [--calls N] [--records N] [--backlog N] [--agents N] [--json]`.

import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { WebSocket, WebSocketServer } from 'ws';
import { enroll } from '../agent/enrollment.ts';
import { startUplinkPump } from '../agent/uplink-pump.ts';
import { createUpstreamLink, type UpstreamLink } from '../agent/upstream-link.ts';
import { startControlPlaneHost } from '../controlplane/node/host.ts';
import { initStateDir } from '../controlplane/node/state-dir.ts';
import { DEVICE_AUDIENCE } from '../controlplane/settings.ts';
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

const ROOT = resolve(import.meta.dirname, '..');
const args = process.argv.slice(2);
const opt = (name: string, fallback: number) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? Number(args[i + 1]) : fallback;
};
const CALLS = opt('calls', 2000);
const RECORDS = opt('records', 200_000);
const BACKLOG = opt('backlog', 1_000_000);
const AGENTS = opt('agents', 2000);
const asJson = args.includes('--json');
const root = mkdtempSync(join(tmpdir(), 'outpost-bench-cp-'));
const results: Record<string, unknown>[] = [];

const quantile = (xs: number[], q: number) =>
  [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(q * xs.length))]!;
const fmt = (n: number) => (n >= 100 ? Math.round(n).toLocaleString('en-US') : n.toFixed(2));

function report(name: string, value: number, unit: string, extra: Record<string, unknown> = {}): void {
  results.push({ name, value, unit, ...extra });
  if (!asJson) {
    const more = Object.entries(extra)
      .map(([k, v]) => `${k} ${typeof v === 'number' ? fmt(v) : String(v)}`)
      .join(', ');
    process.stdout.write(`${name.padEnd(58)} ${fmt(value).padStart(12)} ${unit}${more ? `  (${more})` : ''}\n`);
  }
}

async function freePort(): Promise<number> {
  return new Promise((res) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => res(port));
    });
  });
}

function manifestFor(did: string, name: string): CapabilityManifest {
  const m = JSON.parse(readFileSync(join(ROOT, 'examples/manifests/greenhouse.json'), 'utf8')) as CapabilityManifest;
  return decodeManifest({ ...m, device: { ...m.device, id: did, name } });
}

async function newControlPlane(name: string) {
  const dir = join(root, name);
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
  return { dir, port, url: `http://127.0.0.1:${port}`, operatorKey: init.created.operatorKey };
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

interface SimAgent {
  readonly did: string;
  readonly seed: Uint8Array;
  readonly stateDir: string;
  readonly link: UpstreamLink;
}

/** Enrolls one agent and starts its real upstream link, answering every tool call at once. */
async function simAgent(
  cp: { url: string; operatorKey: string },
  name: string,
  heartbeatMs = 60_000,
): Promise<SimAgent> {
  const seed = ed25519KeyPair().seed;
  const did = didKeyFromEd25519(ed25519KeyPair(seed).publicKey);
  const manifest = manifestFor(did, name);
  const stateDir = mkdtempSync(join(root, 'agent-'));
  const { token } = (await post(cp.url, '/v1/operator/enroll-token', cp.operatorKey, {})) as { token: string };
  await enroll({ url: cp.url, token, stateDir, identity: { did, seed }, manifest, replace: false, nowMs: Date.now() });
  const link = createUpstreamLink({ stateDir, clock: systemClock, log: silentLogger, heartbeatMs, timeoutMs: 30_000 });
  link.bind({
    identity: { did, seed },
    manifest,
    manifestHash: manifestHash(manifest),
    callTool: async (c) => ({ result: { bed: c.args.bed ?? 1, moisturePercent: 40 } }),
  });
  return { did, seed, stateDir, link };
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

async function wsEchoBaseline(): Promise<number[]> {
  const wss = new WebSocketServer({ port: 0, host: '127.0.0.1' });
  wss.on('connection', (ws) => ws.on('message', (d) => ws.send(d)));
  await once(wss, 'listening');
  const ws = new WebSocket(`ws://127.0.0.1:${(wss.address() as { port: number }).port}`);
  await once(ws, 'open');
  const payload = JSON.stringify({ type: 'tool.call', args: { bed: 2 }, pad: 'x'.repeat(900) });
  const times: number[] = [];
  for (let i = 0; i < CALLS; i++) {
    const t0 = performance.now();
    ws.send(payload);
    await once(ws, 'message');
    times.push(performance.now() - t0);
  }
  ws.close();
  wss.close();
  return times;
}

async function roundTrips(): Promise<void> {
  const baseline = await wsEchoBaseline();
  const b50 = quantile(baseline, 0.5);
  report('bare ws echo round trip, p50', b50, 'ms', { p99: quantile(baseline, 0.99) });
  const cp = await newControlPlane('rtt');
  const host = await startControlPlaneHost({
    dir: cp.dir,
    env: {},
    clock: systemClock,
    log: silentLogger,
    metrics: new MetricsRegistry(),
    version: 'bench',
  });
  try {
    const agent = await simAgent(cp, 'rtt-1');
    await agent.link.start();
    await connected(agent.link);
    const ctx = host.controlPlane.context;
    const session = ctx.sessions.get(agent.did)!;
    const hub: number[] = [];
    for (let i = 0; i < CALLS; i++) {
      const t0 = performance.now();
      const token = await ctx.issuer.issue(
        { aud: DEVICE_AUDIENCE, sub: 'bench', tid: session.tid, dev: agent.did, role: 'viewer', scope: '' },
        60_000,
      );
      await session.callTool({
        tool: 'soil.read_moisture',
        args: { bed: 2 },
        token: token.token,
        deadlineMs: Date.now() + 5000,
      });
      hub.push(performance.now() - t0);
    }
    report('tool call through the WSS hub (token + tool.call + result), p50', quantile(hub, 0.5), 'ms', {
      p99: quantile(hub, 0.99),
      'vs ws echo p50': `${(quantile(hub, 0.5) / b50).toFixed(1)}x`,
    });
    const { token } = (await post(cp.url, '/v1/operator/tokens', cp.operatorKey, {
      role: 'viewer',
      subject: 'bench',
    })) as { token: string };
    const client = new Client({ name: 'bench', version: '1' });
    await client.connect(
      new StreamableHTTPClientTransport(new URL(`${cp.url}/mcp`), {
        requestInit: { headers: { authorization: `Bearer ${token}` } },
      }),
    );
    const mcp: number[] = [];
    for (let i = 0; i < CALLS; i++) {
      const t0 = performance.now();
      const r = await client.callTool({ name: 'rtt-1.soil.read_moisture', arguments: { bed: 2 } });
      if (r.isError) throw new Error(JSON.stringify(r));
      mcp.push(performance.now() - t0);
    }
    report('tool call through the MCP gateway (SDK client → device), p50', quantile(mcp, 0.5), 'ms', {
      p99: quantile(mcp, 0.99),
      'vs ws echo p50': `${(quantile(mcp, 0.5) / b50).toFixed(1)}x`,
    });
    await client.close();
    await agent.link.stop();
  } finally {
    await host.close();
  }
}

/** Fills a real outbox with `records` signed records (units of 256), then drains it through the link and pump. */
async function drain(records: number, label: string): Promise<void> {
  const cp = await newControlPlane(`drain-${records}`);
  const host = await startControlPlaneHost({
    dir: cp.dir,
    env: {},
    clock: systemClock,
    log: silentLogger,
    metrics: new MetricsRegistry(),
    version: 'bench',
  });
  try {
    const agent = await simAgent(cp, 'drainer');
    const db = openDatabase(join(agent.stateDir, 'outbox.db'), { migrations: [OUTBOX_MIGRATIONS] });
    const outbox = createOutbox(db, { key: new Uint8Array(32).fill(1), maxItems: 10_000_000, maxBytes: 4 * 1024 ** 3 });
    const fillStart = performance.now();
    const ts = Date.now();
    for (let first = 1; first <= records; first += MAX_UNIT_RECORDS * 64) {
      const items: { stream: string; payload: Uint8Array }[] = [];
      for (let u = first; u < Math.min(first + MAX_UNIT_RECORDS * 64, records + 1); u += MAX_UNIT_RECORDS) {
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
    }
    const fillS = (performance.now() - fillStart) / 1000;
    await agent.link.start();
    await connected(agent.link);
    const t0 = performance.now();
    const pump = startUplinkPump({ outbox, uplink: agent.link, log: silentLogger, maxItems: 64, maxBytes: 1 << 20 });
    const store = host.state.store;
    for (;;) {
      const n = await store.countTelemetry((await store.getDevice(agent.did))!.tid, agent.did);
      if (n >= records) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    const s = (performance.now() - t0) / 1000;
    await pump.stop();
    await agent.link.stop();
    db.close();
    report(label, records / s, 'records/s', { records, seconds: s, 'backlog filled in s': fillS });
  } finally {
    await host.close();
  }
}

async function rssMiB(pid: number): Promise<number> {
  const kb = Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1]);
  return kb / 1024;
}

async function concurrentAgents(): Promise<void> {
  const cp = await newControlPlane('many');
  const child: ChildProcess = spawn(
    process.execPath,
    [join(ROOT, 'cli/bin.ts'), 'controlplane', 'run', '--state-dir', cp.dir, '--log-level', 'warning'],
    {
      stdio: ['ignore', 'ignore', 'pipe'],
    },
  );
  await new Promise<void>((res, rej) => {
    let seen = '';
    child.stderr!.on('data', (c: Buffer) => {
      seen += c.toString();
      if (seen.includes('serving')) res();
    });
    child.once('exit', () => rej(new Error(`control plane exited: ${seen}`)));
  });
  const agents: SimAgent[] = [];
  try {
    report('control plane RSS, idle', await rssMiB(child.pid!), 'MiB');
    for (const step of [250, 500, 1000, 2000, 5000, 10_000].filter((s) => s <= AGENTS)) {
      const t0 = performance.now();
      while (agents.length < step) {
        const batch = await Promise.all(
          Array.from({ length: Math.min(50, step - agents.length) }, (_, i) => simAgent(cp, `a-${agents.length + i}`)),
        );
        agents.push(...batch);
      }
      const enrolledS = (performance.now() - t0) / 1000;
      const t1 = performance.now();
      await Promise.all(
        agents
          .filter((a) => a.link.state() !== 'connected')
          .map(async (a) => {
            await a.link.start();
            await connected(a.link);
          }),
      );
      const connectS = (performance.now() - t1) / 1000;
      const online = agents.filter((a) => a.link.state() === 'connected').length;
      report(`agents connected at once (step ${step})`, online, 'agents', {
        'control plane RSS MiB': await rssMiB(child.pid!),
        'enroll s': enrolledS,
        'connect s': connectS,
      });
    }
  } finally {
    await Promise.all(agents.map((a) => a.link.stop()));
    child.kill('SIGTERM');
    await once(child, 'exit');
  }
}

try {
  if (!asJson)
    process.stdout.write(
      `control plane bench (load ${loadavg()[0]!.toFixed(2)}; calls ${CALLS}, records ${RECORDS}, backlog ${BACKLOG}, agents ${AGENTS})\n`,
    );
  await roundTrips();
  await drain(RECORDS, 'telemetry agent → control-plane store, end to end');
  if (BACKLOG > 0) await drain(BACKLOG, `drain a ${BACKLOG.toLocaleString('en-US')}-record backlog`);
  if (AGENTS > 0) await concurrentAgents();
  if (asJson)
    process.stdout.write(`${JSON.stringify({ bench: 'controlplane', load: loadavg()[0], results }, null, 2)}\n`);
} finally {
  rmSync(root, { recursive: true, force: true });
}
