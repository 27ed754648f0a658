// The daemon in-process with a fake clock: real SQLite, real programs, real tokens and quorum tokens from a
// dev trust bundle. Every gate rule is exercised end to end and its audit entry checked.

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { IngestResponse, StatusView, TailResponse, ToolCallResponse } from '../../agent/api-types.ts';
import { parseConfig } from '../../agent/config.ts';
import { type Agent, createAgent } from '../../agent/daemon.ts';
import { devApprove, fileDevKeyStore, initDevTrust, mintDevToken } from '../../agent/dev-trust.ts';
import { createLocalApiClient, type LocalApiClient } from '../../agent/local-api/client.ts';
import { resolveAgentPaths } from '../../agent/paths.ts';
import type { SystemInfoSource } from '../../agent/system-info.ts';
import { FakeClock } from '../../protocol/clock.ts';
import { isOutpostError } from '../../protocol/errors.ts';
import { publishedJwk } from '../../protocol/jwks.ts';
import { silentLogger } from '../../protocol/log.ts';
import { MetricsRegistry } from '../../protocol/metrics.ts';
import { ed25519KeyPair } from '../../protocol/signing.ts';
import { newJti, signRuntimeToken } from '../../protocol/tokens.ts';

const dir = mkdtempSync(join(tmpdir(), 'outpost-daemon-'));
const trustDir = join(dir, 'trust');
const keys = fileDevKeyStore();
const trust = initDevTrust(keys, { dir: trustDir, approvers: ['alice', 'bob', 'carol'], k: 2 });
// Noon UTC on a weekday: inside the valve's allowed hours.
const clock = new FakeClock(Date.UTC(2026, 5, 1, 12, 0));

writeFileSync(
  join(dir, 'fanctl'),
  '#!/bin/sh\nprev=$(cat fan.state 2>/dev/null || echo 0)\necho "$1" > fan.state\nprintf \'{"speed_pct":%s,"previous_speed_pct":%s}\\n\' "$1" "$prev"\n',
);
chmodSync(join(dir, 'fanctl'), 0o755);

const configText = `
[agent]
name = "test-node"
[paths]
state_dir = "state"
[mcp]
http_enabled = false
[metrics]
port = 0
[trust]
issuer = "${trust.issuer}"
jwks = "trust/jwks.json"
approval_policy = "trust/approval-policy.json"

[[streams]]
name = "door.open"
unit = "1"
type = "boolean"
period_s = 3600
source = { kind = "ingest" }

[[streams]]
name = "room.temperature"
unit = "Cel"
period_s = 3600
ttl_s = 3600
source = { kind = "ingest" }

[[tools]]
name = "room.read"
description = "Reads the room."
safety_class = "read_only"
output_schema = { type = "object", properties = { t = { type = "number" } }, required = ["t"] }
[tools.exec]
argv = ["/bin/echo", "{{\\"t\\": 21.5}}"]
output = "json"

[[tools]]
name = "room.fan.set"
description = "Sets the fan."
safety_class = "reversible"
rate_limit = { max_calls = 3, per_s = 60 }
input_schema = { type = "object", properties = { speed_pct = { type = "integer", minimum = 0, maximum = 100 } }, required = ["speed_pct"], additionalProperties = false }
output_schema = { type = "object", properties = { speed_pct = { type = "integer" }, previous_speed_pct = { type = "integer" } }, required = ["speed_pct", "previous_speed_pct"] }
[tools.exec]
argv = ["./fanctl", "{speed_pct}"]
output = "json"
[tools.undo]
tool = "room.fan.set"
args = { speed_pct = { from = "result", pointer = "/previous_speed_pct" } }

[[tools]]
name = "room.valve.open"
description = "Opens the valve."
safety_class = "physical_actuation"
min_interval_s = 60
allowed_hours = { from_hour = 6, to_hour = 20 }
exclusive_with = { tools = ["room.mister.run"], window_s = 300 }
input_schema = { type = "object", properties = { zone = { type = "string", enum = ["a", "b"] } }, required = ["zone"], additionalProperties = false }
[tools.exec]
argv = ["/bin/echo", "opened {zone}"]

[[tools]]
name = "room.mister.run"
description = "Runs the mister."
safety_class = "physical_actuation"
[tools.exec]
argv = ["/bin/echo", "misting"]
`;

const systemInfo: SystemInfoSource = {
  info: async () => {
    throw new Error('not used');
  },
  sample: async () => ({
    cpu_temp_c: 50,
    load_1m: 0.1,
    load_5m: 0.1,
    mem_used_ratio: 0.5,
    disk_used_ratio: 0.5,
    uptime_s: 1,
    throttled: false,
  }),
};

function makeAgent(text = configText, metrics = new MetricsRegistry()): { agent: Agent; metrics: MetricsRegistry } {
  const configFile = join(dir, 'agent.toml');
  writeFileSync(configFile, text);
  const config = parseConfig(text, configFile);
  const paths = resolveAgentPaths(config, configFile, {}, dir);
  const agent = createAgent({
    config,
    configText: text,
    paths,
    env: {},
    clock,
    log: silentLogger,
    metrics,
    version: '0.1.0',
    systemInfo,
  });
  return { agent, metrics };
}

let agent: Agent;
let metrics: MetricsRegistry;
let api: LocalApiClient;
let device: string;

before(async () => {
  ({ agent, metrics } = makeAgent());
  await agent.start();
  api = createLocalApiClient({ socketPath: join(dir, 'state', 'agent.sock') });
  device = agent.status().did;
});
after(async () => {
  await agent.stop();
  rmSync(dir, { recursive: true, force: true });
});

const token = (
  o: { role?: 'actuator' | 'operator' | 'viewer'; tools?: string[]; device?: string; ttlS?: number } = {},
) =>
  mintDevToken(keys, {
    dir: trustDir,
    device: o.device ?? device,
    role: o.role ?? 'actuator',
    tools: o.tools ?? ['*'],
    ttlS: o.ttlS ?? 300,
    subject: 'test:ada',
    audience: 'outpost-device',
    clock,
  });

const quorum = (tool: string, args: unknown, approvers?: string[]) =>
  devApprove(keys, { dir: trustDir, device, tool, args, ttlS: 600, clock, ...(approvers ? { approvers } : {}) }).token;

const call = (body: Record<string, unknown>) => api.post<ToolCallResponse>('/v1/tools/call', body);

async function denied(body: Record<string, unknown>, reason: string): Promise<string> {
  let callId = '';
  await assert.rejects(call(body), (e) => {
    assert.ok(isOutpostError(e, 'GATE_DENIED'), String(e));
    assert.equal(e.details.reason, reason, e.message);
    callId = String(e.details.call_id);
    return true;
  });
  return callId;
}

async function auditLines(): Promise<Record<string, unknown>[]> {
  let text = '';
  await api.stream('/v1/audit', (c) => {
    text += c;
  });
  return text
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

describe('agent daemon (in process)', () => {
  it('serves status and identity and an allowed read_only call without a token', async () => {
    const s = await api.get<StatusView>('/v1/status');
    assert.equal(s.status.state, 'ok');
    assert.equal(s.status.link, 'off_grid');
    assert.equal(s.trust.tenant_id, trust.tenantId);
    const r = await call({ tool: 'room.read' });
    assert.deepEqual(r.result, { t: 21.5 });
    assert.equal(r.decision.principal, 'local:local_api');
  });

  it('runs a reversible call with a token, records its undo, and undoes it once', async () => {
    const first = await call({ tool: 'room.fan.set', args: { speed_pct: 40 }, token: await token() });
    assert.equal(first.undoable, true);
    const undo = await api.post<ToolCallResponse>('/v1/tools/undo', { call_id: first.call_id, token: await token() });
    assert.deepEqual(undo.result, { speed_pct: 0, previous_speed_pct: 40 });
    assert.equal(undo.undo_of, first.call_id);
    await assert.rejects(api.post('/v1/tools/undo', { call_id: first.call_id, token: await token() }), (e) =>
      isOutpostError(e, 'UNDO_ALREADY_DONE'),
    );
    await assert.rejects(api.post('/v1/tools/undo', { call_id: 'no-such-call-0000' }), (e) =>
      isOutpostError(e, 'CALL_NOT_FOUND'),
    );
    const audit = await auditLines();
    const result = audit.find(
      (e) => e.kind === 'tool.result' && (e.details as { call_id?: string }).call_id === first.call_id,
    );
    assert.deepEqual((result!.details as { undo: unknown }).undo, { tool: 'room.fan.set', args: { speed_pct: 0 } });
  });

  it('refuses a physical_actuation call without quorum and allows it with one (2 of 3)', async () => {
    const args = { zone: 'a' };
    await denied({ tool: 'room.valve.open', args, token: await token() }, 'QUORUM_REQUIRED');
    const r = await call({
      tool: 'room.valve.open',
      args,
      token: await token(),
      quorum: quorum('room.valve.open', args),
    });
    assert.equal(r.result, 'opened a');
    clock.advance(61_000);
  });

  describe('each gate rule denies, and the denial is audited', () => {
    it('forged token (signed by another key)', async () => {
      const other = ed25519KeyPair(new Uint8Array(32).fill(7));
      const jwk = publishedJwk(other.publicKey, 'active');
      const nowS = Math.floor(clock.nowMs() / 1000);
      const forged = await signRuntimeToken(
        {
          iss: trust.issuer,
          aud: 'outpost-device',
          sub: 'mallory',
          tid: trust.tenantId,
          role: 'actuator',
          scope: `${trust.tenantId}/*/*:call`,
          iat: nowS,
          nbf: nowS,
          exp: nowS + 60,
          jti: newJti(),
        },
        { kid: jwk.kid, ed25519Seed: other.seed },
      );
      const callId = await denied({ tool: 'room.fan.set', args: { speed_pct: 1 }, token: forged }, 'TOKEN_INVALID');
      const entry = (await auditLines()).find((e) => (e.details as { call_id?: string }).call_id === callId);
      assert.equal(entry?.decision, 'deny');
      assert.equal(entry?.reason, 'TOKEN_INVALID');
    });
    it('tampered token', async () => {
      const t = await token();
      const tampered = `${t.slice(0, -4)}${t.slice(-4) === 'AAAA' ? 'BBBB' : 'AAAA'}`;
      await denied({ tool: 'room.fan.set', args: { speed_pct: 1 }, token: tampered }, 'TOKEN_INVALID');
    });
    it('expired token', async () => {
      const t = await token({ ttlS: 60 });
      clock.advance(10 * 60_000);
      await denied({ tool: 'room.fan.set', args: { speed_pct: 1 }, token: t }, 'TOKEN_EXPIRED');
    });
    it('replayed token (jti already spent)', async () => {
      const t = await token();
      await call({ tool: 'room.read', token: t });
      await denied({ tool: 'room.fan.set', args: { speed_pct: 1 }, token: t }, 'TOKEN_REPLAYED');
    });
    it('token for another tenant', async () => {
      const seed = keys.readKey(join(trustDir, 'issuer.key'));
      const nowS = Math.floor(clock.nowMs() / 1000);
      const other = '00000000-0000-5000-8000-000000000000';
      const t = await signRuntimeToken(
        {
          iss: trust.issuer,
          aud: 'outpost-device',
          sub: 'x',
          tid: other,
          role: 'actuator',
          scope: `${other}/*/*:call`,
          iat: nowS,
          nbf: nowS,
          exp: nowS + 60,
          jti: newJti(),
        },
        { kid: trust.kid, ed25519Seed: seed },
      );
      await denied({ tool: 'room.fan.set', args: { speed_pct: 1 }, token: t }, 'TENANT_MISMATCH');
    });
    it('token bound to another device', async () => {
      const t = await token({ device: 'did:key:z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK' });
      await denied({ tool: 'room.fan.set', args: { speed_pct: 1 }, token: t }, 'DEVICE_MISMATCH');
    });
    it('tool out of the token scope', async () => {
      await denied(
        { tool: 'room.fan.set', args: { speed_pct: 1 }, token: await token({ tools: ['room.read'] }) },
        'SCOPE_DENIED',
      );
    });
    it('class not allowed for the role', async () => {
      const args = { zone: 'a' };
      await denied(
        {
          tool: 'room.valve.open',
          args,
          token: await token({ role: 'operator' }),
          quorum: quorum('room.valve.open', args),
        },
        'CLASS_NOT_ALLOWED',
      );
    });
    it('arguments outside the schema', async () => {
      await denied({ tool: 'room.fan.set', args: { speed_pct: 101 }, token: await token() }, 'ARGS_INVALID');
      await denied({ tool: 'room.fan.set', args: { speed: 1 }, token: await token() }, 'ARGS_INVALID');
    });
    it('insufficient quorum (1 of 2)', async () => {
      const args = { zone: 'b' };
      await denied(
        { tool: 'room.valve.open', args, token: await token(), quorum: quorum('room.valve.open', args, ['alice']) },
        'QUORUM_INSUFFICIENT',
      );
    });
    it('quorum for other arguments', async () => {
      await denied(
        {
          tool: 'room.valve.open',
          args: { zone: 'b' },
          token: await token(),
          quorum: quorum('room.valve.open', { zone: 'a' }),
        },
        'QUORUM_MISMATCH',
      );
    });
    it('reused quorum', async () => {
      const args = { zone: 'b' };
      const q = quorum('room.valve.open', args);
      await call({ tool: 'room.valve.open', args, token: await token(), quorum: q });
      clock.advance(61_000);
      await denied({ tool: 'room.valve.open', args, token: await token(), quorum: q }, 'QUORUM_REUSED');
    });
    it('interlock: mutually exclusive tool within its window (both ways)', async () => {
      // The valve ran just now: the mister, which it names, is held off too.
      await denied(
        { tool: 'room.mister.run', token: await token(), quorum: quorum('room.mister.run', {}) },
        'INTERLOCKED',
      );
      clock.advance(301_000);
      await call({ tool: 'room.mister.run', token: await token(), quorum: quorum('room.mister.run', {}) });
      const args = { zone: 'a' };
      await denied(
        { tool: 'room.valve.open', args, token: await token(), quorum: quorum('room.valve.open', args) },
        'INTERLOCKED',
      );
      clock.advance(301_000);
      await call({ tool: 'room.valve.open', args, token: await token(), quorum: quorum('room.valve.open', args) });
    });
    it('interlock: minimum interval', async () => {
      const args = { zone: 'a' };
      await denied(
        { tool: 'room.valve.open', args, token: await token(), quorum: quorum('room.valve.open', args) },
        'MIN_INTERVAL',
      );
      clock.advance(61_000);
    });
    it('interlock: outside allowed hours, and a clock that is not set', async () => {
      const args = { zone: 'a' };
      clock.jumpWallMs(10 * 3600_000); // 22:00 UTC
      await denied(
        { tool: 'room.valve.open', args, token: await token(), quorum: quorum('room.valve.open', args) },
        'OUTSIDE_ALLOWED_HOURS',
      );
      clock.jumpWallMs(-10 * 3600_000);
    });
    it('rate limit exceeded', async () => {
      clock.advance(61_000);
      for (let i = 0; i < 3; i++) await call({ tool: 'room.fan.set', args: { speed_pct: i }, token: await token() });
      await denied({ tool: 'room.fan.set', args: { speed_pct: 9 }, token: await token() }, 'RATE_LIMITED');
      clock.advance(61_000);
      await call({ tool: 'room.fan.set', args: { speed_pct: 9 }, token: await token() });
    });
    it('unknown tool and no token for a reversible tool', async () => {
      await denied({ tool: 'room.nothing' }, 'TOOL_UNKNOWN');
      await denied({ tool: 'room.fan.set', args: { speed_pct: 1 } }, 'TOKEN_REQUIRED');
    });
  });

  it('queues pushed telemetry durably and refuses bad values with typed errors', async () => {
    const r = await api.post<IngestResponse>('/v1/telemetry', {
      records: [
        { stream: 'door.open', value: true },
        { stream: 'room.temperature', value: 20.5 },
        { stream: 'door.open', value: false },
      ],
    });
    assert.equal(r.seqs.length, 3);
    assert.ok(r.seqs[0]! < r.seqs[2]!);
    const tail = await api.get<TailResponse>('/v1/telemetry', { stream: 'door.open' });
    assert.deepEqual(
      tail.records.map((x) => x.value),
      [true, false],
    );
    await assert.rejects(api.post('/v1/telemetry', { records: [{ stream: 'door.open', value: 3 }] }), (e) =>
      isOutpostError(e, 'INGEST_INVALID'),
    );
    await assert.rejects(api.post('/v1/telemetry', { records: [{ stream: 'no.such', value: 3 }] }), (e) =>
      isOutpostError(e, 'STREAM_NOT_FOUND'),
    );
  });

  it('keeps sequence numbers increasing and TTLs right across wall-clock jumps', async () => {
    const a = await api.post<IngestResponse>('/v1/telemetry', { records: [{ stream: 'room.temperature', value: 1 }] });
    clock.jumpWallMs(-400 * 86_400_000); // NTP steps the clock a year back
    const b = await api.post<IngestResponse>('/v1/telemetry', { records: [{ stream: 'room.temperature', value: 2 }] });
    clock.jumpWallMs(+800 * 86_400_000); // and then far forward
    const c = await api.post<IngestResponse>('/v1/telemetry', { records: [{ stream: 'room.temperature', value: 3 }] });
    assert.ok(a.seqs[0]! < b.seqs[0]! && b.seqs[0]! < c.seqs[0]!);
    // TTL (1 h) runs on store time: the jumps did not age anything.
    const before = (await api.get<{ by_stream: Record<string, { depth: number }> }>('/v1/queue')).by_stream[
      'room.temperature'
    ]!.depth;
    assert.ok(before >= 4);
    clock.jumpWallMs(-400 * 86_400_000);
    // An hour of real (monotonic) time does.
    clock.advance(3_601_000);
    await api.post<IngestResponse>('/v1/telemetry', { records: [{ stream: 'door.open', value: true }] });
    const q = await api.get<{ by_stream: Record<string, { depth: number }>; dropped: Record<string, number> }>(
      '/v1/queue',
    );
    assert.equal(q.by_stream['room.temperature']?.depth ?? 0, 0);
    assert.ok((q.dropped.ttl ?? 0) >= before);
  });

  it('verifies its audit chain', async () => {
    const v = await api.post<{ ok: boolean; entries: number }>('/v1/audit/verify', {});
    assert.equal(v.ok, true);
    assert.ok(v.entries > 30);
  });

  it('exposes metrics that promtool accepts', async (t) => {
    try {
      execFileSync('promtool', ['--version'], { stdio: 'ignore' });
    } catch {
      t.skip('promtool is not installed');
      return;
    }
    const s = agent.status();
    assert.ok(s.endpoints.metrics);
    const res = await fetch(s.endpoints.metrics!);
    assert.match(res.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
    const text = await res.text();
    execFileSync('promtool', ['check', 'metrics'], { input: text });
    assert.match(
      text,
      /outpost_agent_tool_calls_total\{tool="room.fan.set",safety_class="reversible",decision="deny",reason="RATE_LIMITED"/,
    );
    assert.match(text, /outpost_agent_queue_items \d+/);
    assert.match(text, /process_resident_memory_bytes \d+/);
    assert.ok(metrics.render().includes('outpost_agent_queue_dropped_total{reason="ttl"}'));
  });

  it('records a change of its capability set on restart', async () => {
    await agent.stop();
    const changed = configText
      .replace('name = "room.mister.run"', 'name = "room.mister.start"')
      .replace('tools = ["room.mister.run"]', 'tools = ["room.mister.start"]');
    ({ agent, metrics } = makeAgent(changed));
    await agent.start();
    const s = await api.get<StatusView>('/v1/status');
    assert.equal(s.manifest_changed_at_start, true);
    const change = (await auditLines()).filter((e) => e.kind === 'manifest.change').at(-1)!;
    assert.equal(change.reason, 'CHANGED');
    assert.deepEqual((change.details as { added: string[]; removed: string[] }).added, ['room.mister.start']);
    assert.deepEqual((change.details as { removed: string[] }).removed, ['room.mister.run']);
    const v = await api.post<{ ok: boolean }>('/v1/audit/verify', {});
    assert.equal(v.ok, true);
  });
});
