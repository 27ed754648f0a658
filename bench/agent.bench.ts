// Agent benchmark: durable signed telemetry enqueue (single, batched, concurrent producers) against a bare
// better-sqlite3 insert loop in the same run; safety-gate decision latency (token + 2-of-3 quorum + schema +
// decision, p50/p99); idle RSS of a real agent process with 10 tools.
// Run: `npm run bench -- agent` (bench/README.md).

import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
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
import { type BenchContext, runBench, summarizeLatencies } from './harness.ts';

const root = mkdtempSync(join(tmpdir(), 'outpost-bench-agent-'));
let fileNo = 0;
const seconds = (t0: bigint) => Number(process.hrtime.bigint() - t0) / 1e9;

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

async function enqueueRate(mode: 'single' | 'batched' | 'concurrent', total: number): Promise<number> {
  const { ingest, close } = freshIngest();
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

function bareRate(perTx: number, total: number): number {
  const db = new Database(join(root, `b${fileNo++}.db`));
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = FULL');
  db.exec('CREATE TABLE q (id INTEGER PRIMARY KEY, stream TEXT, seq INTEGER, body BLOB)');
  const insert = db.prepare('INSERT INTO q (stream, seq, body) VALUES (?, ?, ?)');
  const tx = db.transaction((from: number) => {
    for (let i = 0; i < perTx; i++) insert.run('bench.value', from + i, randomBytes(240));
  });
  const t0 = process.hrtime.bigint();
  for (let n = 0; n < total; n += perTx) tx(n);
  const r = total / seconds(t0);
  db.close();
  return r;
}

// --- 2. Gate decision latency ------------------------------------------------------------------------

/** Mints the tokens once; each run of the returned function times every decision over them. */
async function gateBench(n: number): Promise<() => Promise<{ full: number[]; pure: number[] }>> {
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
  return async () => {
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
    return { full, pure };
  };
}

// --- 3. Idle RSS with 10 tools -------------------------------------------------------------------------

async function idleRss(run: number): Promise<number> {
  const dir = join(root, `rss${run}`);
  const tools = Array.from(
    { length: 10 },
    (_, i) =>
      `[[tools]]\nname = "bench.tool${i}"\ndescription = "Tool ${i}."\nsafety_class = "read_only"\n[tools.exec]\nargv = ["/bin/echo", "${i}"]\n`,
  ).join('\n');
  const configFile = join(root, `rss${run}.toml`);
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
  let log = '';
  await new Promise<void>((resolve, reject) => {
    agent.stderr!.on('data', (c: Buffer) => {
      log += c.toString();
      if (log.includes('agent.started')) resolve();
    });
    agent.once('exit', () => reject(new Error(`the agent exited:\n${log}`)));
  });
  // Let start-up garbage be collected by ordinary idling (no requests), then read the kernel's figure.
  await new Promise((r) => setTimeout(r, 5_000));
  if (agent.exitCode !== null || agent.signalCode !== null) {
    throw new Error(`the agent exited while idle (${agent.exitCode ?? agent.signalCode}):\n${log}`);
  }
  const status = readFileSync(`/proc/${agent.pid}/status`, 'utf8');
  const kb = Number(/VmRSS:\s+(\d+) kB/.exec(status)?.[1]);
  agent.kill('SIGTERM');
  await once(agent, 'exit');
  return (kb * 1024) / 1e6;
}

async function run(ctx: BenchContext): Promise<void> {
  try {
    const rec = { unit: 'records/s', better: 'higher' as const };
    const singles = ctx.size(500, 50);
    const many = ctx.size(50_000, 1_000);
    ctx.figure({
      id: 'bare.single',
      label: 'baseline: bare better-sqlite3 insert, FULL, 1 per tx',
      ...rec,
      samples: await ctx.repeat('bare single', () => bareRate(1, singles)),
    });
    ctx.figure({
      id: 'bare.batched',
      label: 'baseline: bare better-sqlite3 insert, FULL, 100 per tx',
      ...rec,
      samples: await ctx.repeat('bare batched', () => bareRate(100, many)),
    });
    ctx.figure({
      id: 'enqueue.single',
      label: 'signed durable enqueue, single (1 per request)',
      ...rec,
      baseline: 'bare.single',
      samples: await ctx.repeat('enqueue single', () => enqueueRate('single', singles)),
    });
    ctx.figure({
      id: 'enqueue.batched',
      label: 'signed durable enqueue, batched (100 per request)',
      ...rec,
      baseline: 'bare.batched',
      samples: await ctx.repeat('enqueue batched', () => enqueueRate('batched', many)),
    });
    ctx.figure({
      id: 'enqueue.concurrent',
      label: 'signed durable enqueue, 64 concurrent single producers',
      ...rec,
      baseline: 'bare.single',
      samples: await ctx.repeat('enqueue concurrent', () => enqueueRate('concurrent', ctx.size(5_000, 128))),
    });

    const decisions = await gateBench(ctx.size(400, 20));
    const gate = await ctx.repeat('gate decisions', decisions);
    const full = gate.map((g) => summarizeLatencies(g.full));
    const pure = gate.map((g) => summarizeLatencies(g.pure));
    const ms = { unit: 'ms', better: 'lower' as const };
    ctx.figure({
      id: 'gate.quorum.p50',
      label: 'gate: token + 2-of-3 quorum + schema + decide, p50',
      ...ms,
      samples: full.map((x) => x.p50),
    });
    ctx.figure({
      id: 'gate.quorum.p99',
      label: 'gate: token + 2-of-3 quorum + schema + decide, p99',
      ...ms,
      samples: full.map((x) => x.p99),
    });
    ctx.figure({
      id: 'gate.quorum.max',
      label: 'gate: token + 2-of-3 quorum + schema + decide, max',
      ...ms,
      samples: full.map((x) => x.max),
    });
    const us = { unit: 'µs', better: 'lower' as const };
    ctx.figure({
      id: 'gate.decide.p50',
      label: 'gate: decide() alone, p50',
      ...us,
      samples: pure.map((x) => x.p50 * 1000),
    });
    ctx.figure({
      id: 'gate.decide.p99',
      label: 'gate: decide() alone, p99',
      ...us,
      samples: pure.map((x) => x.p99 * 1000),
    });

    ctx.figure({
      id: 'rss.idle',
      label: 'from source: idle RSS, agent with 10 exec tools + 4 built-ins',
      unit: 'MB',
      better: 'lower',
      samples: await ctx.repeat('idle RSS', (i) => idleRss(i), { repeats: Math.min(3, ctx.repeats) }),
    });
    ctx.note(
      "Enqueue: the agent's own ingest (validate, number, sign, seal, append with group commit, synchronous=FULL). Gate: each decision verifies a fresh runtime token and 2-of-3 quorum token, checks the arguments against the schema and decides.",
    );
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

await runBench({ name: 'agent', title: 'Agent: signed durable enqueue, safety gate, idle memory', run });
