// A new user's first hour, with real processes and no upstream: start the agent from the example config,
// call a built-in and an exec tool from the CLI and from `outpost mcp` through the official MCP SDK client,
// see a physical_actuation tool refused without quorum and allowed with one, push telemetry and see it
// queued, and verify the audit chain.

import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { StatusView } from '../../agent/api-types.ts';
import { type AgentProcess, CLI, childEnv, outpost, ROOT, startAgent } from '../support/agent-process.ts';

const dir = mkdtempSync(join(tmpdir(), 'outpost-e2e-'));
const configFile = join(dir, 'agent.toml');
const trustDir = join(dir, 'trust');
const cfg = ['--config', configFile];
let agent: AgentProcess;
let mcp: Client;

function json<T>(r: { status: number | null; stdout: string; stderr: string }): T {
  assert.equal(r.status, 0, `exit ${r.status}: ${r.stderr}${r.stdout}`);
  return JSON.parse(r.stdout) as T;
}

before(async () => {
  // The shipped example, as a new user would copy it, with a private state dir and free ports. The valve's
  // allowed hours are moved to include "now" so the test does not depend on the time of day it runs.
  cpSync(join(ROOT, 'examples/greenhouse'), join(dir, 'greenhouse'), { recursive: true });
  const hour = new Date().getUTCHours();
  const text = readFileSync(join(ROOT, 'examples/agent.toml'), 'utf8')
    .replace('# state_dir = "/var/lib/outpost"', 'state_dir = "state"')
    .replace('http_port = 7390', 'http_port = 0')
    .replace('port = 9390', 'port = 0')
    .replace('from_hour = 5, to_hour = 21', `from_hour = ${hour}, to_hour = ${(hour + 2) % 24}`);
  assert.ok(
    text.includes('state_dir = "state"') && text.includes(`from_hour = ${hour}`),
    'example config changed shape',
  );
  const init = json<{ toml: string; tenantId: string }>(
    await outpost(['dev', 'trust', 'init', '--dir', trustDir, '--json']),
  );
  writeFileSync(configFile, `${text}\n${init.toml}\n`);
  agent = startAgent({ configFile });
  await agent.ready;
  mcp = new Client({ name: 'outpost-e2e', version: '1.0.0' });
  await mcp.connect(
    new StdioClientTransport({
      command: process.execPath,
      args: [CLI, 'mcp', ...cfg],
      env: childEnv(),
      stderr: 'pipe',
    }),
  );
});

after(async () => {
  await mcp?.close();
  const code = await agent?.stop();
  rmSync(dir, { recursive: true, force: true });
  assert.equal(code, 0, 'the agent stops cleanly on SIGTERM');
});

describe('agent off-grid, end to end', () => {
  it('reports its status and identity', async () => {
    const s = json<StatusView>(await outpost(['status', ...cfg, '--json']));
    assert.equal(s.status.link, 'off_grid');
    assert.equal(s.trust.configured, true);
    const id = json<{ did: string }>(await outpost(['identity', ...cfg, '--json']));
    assert.equal(id.did, s.did);
    const human = await outpost(['status', ...cfg]);
    assert.match(human.stdout, /greenhouse-north .*off-grid/);
  });

  it('calls a built-in and an exec tool from the CLI', async () => {
    const echo = json<{ result: unknown }>(
      await outpost(['tools', 'call', 'system.echo', 'message=hello', ...cfg, '--json']),
    );
    assert.deepEqual(echo.result, { message: 'hello' });
    const climate = json<{ result: { temperature_c: number } }>(
      await outpost(['tools', 'call', 'greenhouse.climate.read', ...cfg, '--json']),
    );
    assert.equal(typeof climate.result.temperature_c, 'number');
    const list = await outpost(['tools', 'list', ...cfg]);
    assert.match(list.stdout, /greenhouse\.valve\.open\s+physical_actuation/);
  });

  it('calls tools through `outpost mcp` with the MCP SDK client', async () => {
    const { tools } = await mcp.listTools();
    const valve = tools.find((t) => t.name === 'greenhouse.valve.open');
    assert.equal(valve?.annotations?.destructiveHint, true);
    const echo = await mcp.callTool({ name: 'system.echo', arguments: { message: 'over mcp' } });
    assert.deepEqual(echo.structuredContent, { message: 'over mcp' });
    const climate = await mcp.callTool({ name: 'greenhouse.climate.read', arguments: {} });
    assert.equal(climate.isError, undefined);
    assert.equal(typeof (climate.structuredContent as { humidity_pct: number }).humidity_pct, 'number');
    const refused = await mcp.callTool({ name: 'greenhouse.fan.set', arguments: { speed_pct: 30 } });
    assert.equal(refused.isError, true);
    assert.match(JSON.stringify(refused.content), /TOKEN_REQUIRED/);
  });

  it('refuses a physical_actuation tool without quorum and allows it with one (CLI)', async () => {
    const args = ['zone=north', 'duration_s=30'];
    const token1 = (await outpost(['dev', 'token', '--dir', trustDir, ...cfg])).stdout.trim();
    const refused = await outpost(
      ['tools', 'call', 'greenhouse.valve.open', ...args, '--token-file', '-', ...cfg, '--json'],
      {
        input: token1,
      },
    );
    assert.equal(refused.status, 77);
    assert.equal(JSON.parse(refused.stdout).error.details.reason, 'QUORUM_REQUIRED');
    const token2 = (await outpost(['dev', 'token', '--dir', trustDir, ...cfg])).stdout.trim();
    const quorum = (
      await outpost(['dev', 'approve', '--dir', trustDir, '--tool', 'greenhouse.valve.open', ...args, ...cfg])
    ).stdout.trim();
    writeFileSync(join(dir, 'quorum'), quorum);
    const allowed = json<{ result: unknown; decision: { reason: string } }>(
      await outpost(
        [
          'tools',
          'call',
          'greenhouse.valve.open',
          ...args,
          '--token-file',
          '-',
          '--quorum-file',
          join(dir, 'quorum'),
          ...cfg,
          '--json',
        ],
        { input: token2 },
      ),
    );
    assert.deepEqual(allowed.result, { zone: 'north', opened_for_s: 30 });
    assert.equal(allowed.decision.reason, 'ALLOWED');
  });

  it('allows a physical_actuation tool over MCP with token and quorum in _meta', async () => {
    const args = { duration_s: 5 };
    const token = (await outpost(['dev', 'token', '--dir', trustDir, ...cfg])).stdout.trim();
    const noQuorum = await mcp.callTool({
      name: 'greenhouse.mister.run',
      arguments: args,
      _meta: { 'outpost/token': token },
    });
    assert.equal(noQuorum.isError, true);
    assert.match(JSON.stringify(noQuorum.content), /QUORUM_REQUIRED/);
    const token2 = (await outpost(['dev', 'token', '--dir', trustDir, ...cfg])).stdout.trim();
    const quorum = (
      await outpost([
        'dev',
        'approve',
        '--dir',
        trustDir,
        '--tool',
        'greenhouse.mister.run',
        '--args',
        JSON.stringify(args),
        ...cfg,
      ])
    ).stdout.trim();
    // The valve ran moments ago and the mister is interlocked with it for five minutes.
    const held = await mcp.callTool({
      name: 'greenhouse.mister.run',
      arguments: args,
      _meta: { 'outpost/token': token2, 'outpost/quorum': quorum },
    });
    assert.equal(held.isError, true);
    assert.match(JSON.stringify(held.content), /INTERLOCKED/);
  });

  it('serves the same tools over the Streamable HTTP endpoint on 127.0.0.1', async () => {
    const s = json<StatusView>(await outpost(['status', ...cfg, '--json']));
    const http = new Client({ name: 'outpost-e2e-http', version: '1.0.0' });
    await http.connect(new StreamableHTTPClientTransport(new URL(s.endpoints.mcp_http!)));
    const echo = await http.callTool({ name: 'system.echo', arguments: { message: 'over http' } });
    assert.deepEqual(echo.structuredContent, { message: 'over http' });
    await http.close();
  });

  it('queues pushed telemetry and shows it', async () => {
    const pushed = json<{ seqs: number[] }>(
      await outpost(['telemetry', 'push', 'greenhouse.door.open', 'true', ...cfg, '--json']),
    );
    assert.equal(pushed.seqs.length, 1);
    const q = json<{ depth: number; by_stream: Record<string, { depth: number }> }>(
      await outpost(['queue', 'stats', ...cfg, '--json']),
    );
    assert.ok(q.by_stream['greenhouse.door.open']!.depth >= 1);
    const tail = await outpost(['telemetry', 'tail', '--stream', 'greenhouse.door.open', ...cfg, '--json']);
    const last = JSON.parse(tail.stdout.trim().split('\n').at(-1)!) as { seq: number; value: unknown };
    assert.deepEqual([last.seq, last.value], [pushed.seqs[0], true]);
    const bad = await outpost(['telemetry', 'push', 'greenhouse.door.open', '42', ...cfg]);
    assert.equal(bad.status, 65);
    assert.match(bad.stderr, /INGEST_INVALID/);
  });

  it('verifies the audit chain, which holds every decision', async () => {
    const v = json<{ ok: boolean; entries: number }>(await outpost(['audit', 'verify', ...cfg, '--json']));
    assert.equal(v.ok, true);
    const lines = (await outpost(['audit', 'export', ...cfg])).stdout.trim().split('\n');
    const entries = lines.map((l) => JSON.parse(l) as { kind: string; reason: string; decision: string });
    assert.ok(entries.some((e) => e.kind === 'tool.call' && e.reason === 'QUORUM_REQUIRED' && e.decision === 'deny'));
    assert.ok(entries.some((e) => e.kind === 'tool.call' && e.reason === 'INTERLOCKED'));
    assert.ok(entries.some((e) => e.kind === 'manifest.change'));
  });

  it('passes doctor', async () => {
    const r = await outpost(['doctor', ...cfg]);
    assert.equal(r.status, 0, r.stdout);
    assert.match(r.stdout, /✓ config/);
    assert.match(r.stdout, /✓ agent: running/);
  });
});
