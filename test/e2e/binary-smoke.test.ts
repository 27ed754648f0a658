// End-to-end smoke of the shipped linux-x64 binary, run as an operator would run it: every process below (control
// plane, enrollment, agent daemon, CLI commands) is the single binary, built once per source by ensureBinaries();
// only the MCP client is the official SDK in this process. Control plane + agent enroll + tool call + telemetry.

import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { helpText } from '../../cli/main.ts';
import { type AgentProcess, type CliResult, outpost, startAgent } from '../support/agent-process.ts';
import { ensureBinaries, runBinary, type TestBinaries } from '../support/binaries.ts';
import { freePort } from '../support/controlplane.ts';
import {
  type ControlPlaneProcess,
  startControlPlaneProcess,
  until,
  writeGreenhouseAgentConfig,
} from '../support/controlplane-process.ts';

let bins: TestBinaries;
let scratch: string;

function json<T = Record<string, unknown>>(r: CliResult): T {
  assert.equal(r.status, 0, `exit ${r.status}: ${r.stderr}${r.stdout}`);
  return JSON.parse(r.stdout) as T;
}

before(async () => {
  bins = await ensureBinaries();
  scratch = mkdtempSync(join(tmpdir(), 'outpost-e2e-bin-'));
});
after(() => rmSync(scratch, { recursive: true, force: true }));

describe('the linux-x64 binary as shipped', () => {
  it('carries every CLI command of the source tree', async () => {
    const r = await runBinary('x64', bins.path.x64, ['--help'], {
      env: { PATH: process.env.PATH, OUTPOST_NATIVE_CACHE: join(scratch, 'native') },
    });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout, `${helpText()}\n`);
  });

  it('maps an unknown command to the usage exit code', async () => {
    const r = await runBinary('x64', bins.path.x64, ['no-such-command'], {
      env: { PATH: process.env.PATH, OUTPOST_NATIVE_CACHE: join(scratch, 'native') },
    });
    assert.equal(r.status, 64);
    assert.match(r.stderr, /unknown command 'no-such-command'/);
  });

  describe('control plane, enrollment, a tool call and telemetry, all from the binary', () => {
    let dir = '';
    let cpDir = '';
    let url = '';
    let configFile = '';
    let cp: ControlPlaneProcess | undefined;
    let agent: AgentProcess | undefined;
    const command = () => [bins.path.x64];
    const env = () => ({ OUTPOST_NATIVE_CACHE: join(dir, 'native') });
    const agentEnv = () => ({
      ...env(),
      OUTPOST_STATE_DIR: join(dir, 'agent'),
      OUTPOST_LINK_HEARTBEAT_MS: '2000',
      OUTPOST_LINK_TIMEOUT_MS: '2000',
    });
    const bin = (args: readonly string[], o: { env?: Record<string, string>; input?: string } = {}) =>
      outpost(args, { env: o.env ?? env(), command: command(), ...(o.input !== undefined ? { input: o.input } : {}) });

    before(async () => {
      dir = join(scratch, 'scenario');
      cpDir = join(dir, 'cp');
      const port = await freePort();
      url = `http://127.0.0.1:${port}`;
      configFile = writeGreenhouseAgentConfig(mkdtempSync(join(scratch, 'cfg-')));
      json(await bin(['controlplane', 'init', '--state-dir', cpDir, '--listen', `127.0.0.1:${port}`, '--json']));
      cp = startControlPlaneProcess(cpDir, env(), command());
      await cp.ready;
    });
    after(async () => {
      await agent?.stop();
      await cp?.stop();
    });

    it('enrolls the agent with a token on stdin, and the agent connects by itself', async () => {
      const tokenFile = join(dir, 'enroll.token');
      json(await bin(['controlplane', 'enroll-token', '--state-dir', cpDir, '--out', tokenFile, '--json']));
      const enrolled = json<{ manifest: { status: string } }>(
        await bin(['enroll', '--url', url, '--token-file', '-', '--config', configFile, '--json'], {
          env: agentEnv(),
          input: readFileSync(tokenFile, 'utf8'),
        }),
      );
      assert.equal(enrolled.manifest.status, 'accepted');
      agent = startAgent({ configFile, env: agentEnv(), command: command() });
      await agent.ready;
      await until(async () => {
        const d = json<{ devices: { session: { callable: boolean } | null }[] }>(
          await bin(['controlplane', 'devices', '--state-dir', cpDir, '--json']),
        );
        return d.devices[0]?.session?.callable === true;
      }, 'the device online and callable');
    });

    it('runs a tool on the device through the MCP gateway', async () => {
      const tokenFile = join(dir, 'caller.token');
      json(
        await bin([
          'controlplane',
          'token',
          'mint',
          '--state-dir',
          cpDir,
          '--role',
          'actuator',
          '--subject',
          'smoke',
          '--out',
          tokenFile,
          '--json',
        ]),
      );
      const client = new Client({ name: 'binary-smoke', version: '1' });
      await client.connect(
        new StreamableHTTPClientTransport(new URL(`${url}/mcp`), {
          requestInit: { headers: { authorization: `Bearer ${readFileSync(tokenFile, 'utf8').trim()}` } },
        }),
      );
      try {
        const echo = await client.callTool({ name: 'greenhouse-north.system.echo', arguments: { message: 'sea' } });
        assert.equal(echo.isError, undefined, JSON.stringify(echo));
        assert.deepEqual(echo.structuredContent, { message: 'sea' });
        const fan = await client.callTool({
          name: 'greenhouse-north.greenhouse.fan.set',
          arguments: { speed_pct: 25 },
        });
        assert.equal((fan.structuredContent as { speed_pct: number }).speed_pct, 25, JSON.stringify(fan));
      } finally {
        await client.close();
      }
    });

    it('carries pushed telemetry to the control plane store, each record once', async () => {
      const lines = Array.from({ length: 200 }, (_, i) =>
        JSON.stringify({ stream: 'greenhouse.door.open', value: i % 2 === 0 }),
      ).join('\n');
      const pushed = json<{ seqs: number[] }>(
        await bin(['telemetry', 'push', '--file', '-', '--config', configFile, '--json'], {
          env: agentEnv(),
          input: lines,
        }),
      );
      assert.equal(pushed.seqs.length, 200);
      const stored = await until(async () => {
        const r = json<{ total: number; records: { seq: number }[] }>(
          await bin([
            'controlplane',
            'telemetry',
            '--state-dir',
            cpDir,
            '--stream',
            'greenhouse.door.open',
            '--limit',
            '1000',
            '--json',
          ]),
        );
        return r.total >= 200 ? r : undefined;
      }, '200 door records stored');
      assert.equal(stored.total, 200);
      const seqs = new Set(stored.records.map((r) => r.seq));
      for (const s of pushed.seqs) assert.ok(seqs.has(s), `seq ${s} stored`);
    });
  });
});
