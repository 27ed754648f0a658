// The quick start of docs/controlplane.md, as a new user runs it, with real processes: `outpost controlplane
// init/run`, an enroll token, `outpost enroll` and `outpost agent run`, tools through the MCP gateway with the
// official SDK client, a physical_actuation call approved by two `outpost approve` runs, and telemetry stored
// exactly once across a SIGKILL of the control plane.

import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { type AgentProcess, outpost, startAgent } from '../support/agent-process.ts';
import { freePort } from '../support/controlplane.ts';
import {
  type ControlPlaneProcess,
  startControlPlaneProcess,
  until,
  writeGreenhouseAgentConfig,
} from '../support/controlplane-process.ts';

function json<T = Record<string, unknown>>(r: { status: number | null; stdout: string; stderr: string }): T {
  assert.equal(r.status, 0, `exit ${r.status}: ${r.stderr}${r.stdout}`);
  return JSON.parse(r.stdout) as T;
}

describe('control plane quick start (real processes)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'outpost-e2e-cp-'));
  const cpDir = join(dir, 'cp');
  const agentState = join(dir, 'agent');
  let port = 0;
  let url = '';
  let cp: ControlPlaneProcess;
  let agent: AgentProcess;
  let configFile = '';
  const cpArgs = () => ['--state-dir', cpDir];
  const agentEnv = () => ({
    OUTPOST_STATE_DIR: agentState,
    OUTPOST_LINK_HEARTBEAT_MS: '2000',
    OUTPOST_LINK_TIMEOUT_MS: '2000',
  });

  before(async () => {
    port = await freePort();
    url = `http://127.0.0.1:${port}`;
    configFile = writeGreenhouseAgentConfig(dir);
  });
  after(async () => {
    await agent?.stop();
    await cp?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('init creates the control plane and prints the operator key once (also in a 0600 file)', async () => {
    const r = json<{ operatorKey: string; operatorKeyFile: string; tenant: { tid: string } }>(
      await outpost([
        'controlplane',
        'init',
        ...cpArgs(),
        '--listen',
        `127.0.0.1:${port}`,
        '--tenant',
        'farm',
        '--json',
      ]),
    );
    assert.match(r.operatorKey, /^opk_/);
    assert.equal(readFileSync(r.operatorKeyFile, 'utf8').trim(), r.operatorKey);
    const again = await outpost(['controlplane', 'init', ...cpArgs()]);
    assert.notEqual(again.status, 0);
    assert.match(again.stderr, /already holds a control plane/);
    cp = startControlPlaneProcess(cpDir);
    await cp.ready;
    const llms = await (await fetch(`${url}/llms.txt`)).text();
    assert.match(llms, new RegExp(`${url}/mcp`));
  });

  it('enrolls an agent with a token passed on stdin, and the agent connects by itself', async () => {
    const tokenFile = join(dir, 'enroll.token');
    json(await outpost(['controlplane', 'enroll-token', ...cpArgs(), '--out', tokenFile, '--json']));
    const token = readFileSync(tokenFile, 'utf8');
    const enrolled = json<{ device: string; manifest: { status: string } }>(
      await outpost(['enroll', '--url', url, '--token-file', '-', '--config', configFile, '--json'], {
        env: agentEnv(),
        input: token,
      }),
    );
    assert.equal(enrolled.manifest.status, 'accepted');
    // The token was single use.
    const reused = await outpost(
      ['enroll', '--url', url, '--token-file', tokenFile, '--config', configFile, '--force'],
      { env: agentEnv() },
    );
    assert.notEqual(reused.status, 0);
    assert.match(reused.stderr, /already used/);
    agent = startAgent({ configFile, env: agentEnv() });
    await agent.ready;
    await until(async () => {
      const d = json<{ devices: { online: boolean; session: { callable: boolean } | null }[] }>(
        await outpost(['controlplane', 'devices', ...cpArgs(), '--json']),
      );
      return d.devices[0]?.session?.callable === true;
    }, 'the device online and callable');
  });

  it('calls the device’s tools through the MCP gateway with the official SDK client, and approves a physical one', async () => {
    const tokenFile = join(dir, 'alice.token');
    json(
      await outpost([
        'controlplane',
        'token',
        'mint',
        ...cpArgs(),
        '--role',
        'actuator',
        '--subject',
        'alice',
        '--out',
        tokenFile,
        '--json',
      ]),
    );
    const client = new Client({ name: 'e2e', version: '1' });
    await client.connect(
      new StreamableHTTPClientTransport(new URL(`${url}/mcp`), {
        requestInit: { headers: { authorization: `Bearer ${readFileSync(tokenFile, 'utf8').trim()}` } },
      }),
    );
    const names = (await client.listTools()).tools.map((t) => t.name);
    assert.ok(names.includes('greenhouse-north.greenhouse.climate.read'), names.join());
    const climate = await client.callTool({ name: 'greenhouse-north.greenhouse.climate.read', arguments: {} });
    assert.equal(climate.isError, undefined);
    assert.equal(typeof (climate.structuredContent as { temperature_c: number }).temperature_c, 'number');
    const fan = await client.callTool({ name: 'greenhouse-north.greenhouse.fan.set', arguments: { speed_pct: 40 } });
    assert.equal((fan.structuredContent as { speed_pct: number }).speed_pct, 40);

    // Two approvers, each with a key only they hold.
    for (const who of ['ann', 'bob']) {
      const k = json<{ publicKey: string }>(
        await outpost(['approver', 'keygen', '--out', join(dir, `${who}.key`), '--json']),
      );
      json(
        await outpost([
          'controlplane',
          'policy',
          'add-approver',
          who,
          `--public-key=${k.publicKey}`, // a base64url key may begin with '-': always the = form
          ...cpArgs(),
          '--json',
        ]),
      );
    }
    const args = { zone: 'north', duration_s: 30 };
    const held = await client.callTool({ name: 'greenhouse-north.greenhouse.valve.open', arguments: args });
    assert.equal(held.isError, true);
    const requestId = (held._meta as Record<string, { requestId: string }>)['outpost/approval']!.requestId;
    const pending = json<{ approvals: { requestId: string }[] }>(
      await outpost(['controlplane', 'approvals', ...cpArgs(), '--status', 'pending', '--json']),
    );
    assert.deepEqual(
      pending.approvals.map((a) => a.requestId),
      [requestId],
    );
    for (const who of ['ann', 'bob']) {
      json(
        await outpost([
          'approve',
          requestId,
          '--approver',
          who,
          '--key-file',
          join(dir, `${who}.key`),
          ...cpArgs(),
          '--json',
        ]),
      );
    }
    const opened = (await client.callTool({
      name: 'greenhouse-north.greenhouse.valve.open',
      arguments: args,
    })) as CallToolResult;
    assert.equal(opened.isError, undefined, JSON.stringify(opened));
    assert.deepEqual(opened.structuredContent, { zone: 'north', opened_for_s: 30 });
    const again = await client.callTool({ name: 'greenhouse-north.greenhouse.valve.open', arguments: args });
    assert.equal(again.isError, true, 'an approval is used once');
    await client.close();
  });

  it('stores telemetry exactly once across a SIGKILL of the control plane mid-stream', async () => {
    const before = json<{ total: number }>(
      await outpost(['controlplane', 'telemetry', ...cpArgs(), '--stream', 'greenhouse.door.open', '--json']),
    ).total;
    let batch = 0;
    const push = async (n: number) => {
      const lines = Array.from({ length: n }, (_, i) =>
        JSON.stringify({ stream: 'greenhouse.door.open', value: i % 2 === 0 }),
      ).join('\n');
      const file = join(dir, `batch-${batch++}.jsonl`);
      writeFileSync(file, lines);
      json(await outpost(['telemetry', 'push', '--file', file, '--config', configFile, '--json'], { env: agentEnv() }));
    };
    const stored = async () =>
      json<{ total: number }>(
        await outpost(['controlplane', 'telemetry', ...cpArgs(), '--stream', 'greenhouse.door.open', '--json']),
      ).total;
    await push(4000);
    // Kill as soon as the first of them is stored: the rest are in flight or still queued.
    await until(async () => (await stored()) > before, 'the first records stored');
    await cp.kill9();
    await push(300); // queued durably while the control plane is down
    cp = startControlPlaneProcess(cpDir);
    await cp.ready;
    await push(300);
    const total = await until(async () => {
      const n = await stored();
      return n >= before + 4600 ? n : undefined;
    }, 'all 4600 door records stored');
    assert.equal(total, before + 4600, 'each record stored exactly once');
    const rows = json<{ records: { seq: number }[] }>(
      await outpost([
        'controlplane',
        'telemetry',
        ...cpArgs(),
        '--stream',
        'greenhouse.door.open',
        '--limit',
        '10000',
        '--json',
      ]),
    ).records;
    assert.equal(new Set(rows.map((r) => r.seq)).size, rows.length);
    assert.ok(agent.log.some((l) => l.includes('link.state') && l.includes('state=online')));
  });

  it('exports a signed audit holding the enrollment, the calls and the approvals', async () => {
    const file = join(dir, 'audit.json');
    const r = await outpost(['controlplane', 'audit', 'export', ...cpArgs(), '--out', file]);
    assert.equal(r.status, 0, r.stderr);
    const verified = json<{ ok: boolean }>(await outpost(['controlplane', 'audit', 'verify', file, '--json']));
    assert.equal(verified.ok, true);
    const kinds = new Set(
      (JSON.parse(readFileSync(file, 'utf8')) as { lines: { kind?: string }[] }).lines.map((l) => l.kind),
    );
    for (const k of [
      'enroll',
      'tool.call',
      'approval.add',
      'approval.quorum',
      'session.open',
      'policy.set',
      'audit.anchor',
    ])
      assert.ok(kinds.has(k), k);
  });
});
