// A remote site end to end, with real processes on emulated radios: `outpost radio sim` hosts one simulated air
// (20 % frame loss, time 20× faster) for a gateway (`outpost gateway run`) and three LoRa-only agents
// (`outpost agent run` with [uplink] mode = "lora"), all tied to the reference control plane (`outpost controlplane
// run`). The agents enrolled over IP once, as on the bench before deployment; from then on everything they send or
// receive goes over the air. The gateway reaches the control plane through a backhaul that goes down several times
// for longer than the agents' send interval.
// Checked: every telemetry record is stored by the control plane exactly once; a read_only call from an MCP client
// reaches a LoRa-only device and its result returns; a physical_actuation call is held for approval and runs only
// with the quorum, verified on the device; the air's own accounting shows no transmitter over its duty-cycle budget;
// a gateway killed with SIGKILL loses nothing it stored.

import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { createLocalApiClient } from '../../agent/local-api/client.ts';
import type { RadioSimInfo } from '../../cli/radio-sim.ts';
import type { AirStats } from '../../firmware-bridge/emulator/simulated-air.ts';
import type { GatewayStatus } from '../../gateway/gateway.ts';
import { type BackhaulProxy, startBackhaulProxy } from '../support/backhaul-proxy.ts';
import { type CliProcess, startCli } from '../support/cli-process.ts';
import { freePort } from '../support/controlplane.ts';
import { type ControlPlaneProcess, startControlPlaneProcess } from '../support/controlplane-process.ts';

const TIME_SCALE = 20;
const AGENTS = 3;
const RECORDS_PER_AGENT = 36;
/** A call over LoRa waits for the airtime law as well as the tool (the MCP client's default is 60 s). */
const LORA_CALL = { timeout: 180_000 };
const dir = mkdtempSync(join(tmpdir(), 'outpost-lora-site-'));
const cpDir = join(dir, 'cp');
const processes: CliProcess[] = [];
let sim: CliProcess;
let air: RadioSimInfo;
let cp: ControlPlaneProcess;
let cpUrl = '';
let tid = '';
let proxy: BackhaulProxy;
let gateway: CliProcess;
let mcp: Client;
const agents: { name: string; config: string; socket: string; did: string; proc?: CliProcess }[] = [];

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

async function okJson<T = Record<string, unknown>>(args: string[], input?: string): Promise<T> {
  return JSON.parse(await ok(run(args, input))) as T;
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
  return okJson<GatewayStatus>(['gateway', 'status', '--config', join(dir, 'gateway.toml'), '--json']);
}

/** (seq → value) of the control plane's stored telemetry of one device. */
async function stored(device: string): Promise<Map<number, unknown>> {
  const r = await okJson<{ records: { seq: number; value: unknown; stream: string }[] }>([
    'controlplane',
    'telemetry',
    '--state-dir',
    cpDir,
    '--device',
    device,
    '--limit',
    '1000',
    '--json',
  ]);
  return new Map(r.records.map((x) => [x.seq, x.value]));
}

async function until(fn: () => boolean | Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await fn())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

/** agent.toml of a LoRa-only sensor on the radio at `radioPath`. */
function agentToml(name: string, radioPath: string): string {
  return `[agent]
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

${rnode(radioPath)}`;
}

async function enrollToken(role: 'device' | 'gateway'): Promise<string> {
  const file = join(dir, `enroll-${role}-${Math.random().toString(36).slice(2)}.token`);
  await okJson(['controlplane', 'enroll-token', '--state-dir', cpDir, '--role', role, '--out', file, '--json']);
  return readFileSync(file, 'utf8');
}

before(async () => {
  // The air: one gateway radio, one radio per agent, one for the device that enrolls over LoRa.
  sim = run([
    'radio',
    'sim',
    '--rnode',
    String(AGENTS + 2), // and one for a device that enrolls over the air
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

  // The control plane, with two approvers for physical actuation before any device enrolls (the policy travels
  // with the enrollment: a LoRa device learns it there).
  const port = await freePort();
  cpUrl = `http://127.0.0.1:${port}`;
  const init = await okJson<{ tenant: { tid: string } }>([
    'controlplane',
    'init',
    '--state-dir',
    cpDir,
    '--listen',
    `127.0.0.1:${port}`,
    '--tenant',
    'ridge',
    '--json',
  ]);
  tid = init.tenant.tid;
  cp = startControlPlaneProcess(cpDir, { OUTPOST_LINK_HEARTBEAT_MS: '2000' });
  await cp.ready;
  for (const who of ['ann', 'bob']) {
    const k = await okJson<{ publicKey: string }>(['approver', 'keygen', '--out', join(dir, `${who}.key`), '--json']);
    await okJson([
      'controlplane',
      'policy',
      'add-approver',
      who,
      `--public-key=${k.publicKey}`,
      '--state-dir',
      cpDir,
      '--json',
    ]);
  }
  proxy = await startBackhaulProxy(port);

  // The gateway enrolls with the control plane, then runs on the first radio with its backhaul through the proxy.
  writeFileSync(
    join(dir, 'gateway.toml'),
    `[gateway]
name = "site-gw"
state_dir = "gw-state"

[upstream]
url = "ws://127.0.0.1:${proxy.port}/v1/hub/${tid}"
tenant = "${tid}"
http_url = "${cpUrl}"
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
      ['gateway', 'enroll', '--url', cpUrl, '--token-file', '-', '--config', join(dir, 'gateway.toml')],
      await enrollToken('gateway'),
    ),
  );
  gateway = run(['gateway', 'run', '--config', join(dir, 'gateway.toml'), '--json']);
  await gateway.waitForJson();

  // Three agents: enrolled over IP once (identity, X25519 key, manifest, trust), then LoRa only.
  for (let i = 1; i <= AGENTS; i++) {
    const name = `sensor-${i}`;
    mkdirSync(join(dir, name), { mode: 0o700 });
    const config = join(dir, `${name}.toml`);
    writeFileSync(config, agentToml(name, air.radios[i]!.path));
    const enrolled = await okJson<{ device: string }>(
      ['enroll', '--url', cpUrl, '--token-file', '-', '--config', config, '--json'],
      await enrollToken('device'),
    );
    agents.push({ name, config, did: enrolled.device, socket: join(dir, name, 'agent.sock') });
  }
  await until(async () => (await gatewayStatus()).link.summary === 'ok', 30_000, 'gateway up');
  for (const a of agents) a.proc = run(['agent', 'run', '--config', a.config]);
  await until(
    () =>
      agents.every((a) => a.proc!.stderr().includes('agent.started') && a.proc!.stderr().includes('state=connected')),
    30_000,
    'agents started with their LoRa uplink connected',
  );

  // An MCP client of role actuator, as an LLM agent would connect.
  const tokenFile = join(dir, 'alice.token');
  await okJson([
    'controlplane',
    'token',
    'mint',
    '--state-dir',
    cpDir,
    '--role',
    'actuator',
    '--subject',
    'alice',
    '--out',
    tokenFile,
    '--json',
  ]);
  mcp = new Client({ name: 'lora-site', version: '1' });
  await mcp.connect(
    new StreamableHTTPClientTransport(new URL(`${cpUrl}/mcp`), {
      requestInit: { headers: { authorization: `Bearer ${readFileSync(tokenFile, 'utf8').trim()}` } },
    }),
  );
});

after(async () => {
  await mcp?.close().catch(() => undefined);
  for (const p of processes.reverse()) await p.stop('SIGTERM').catch(() => undefined);
  await proxy?.close();
  await cp?.stop();
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
    const got = new Map<string, Map<number, unknown>>();
    await until(
      async () => {
        for (const a of agents) got.set(a.did, await stored(a.did));
        return agents.every((a) => got.get(a.did)!.size >= pushed.get(a.did)!.size);
      },
      180_000,
      'every record at the control plane',
    );
    for (const a of agents) {
      const s = got.get(a.did)!;
      // The store holds each (device, seq) once by construction; exactly the pushed seqs, with their values.
      assert.deepEqual(
        [...s.keys()].sort((x, y) => x - y),
        [...pushed.get(a.did)!.keys()].sort((x, y) => x - y),
      );
      for (const [seq, value] of pushed.get(a.did)!) assert.equal(s.get(seq), value);
    }
    const sessions = (await gatewayStatus()).link.sessions;
    assert.ok(
      sessions >= 4,
      `the gateway reconnected after each outage (${sessions} sessions, ${proxy.connections()} relayed)`,
    );
  });

  it('carries a read_only MCP call to a LoRa-only device and its result back', async () => {
    // The operator sees the device as reachable through the gateway, though it has no WSS session.
    const listed = await okJson<{ devices: { name: string; online: boolean; lora: { reachable: boolean } | null }[] }>([
      'controlplane',
      'devices',
      '--state-dir',
      cpDir,
      '--json',
    ]);
    const s1 = listed.devices.find((d) => d.name === 'sensor-1')!;
    assert.equal(s1.online, false);
    assert.equal(s1.lora?.reachable, true);
    const names = (await mcp.listTools()).tools.map((t) => t.name);
    assert.ok(names.includes('sensor-1.env.sample'), names.join());
    const r = (await mcp.callTool(
      { name: 'sensor-1.env.sample', arguments: {} },
      undefined,
      LORA_CALL,
    )) as CallToolResult;
    assert.equal(r.isError, undefined, JSON.stringify(r));
    assert.deepEqual(r.structuredContent, { celsius: 21.5 });
  });

  it('holds a physical_actuation call for approval and runs it over LoRa only with the quorum', async () => {
    const args = { seconds: 5 };
    const held = await mcp.callTool({ name: 'sensor-2.gate.open', arguments: args }, undefined, LORA_CALL);
    assert.equal(held.isError, true);
    const requestId = (held._meta as Record<string, { requestId: string }>)['outpost/approval']!.requestId;
    // One approval is not a quorum.
    await okJson([
      'approve',
      requestId,
      '--approver',
      'ann',
      '--key-file',
      join(dir, 'ann.key'),
      '--state-dir',
      cpDir,
      '--json',
    ]);
    const stillHeld = await mcp.callTool({ name: 'sensor-2.gate.open', arguments: args }, undefined, LORA_CALL);
    assert.equal(stillHeld.isError, true);
    await okJson([
      'approve',
      requestId,
      '--approver',
      'bob',
      '--key-file',
      join(dir, 'bob.key'),
      '--state-dir',
      cpDir,
      '--json',
    ]);
    const opened = (await mcp.callTool(
      { name: 'sensor-2.gate.open', arguments: args },
      undefined,
      LORA_CALL,
    )) as CallToolResult;
    assert.equal(opened.isError, undefined, JSON.stringify(opened));
    assert.deepEqual(opened.structuredContent, { opened: true });
  });

  it('keeps a LoRa-only device’s trust current: a rotated signing key and a tightened policy arrive over the air', async () => {
    // A new active signing key: calls are now signed with a key the devices did not get at enrollment.
    const rotated = await okJson<{ jwks: { keys: { kid: string; status: string }[] } }>([
      'controlplane',
      'keys',
      'rotate',
      '--state-dir',
      cpDir,
      '--json',
    ]);
    const active = rotated.jwks.keys.find((k) => k.status === 'active')!.kid;
    // A tightening the devices install without anyone's endorsement: a rule for the gate's tools.
    await okJson([
      'controlplane',
      'policy',
      'set-rule',
      '--tool',
      'gate.*',
      '--k',
      '2',
      '--state-dir',
      cpDir,
      '--json',
    ]);
    const trust = (file: string) => {
      try {
        return readFileSync(join(dir, 'sensor-1', 'trust', file), 'utf8');
      } catch {
        return '';
      }
    };
    assert.ok(!trust('jwks.json').includes(active), 'sensor-1 did not have the new key yet');
    // The first call after the rotation passes the device's gate: the key goes ahead of the call.
    const r = (await mcp.callTool(
      { name: 'sensor-1.env.sample', arguments: {} },
      undefined,
      LORA_CALL,
    )) as CallToolResult;
    assert.equal(r.isError, undefined, JSON.stringify(r));
    assert.deepEqual(r.structuredContent, { celsius: 21.5 });
    assert.ok(trust('jwks.json').includes(active), 'the new key is installed');
    // The policy went in the same run; its frames may still be on their way (20 % loss).
    await until(() => trust('approval-policy.json').includes('gate.*'), 120_000, 'the tightened policy on sensor-1');
    // A device that is only heard (no call) is brought up to date too: the next policy change arrives with its next
    // reading.
    await okJson(['controlplane', 'policy', 'set-rule', '--tool', 'env.*', '--k', '2', '--state-dir', cpDir, '--json']);
    const sensor3 = agents[2]!;
    await createLocalApiClient({ socketPath: sensor3.socket }).post('/v1/telemetry', {
      records: [{ stream: 'env.temperature', value: 22.2 }],
    });
    await until(
      () => readFileSync(join(dir, sensor3.name, 'trust', 'approval-policy.json'), 'utf8').includes('env.*'),
      120_000,
      'the policy on sensor-3 after its reading was heard',
    );
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
    await until(
      async () => {
        const s = await stored(a.did);
        return r.seqs.every((q) => s.has(q));
      },
      120_000,
      'the records after the restart',
    );
  });
  it('drops a revoked device’s frames at the gateway once the control plane revoked it', async () => {
    const a = agents[0]!;
    await okJson(['controlplane', 'revoke', a.name, '--reason', 'stolen', '--state-dir', cpDir, '--json']);
    // The control plane republishes the served list; the gateway learns the standing before the next frame.
    await until(
      async () => (await gatewayStatus()).devices.revoked === 1,
      30_000,
      'the gateway told of the revocation',
    );
    const before = (await stored(a.did)).size;
    const client = createLocalApiClient({ socketPath: a.socket });
    await client.post('/v1/telemetry', {
      records: [41.1, 41.2].map((value) => ({ stream: 'env.temperature', value })),
    });
    await until(
      async () => ((await gatewayStatus()).radios[0]!.frames.dropped as Record<string, number>).revoked! > 0,
      60_000,
      'a frame of the revoked device dropped at the gateway',
    );
    assert.equal((await stored(a.did)).size, before, 'nothing of the revoked device was stored after the revocation');
  });

  it('enrolls a device that never had IP over LoRa, its manifest registered with the enroll token', async () => {
    const name = 'sensor-4';
    mkdirSync(join(dir, name), { mode: 0o700 });
    const config = join(dir, `${name}.toml`);
    writeFileSync(config, agentToml(name, air.radios[AGENTS + 1]!.path));
    // On the device: its manifest, carried to the operator (here: a file).
    const manifestFile = join(dir, `${name}.manifest.json`);
    const m = await okJson<{ device: string; hash: string }>([
      'agent',
      'manifest',
      '--config',
      config,
      '--out',
      manifestFile,
      '--json',
    ]);
    // At the control plane: a token with that manifest registered.
    const tokenFile = join(dir, `${name}.token`);
    const minted = await okJson<{ lora: { manifestHash: string; device: string } }>([
      'controlplane',
      'enroll-token',
      '--state-dir',
      cpDir,
      '--manifest',
      manifestFile,
      '--out',
      tokenFile,
      '--json',
    ]);
    assert.deepEqual(minted.lora, { manifestHash: m.hash, device: m.device });
    // Back on the device: the token typed in, the request over the air, through the gateway.
    const enrolled = await okJson<{ id: string; tid: string }>(
      // Device time runs TIME_SCALE× faster on the simulated air: 2400 s of it are 2 min here.
      ['agent', 'lora-enroll', '--token-file', '-', '--config', config, '--timeout-s', '2400', '--json'],
      readFileSync(tokenFile, 'utf8'),
    );
    assert.deepEqual(enrolled, { id: m.device, tid, manifestHash: m.hash });
    const listed = await okJson<{ devices: { name: string; device: string; lora: { reachable: boolean } | null }[] }>([
      'controlplane',
      'devices',
      '--state-dir',
      cpDir,
      '--json',
    ]);
    const s4 = listed.devices.find((d) => d.name === name);
    assert.equal(s4?.device, m.device);
    assert.equal(s4?.lora?.reachable, true);
    // It runs on LoRa from here: its telemetry is stored, and a call reaches it.
    const proc = run(['agent', 'run', '--config', config]);
    await until(() => proc.stderr().includes('state=connected'), 60_000, 'sensor-4 connected over LoRa');
    const r = await createLocalApiClient({ socketPath: join(dir, name, 'agent.sock') }).post<{ seqs: number[] }>(
      '/v1/telemetry',
      { records: [{ stream: 'env.temperature', value: 19.5 }] },
    );
    await until(
      async () => {
        const st = await stored(m.device);
        return r.seqs.every((q) => st.has(q));
      },
      120_000,
      'sensor-4 telemetry stored',
    );
    const called = (await mcp.callTool(
      { name: 'sensor-4.env.sample', arguments: {} },
      undefined,
      LORA_CALL,
    )) as CallToolResult;
    assert.equal(called.isError, undefined, JSON.stringify(called));
    await proc.stop('SIGTERM');
  });
});
