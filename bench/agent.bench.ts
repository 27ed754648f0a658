// Agent benchmark: durable signed telemetry enqueue (single, batched, concurrent producers) against a bare
// better-sqlite3 insert loop in the same run; safety-gate decision latency (token + 2-of-3 quorum + schema +
// decision, p50/p99); idle RSS of a real agent process with 10 tools.
// Run: `npx node bench/agent.bench.ts [--repeats N] [--json]`.

import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { builtinTools } from '../agent/builtin-tools.ts';
import { parseConfig } from '../agent/config.ts';
import { devApprove, fileDevKeyStore, initDevTrust, mintDevToken } from '../agent/dev-trust.ts';
import { decide, type GateFacts } from '../agent/gate.ts';
import { quorumFact, tokenFact } from '../agent/gate-facts.ts';
import { buildAgentManifest } from '../agent/manifest-builder.ts';
import { deriveOutboxKey } from '../agent/outbox-key.ts';
import { createRecentTelemetry } from '../agent/recent-telemetry.ts';
import type { SystemInfoSource } from '../agent/system-info.ts';
import { createTelemetryIngest, type TelemetryIngest } from '../agent/telemetry-ingest.ts';
import { loadTrustBundle } from '../agent/trust-bundle.ts';
import { systemClock } from '../protocol/clock.ts';
import { didKeyFromEd25519 } from '../protocol/did-key.ts';
import { validateJson } from '../protocol/json-schema.ts';
import { verifyQuorum } from '../protocol/quorum.ts';
import { ed25519KeyPair } from '../protocol/signing.ts';
import { verifyRuntimeToken } from '../protocol/tokens.ts';
import { openDatabase } from '../store/database.ts';
import { createOutbox, OUTBOX_MIGRATIONS } from '../store/outbox.ts';
import { createSequence, SEQUENCE_MIGRATIONS } from '../store/sequence.ts';

const args = process.argv.slice(2);
const repeats = Number(args[args.indexOf('--repeats') + 1]) || 3;
const asJson = args.includes('--json');
const root = mkdtempSync(join(tmpdir(), 'outpost-bench-agent-'));
const results: Record<string, unknown>[] = [];
let fileNo = 0;

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};
const quantile = (xs: number[], q: number) =>
  [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(q * xs.length))]!;
const fmt = (n: number) => (n >= 100 ? Math.round(n).toLocaleString('en-US') : n.toFixed(2));
const seconds = (t0: bigint) => Number(process.hrtime.bigint() - t0) / 1e9;

function report(name: string, value: number, unit: string, extra: Record<string, unknown> = {}): void {
  results.push({ name, value, unit, ...extra });
  if (!asJson) {
    const more = Object.entries(extra)
      .map(([k, v]) => `${k} ${typeof v === 'number' ? fmt(v) : String(v)}`)
      .join(', ');
    process.stdout.write(`${name.padEnd(56)} ${fmt(value).padStart(10)} ${unit}${more ? `  (${more})` : ''}\n`);
  }
}

// --- 1. Durable signed enqueue --------------------------------------------------------------------------

const seed = randomBytes(32);
const systemInfo: SystemInfoSource = {
  info: async () => ({}) as never,
  sample: async () => ({
    cpu_temp_c: 50,
    load_1m: 0,
    load_5m: 0,
    mem_used_ratio: 0,
    disk_used_ratio: 0,
    uptime_s: 0,
    throttled: false,
  }),
};
const streamConfig = '[[streams]]\nname = "bench.value"\nunit = "1"\nsource = { kind = "ingest" }\n';

function freshIngest(): { ingest: TelemetryIngest; close: () => void } {
  const db = openDatabase(join(root, `i${fileNo++}.db`), { migrations: [OUTBOX_MIGRATIONS, SEQUENCE_MIGRATIONS] });
  const recent = createRecentTelemetry(16);
  const m = buildAgentManifest({
    config: parseConfig(streamConfig),
    configFile: join(root, 'agent.toml'),
    configText: streamConfig,
    deviceId: didKeyFromEd25519(ed25519KeyPair(seed).publicKey),
    agentVersion: '0.1.0',
    builtins: builtinTools({ systemInfo, recent }),
  });
  const outbox = createOutbox(db, { key: deriveOutboxKey(seed) });
  const ingest = createTelemetryIngest({
    outbox,
    sequence: createSequence(db, 'telemetry'),
    identitySeed: seed,
    streams: m.streams,
    recent,
    clock: systemClock,
  });
  return { ingest, close: () => db.close() };
}

async function enqueueRate(mode: 'single' | 'batched' | 'concurrent'): Promise<number> {
  const { ingest, close } = freshIngest();
  const total = mode === 'single' ? 500 : 5_000;
  const t0 = process.hrtime.bigint();
  if (mode === 'single') {
    for (let i = 0; i < total; i++) await ingest.ingest([{ stream: 'bench.value', value: i }], 'api');
  } else if (mode === 'batched') {
    for (let i = 0; i < total; i += 100) {
      await ingest.ingest(
        Array.from({ length: 100 }, (_, k) => ({ stream: 'bench.value', value: i + k })),
        'api',
      );
    }
  } else {
    // 64 producers, one record each per request: the outbox commits what arrives in one turn together.
    for (let i = 0; i < total; i += 64) {
      await Promise.all(
        Array.from({ length: 64 }, (_, k) => ingest.ingest([{ stream: 'bench.value', value: i + k }], 'api')),
      );
    }
  }
  const r = total / seconds(t0);
  close();
  return r;
}

function bareRate(perTx: number): number {
  const db = new Database(join(root, `b${fileNo++}.db`));
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = FULL');
  db.exec('CREATE TABLE q (id INTEGER PRIMARY KEY, stream TEXT, seq INTEGER, body BLOB)');
  const insert = db.prepare('INSERT INTO q (stream, seq, body) VALUES (?, ?, ?)');
  const tx = db.transaction((from: number) => {
    for (let i = 0; i < perTx; i++) insert.run('bench.value', from + i, randomBytes(240));
  });
  const total = perTx === 1 ? 500 : 5_000;
  const t0 = process.hrtime.bigint();
  for (let n = 0; n < total; n += perTx) tx(n);
  const r = total / seconds(t0);
  db.close();
  return r;
}

async function measure(name: string, once: () => Promise<number> | number, baseline?: number): Promise<number> {
  await once(); // warm-up
  const samples: number[] = [];
  for (let i = 0; i < repeats; i++) samples.push(await once());
  const m = median(samples);
  report(name, m, 'records/s', baseline ? { 'vs bare': `${(m / baseline).toFixed(2)}×` } : {});
  return m;
}

// --- 2. Gate decision latency ------------------------------------------------------------------------

async function gateLatency(): Promise<void> {
  const keys = fileDevKeyStore();
  const dir = join(root, 'trust');
  initDevTrust(keys, { dir, approvers: ['alice', 'bob', 'carol'], k: 2 });
  const trust = loadTrustBundle(
    { jwksFile: join(dir, 'jwks.json'), approvalPolicyFile: join(dir, 'approval-policy.json') },
    { issuer: 'urn:outpost:dev-issuer', audience: 'outpost-device' },
  );
  const device = didKeyFromEd25519(ed25519KeyPair(seed).publicKey);
  const tool = {
    name: 'valve.open',
    description: 'v',
    inputSchema: {
      type: 'object' as const,
      properties: {
        zone: { type: 'string' as const, enum: ['a', 'b'] },
        seconds: { type: 'integer' as const, minimum: 1, maximum: 600 },
      },
      required: ['zone', 'seconds'],
      additionalProperties: false as const,
    },
    safety_class: 'physical_actuation' as const,
    timeoutMs: 1000,
    interlocks: [{ kind: 'min_interval' as const, ms: 60_000 }],
  };
  const callArgs = { zone: 'a', seconds: 30 };
  const n = 400;
  const inputs = await Promise.all(
    Array.from({ length: n }, async () => ({
      token: await mintDevToken(keys, {
        dir,
        device,
        role: 'actuator',
        tools: ['*'],
        ttlS: 600,
        subject: 'bench',
        audience: 'outpost-device',
        clock: systemClock,
      }),
      quorum: devApprove(keys, { dir, device, tool: tool.name, args: callArgs, ttlS: 600, clock: systemClock }).token,
    })),
  );
  const full: number[] = [];
  const pure: number[] = [];
  for (const input of inputs) {
    const t0 = process.hrtime.bigint();
    const v = await verifyRuntimeToken(input.token, {
      jwks: trust.jwks,
      clock: systemClock,
      issuer: trust.issuer,
      audience: trust.audience,
    });
    const q = verifyQuorum(input.quorum, {
      policy: trust.policy,
      tid: trust.tenantId,
      device,
      tool: tool.name,
      args: callArgs,
      clock: systemClock,
    });
    const check = validateJson(tool.inputSchema, callArgs);
    const facts: GateFacts = {
      source: 'local_api',
      toolName: tool.name,
      tool,
      exclusions: [],
      argsErrors: check.valid ? [] : ['x'],
      device: { id: device, tenant: trust.tenantId },
      token: tokenFact(v, false),
      quorum: quorumFact(q, false),
      wallMs: systemClock.nowMs(),
      wallClockTrusted: true,
      nowStoreMs: 1e9,
      history: new Map(),
    };
    const t1 = process.hrtime.bigint();
    const d = decide(facts);
    const t2 = process.hrtime.bigint();
    if (!d.allow) throw new Error(`bench call was denied: ${d.reason}`);
    full.push(Number(t2 - t0) / 1e6);
    pure.push(Number(t2 - t1) / 1e6);
  }
  report('gate: token + 2-of-3 quorum + schema + decide, p50', quantile(full, 0.5), 'ms', {
    p99: quantile(full, 0.99),
  });
  report('gate: decide() alone, p50', quantile(pure, 0.5) * 1000, 'µs', { 'p99 µs': quantile(pure, 0.99) * 1000 });
}

// --- 3. Idle RSS with 10 tools -------------------------------------------------------------------------

async function idleRss(): Promise<void> {
  const dir = join(root, 'rss');
  const tools = Array.from(
    { length: 10 },
    (_, i) =>
      `[[tools]]\nname = "bench.tool${i}"\ndescription = "Tool ${i}."\nsafety_class = "read_only"\n[tools.exec]\nargv = ["/bin/echo", "${i}"]\n`,
  ).join('\n');
  const configFile = join(root, 'rss.toml');
  writeFileSync(
    configFile,
    `[agent]\nname = "bench"\n[paths]\nstate_dir = "${dir}"\n[mcp]\nhttp_port = 0\n[metrics]\nport = 0\n${tools}`,
  );
  const agent = spawn(
    process.execPath,
    [join(import.meta.dirname, '../cli/bin.ts'), 'agent', 'run', '--config', configFile],
    {
      stdio: ['ignore', 'ignore', 'pipe'],
    },
  );
  await new Promise<void>((resolve, reject) => {
    let log = '';
    agent.stderr!.on('data', (c: Buffer) => {
      log += c.toString();
      if (log.includes('agent.started')) resolve();
    });
    agent.once('exit', () => reject(new Error(`the agent exited:\n${log}`)));
  });
  // Let start-up garbage be collected by ordinary idling (no requests), then read the kernel's figure.
  await new Promise((r) => setTimeout(r, 5_000));
  const status = readFileSync(`/proc/${agent.pid}/status`, 'utf8');
  const kb = Number(/VmRSS:\s+(\d+) kB/.exec(status)?.[1]);
  agent.kill('SIGTERM');
  await once(agent, 'exit');
  report('idle RSS, agent with 10 exec tools + 4 built-ins', kb / 1024, 'MiB');
}

try {
  if (!asJson) process.stdout.write(`agent bench (load ${loadavg()[0]!.toFixed(2)}, ${repeats} repeats, median)\n`);
  const bare1 = await measure('bare better-sqlite3 insert, FULL, 1 per tx', () => bareRate(1));
  const bare100 = await measure('bare better-sqlite3 insert, FULL, 100 per tx', () => bareRate(100));
  await measure('signed durable enqueue, single (1 per request)', () => enqueueRate('single'), bare1);
  await measure('signed durable enqueue, batched (100 per request)', () => enqueueRate('batched'), bare100);
  await measure('signed durable enqueue, 64 concurrent single producers', () => enqueueRate('concurrent'), bare1);
  await gateLatency();
  await idleRss();
  if (asJson)
    process.stdout.write(`${JSON.stringify({ bench: 'agent', load: loadavg()[0], repeats, results }, null, 2)}\n`);
} finally {
  rmSync(root, { recursive: true, force: true });
}
