// A remote site end to end, with real processes on emulated radios: `outpost radio sim` hosts one simulated air
// (20 % frame loss, time 20× faster) for a gateway (`outpost gateway run`) and three LoRa-only agents
// (`outpost agent run`, [uplink] mode = "lora", enrolled over LoRa). The control plane's side is the LoRa relay
// (controlplane/lora-relay.ts) behind a loopback WSS host in this process, reached through a backhaul that goes
// down several times for longer than the agents' send interval.
// Checked: every telemetry record arrives exactly once; a read_only call reaches a LoRa-only device and its result
// returns; a physical_actuation call runs only with quorum; the air's own accounting shows no transmitter over
// its duty-cycle budget; a gateway killed with SIGKILL loses nothing it stored.

import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { builtinTools } from '../../agent/builtin-tools.ts';
import { parseConfig } from '../../agent/config.ts';
import { createLocalApiClient } from '../../agent/local-api/client.ts';
import { buildAgentManifest } from '../../agent/manifest-builder.ts';
import { createRecentTelemetry } from '../../agent/recent-telemetry.ts';
import { buildInfo } from '../../cli/build-info.ts';
import type { RadioSimInfo } from '../../cli/radio-sim.ts';
import type { AirStats } from '../../firmware-bridge/emulator/simulated-air.ts';
import type { GatewayStatus } from '../../gateway/gateway.ts';
import { didKeyFromEd25519 } from '../../protocol/did-key.ts';
import { toLoraQuorum } from '../../protocol/lora-quorum.ts';
import { parseQuorumPolicy, quorumTokenFromText } from '../../protocol/quorum.ts';
import { ed25519KeyPair } from '../../protocol/signing.ts';
import { writeFileAtomic } from '../../store/atomic-file.ts';
import { type BackhaulProxy, startBackhaulProxy } from '../support/backhaul-proxy.ts';
import { type CliProcess, startCli } from '../support/cli-process.ts';
import { type LoraControlPlane, startLoraControlPlane } from '../support/lora-controlplane.ts';

const TIME_SCALE = 20;
const AGENTS = 3;
const RECORDS_PER_AGENT = 36;
const dir = mkdtempSync(join(tmpdir(), 'outpost-lora-site-'));
const processes: CliProcess[] = [];
let sim: CliProcess;
let air: RadioSimInfo;
let cp: LoraControlPlane;
let proxy: BackhaulProxy;
let gateway: CliProcess;
let tenant: string;
let policyFile: string;
const agents: {
  name: string;
  did: string;
  config: string;
  socket: string;
  proc?: CliProcess;
  manifestTools: string[];
}[] = [];

const rnode = (path: string) => `[[radios]]
kind = "rnode"
path = "${path}"
role = "uplink"
region = "EU868"
frequency_hz = 867200000
bandwidth_hz = 125000
spreading_factor = 7
coding_rate = 5
tx_power_dbm = 14
`;

function run(args: string[], input?: string): CliProcess {
  const p = startCli(args, { ...(input === undefined ? {} : { input }) });
  processes.push(p);
  return p;
}

async function ok(p: CliProcess): Promise<string> {
  const code = await p.exited;
  assert.equal(code, 0, `${p.child.spawnargs.slice(2).join(' ')} exited ${code}: ${p.stderr().slice(-3000)}`);
  return p.lines.join('\n');
}

function simStats(): Promise<{ air: AirStats }> {
  return new Promise((resolve, reject) => {
    const req = request({ socketPath: air.control, path: '/v1/stats' }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (d: string) => {
        body += d;
      });
      res.on('end', () => resolve(JSON.parse(body) as { air: AirStats }));
    });
    req.on('error', reject);
    req.end();
  });
}

async function gatewayStatus(): Promise<GatewayStatus> {
  const p = run(['gateway', 'status', '--config', join(dir, 'gateway.toml'), '--json']);
  return JSON.parse(await ok(p)) as GatewayStatus;
}

async function until(fn: () => boolean | Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await fn())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

before(async () => {
  // The air: one gateway radio and one radio per agent.
  sim = run([
    'radio',
    'sim',
    '--rnode',
    String(AGENTS + 1),
    '--loss',
    '0.2',
    '--time-scale',
    String(TIME_SCALE),
    '--region',
    'EU868',
    '--dir',
    join(dir, 'air'),
    '--seed',
    '5',
    '--json',
  ]);
  air = await sim.waitForJson<RadioSimInfo>();

  // A dev trust bundle: the tenant, a token issuer, and approvers for physical_actuation (2 of 3).
  const trust = JSON.parse(await ok(run(['dev', 'trust', 'init', '--dir', join(dir, 'trust'), '--json']))) as {
    toml: string;
    tenantId: string;
  };
  tenant = trust.tenantId;
  policyFile = join(dir, 'trust', 'approval-policy.json');

  cp = await startLoraControlPlane({ tid: tenant, heartbeatMs: 2_000 });
  proxy = await startBackhaulProxy(cp.cp.port);

  // The gateway enrolls with the control plane, then runs on the first radio with its backhaul through the proxy.
  writeFileSync(
    join(dir, 'gateway.toml'),
    `[gateway]
name = "site-gw"
state_dir = "gw-state"

[upstream]
url = "ws://127.0.0.1:${proxy.port}/v1/wss"
tenant = "${tenant}"
http_url = "${cp.cp.httpUrl}"
heartbeat_s = 2
reconnect_initial_s = 0.2
reconnect_max_s = 1

[[radio]]
name = "rnode0"
kind = "rnode"
path = "${air.radios[0]!.path}"
region = "EU868"
frequency_hz = 867200000
bandwidth_hz = 125000
spreading_factor = 7
tx_power_dbm = 14

[downlink]
retry_initial_s = 20
retry_max_s = 60

[simulation]
time_scale = ${TIME_SCALE}
`,
  );
  await ok(
    run(
      ['gateway', 'enroll', '--url', cp.cp.httpUrl, '--token-file', '-', '--config', join(dir, 'gateway.toml')],
      `${cp.cp.issueEnrollToken()}\n`,
    ),
  );
  gateway = run(['gateway', 'run', '--config', join(dir, 'gateway.toml'), '--json']);
  await gateway.waitForJson();

  // Three agents that have never had IP: identity made here, manifest registered with the control plane (what an
  // operator does with the enroll token), enrollment over LoRa through the gateway, then the daemon.
  for (let i = 1; i <= AGENTS; i++) {
    const name = `sensor-${i}`;
    const state = join(dir, name);
    mkdirSync(state, { mode: 0o700 });
    const seed = new Uint8Array(32).fill(i);
    writeFileAtomic(join(state, 'identity.key'), seed, { mode: 0o600 });
    const did = didKeyFromEd25519(ed25519KeyPair(seed).publicKey);
    const config = join(dir, `${name}.toml`);
    const hour = new Date().getUTCHours();
    writeFileSync(
      config,
      `[agent]
name = "${name}"
log_level = "debug"

[paths]
state_dir = "${name}"
socket = "${name}/agent.sock"

[mcp]
http_enabled = false

[metrics]
enabled = false

[uplink]
mode = "lora"

[lora]
time_scale = ${TIME_SCALE}
ack_timeout_s = 40
frames_per_delivery = 2

${trust.toml}

[[streams]]
name = "env.temperature"
unit = "Cel"
priority = 5
source = { kind = "ingest" }

[[tools]]
name = "env.sample"
description = "Read the sensor now."
safety_class = "read_only"
output_schema = { type = "object", properties = { celsius = { type = "number" } }, required = ["celsius"] }
[tools.exec]
argv = ["/bin/echo", "{{\\"celsius\\": 21.5}}"]
output = "json"

[[tools]]
name = "gate.open"
description = "Open the field gate (physical: needs a quorum)."
safety_class = "physical_actuation"
input_schema = { type = "object", properties = { seconds = { type = "integer", minimum = 1, maximum = 60 } }, required = ["seconds"], additionalProperties = false }
output_schema = { type = "object", properties = { opened = { type = "boolean" } }, required = ["opened"] }
[tools.exec]
argv = ["/bin/echo", "{{\\"opened\\": true}}"]
output = "json"

${rnode(air.radios[i]!.path)}`.replace(/from_hour = \d+/, `from_hour = ${hour}`),
    );
    const text = readFileSync(config, 'utf8');
    const parsed = parseConfig(text, config);
    const built = buildAgentManifest({
      config: parsed,
      configFile: config,
      configText: text,
      deviceId: did,
      agentVersion: buildInfo().version,
      builtins: builtinTools({
        systemInfo: { read: async () => ({}) } as never,
        recent: createRecentTelemetry(16),
      }),
    });
    const tools = built.manifest.tools.map((t) => t.name);
    cp.registerManifest(built.hash.slice('sha256:'.length), {
      streams: (built.manifest.streams ?? []).map((s) => s.name),
      tools,
    });
    agents.push({ name, did, config, socket: join(state, 'agent.sock'), manifestTools: tools });
  }
  await until(async () => (await gatewayStatus()).link.summary === 'ok', 30_000, 'gateway up');
  await Promise.all(
    agents.map((a) =>
      ok(
        run(
          ['agent', 'lora-enroll', '--config', a.config, '--token-file', '-', '--timeout-s', '90'],
          `${cp.issueEnrollToken()}\n`,
        ),
      ),
    ),
  );
  for (const a of agents) {
    a.proc = run(['agent', 'run', '--config', a.config]);
  }
  await until(
    () =>
      agents.every((a) => a.proc!.stderr().includes('agent.started') && a.proc!.stderr().includes('state=connected')),
    30_000,
    'agents started with their LoRa uplink connected',
  );
});

after(async () => {
  for (const p of processes.reverse()) await p.stop('SIGTERM').catch(() => undefined);
  await proxy?.close();
  await cp?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('a LoRa site: 3 LoRa-only agents, a gateway with a flapping backhaul, 20 % frame loss', () => {
  it('stores every telemetry record exactly once, through outages longer than the send interval', async () => {
    const pushed = new Map<string, Map<number, number>>();
    const flaps = (async () => {
      for (let k = 0; k < 3; k++) {
        await new Promise((r) => setTimeout(r, 4_000));
        proxy.down();
        await new Promise((r) => setTimeout(r, 6_000));
        proxy.up();
      }
    })();
    // Each agent gets a reading every 1.5 s (30 s of device time), across the outages.
    for (let n = 0; n < RECORDS_PER_AGENT / 4; n++) {
      await Promise.all(
        agents.map(async (a, i) => {
          const client = createLocalApiClient({ socketPath: a.socket });
          const values = [0, 1, 2, 3].map((k) => Math.round((20 + i + (n * 4 + k) / 10) * 10) / 10);
          const r = await client.post<{ seqs: number[] }>('/v1/telemetry', {
            records: values.map((value) => ({ stream: 'env.temperature', value })),
          });
          const m = pushed.get(a.did) ?? new Map<number, number>();
          r.seqs.forEach((s, k) => {
            m.set(s, values[k]!);
          });
          pushed.set(a.did, m);
        }),
      );
      await new Promise((r) => setTimeout(r, 1_500));
    }
    await flaps;
    await until(
      () => agents.every((a) => (cp.telemetry.get(a.did)?.size ?? 0) >= pushed.get(a.did)!.size),
      120_000,
      'every record at the control plane',
    );
    for (const a of agents) {
      const stored = cp.telemetry.get(a.did)!;
      assert.deepEqual(
        [...stored.keys()].sort((x, y) => x - y),
        [...pushed.get(a.did)!.keys()].sort((x, y) => x - y),
      );
      for (const [seq, value] of pushed.get(a.did)!) {
        assert.equal(stored.get(seq)!.value, value);
        assert.equal(stored.get(seq)!.stream, 'env.temperature');
      }
    }
    const sessions = (await gatewayStatus()).link.sessions;
    assert.ok(
      sessions >= 4,
      `the gateway reconnected after each outage (${sessions} sessions, ${proxy.connections()} relayed)`,
    );
  });

  it('carries a read_only call to a LoRa-only device and its result back', async () => {
    const a = agents[0]!;
    const device = cp.device(a.did)!;
    const token = (
      await ok(run(['dev', 'token', '--dir', join(dir, 'trust'), '--device', a.did, '--ttl', '900']))
    ).trim();
    const result = await cp.relay.callTool(
      device,
      { callId: 'cmVhZC1vbmx5LWNhbGwtMDAx', tool: { index: a.manifestTools.indexOf('env.sample') }, token, args: {} },
      { timeoutMs: 60_000 },
    );
    assert.equal(result.status, 'ok', JSON.stringify(result));
    assert.deepEqual(result.value, { celsius: 21.5 });
  });

  it('runs a physical_actuation call only with the quorum, verified on the device', async () => {
    const a = agents[1]!;
    const device = cp.device(a.did)!;
    const tool = { index: a.manifestTools.indexOf('gate.open') };
    const token = () => ok(run(['dev', 'token', '--dir', join(dir, 'trust'), '--device', a.did, '--ttl', '900']));
    const denied = await cp.relay
      .callTool(
        device,
        { callId: 'cGh5c2ljYWwtbm8tcXVvcnVt', tool, token: (await token()).trim(), args: { seconds: 5 } },
        { timeoutMs: 60_000 },
      )
      .catch((e) => {
        console.log('AGENT LOG', a.proc!.stderr().split('\n').slice(-60).join('\n'));
        console.log('RELAY', JSON.stringify(cp.relay.stats()));
        throw e;
      });
    assert.equal(denied.status, 'denied');
    assert.equal((denied.value as { code: string }).code, 'QUORUM_REQUIRED');
    const quorumText = (
      await ok(
        run([
          'dev',
          'approve',
          '--dir',
          join(dir, 'trust'),
          '--device',
          a.did,
          '--tool',
          'gate.open',
          '--args',
          '{"seconds":5}',
        ]),
      )
    ).trim();
    const policy = parseQuorumPolicy(JSON.parse(readFileSync(policyFile, 'utf8')));
    const allowed = await cp.relay
      .callTool(
        device,
        {
          callId: 'cGh5c2ljYWwtd2l0aC1xdW9ydW0',
          tool,
          token: (await token()).trim(),
          quorum: toLoraQuorum(quorumTokenFromText(quorumText), policy),
          args: { seconds: 5 },
        },
        { timeoutMs: 60_000 },
      )
      .catch((e) => {
        console.log(
          a
            .proc!.stderr()
            .split('\n')
            .filter((l) => /lora|tool|gate|uplink/.test(l))
            .slice(-40)
            .join('\n'),
        );
        console.log(JSON.stringify(cp.relay.stats()));
        throw e;
      });
    assert.equal(allowed.status, 'ok', JSON.stringify(allowed));
    assert.deepEqual(allowed.value, { opened: true });
  });

  it('keeps every transmitter within its duty-cycle budget, by the air’s own accounting', async () => {
    const { air: stats } = await simStats();
    const ports = Object.values(stats.ports);
    assert.equal(ports.length, AGENTS + 1);
    for (const p of ports) {
      assert.ok(p.tx.frames > 0, `${p.id} transmitted`);
      assert.equal(p.tx.refusedDutyCycle, 0, `${p.id} never tried to exceed its budget`);
      assert.ok(p.budgetUsed <= 1, `${p.id} used ${(p.budgetUsed * 100).toFixed(1)} % of its budget`);
    }
    assert.ok(stats.lost > 0, 'the air did drop frames');
  });

  it('loses nothing the gateway stored when it is killed with SIGKILL mid-stream', async () => {
    proxy.down();
    const a = agents[2]!;
    const client = createLocalApiClient({ socketPath: a.socket });
    const r = await client.post<{ seqs: number[] }>('/v1/telemetry', {
      records: [30.1, 30.2, 30.3].map((value) => ({ stream: 'env.temperature', value })),
    });
    await until(async () => (await gatewayStatus()).uplink.frames > 0, 60_000, 'frames stored at the gateway');
    assert.equal(await gateway.stop('SIGKILL'), 'SIGKILL');
    gateway = run(['gateway', 'run', '--config', join(dir, 'gateway.toml'), '--json']);
    await gateway.waitForJson();
    const after = await gatewayStatus();
    assert.ok(after.uplink.frames > 0, 'the stored frames survived the kill');
    proxy.up();
    await until(() => r.seqs.every((s) => cp.telemetry.get(a.did)?.has(s)), 120_000, 'the records after the restart');
    assert.ok(cp.counts.duplicates >= 0);
  });
});
