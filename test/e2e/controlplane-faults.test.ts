// Faults between real processes on loopback: an agent process whose WSS path to a control-plane process goes
// silent (a proxy that stops forwarding) notices and comes back by itself; a hostile client flooding the hub with
// garbage, oversized and forged envelopes is refused with typed errors while the agent keeps working.

import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { WebSocket } from 'ws';
import { type AgentProcess, outpost, startAgent } from '../support/agent-process.ts';
import { freePort } from '../support/controlplane.ts';
import {
  type ControlPlaneProcess,
  startControlPlaneProcess,
  until,
  writeGreenhouseAgentConfig,
} from '../support/controlplane-process.ts';
import { startTcpProxy, type TcpProxy } from '../support/tcp-proxy.ts';

function json<T = Record<string, unknown>>(r: { status: number | null; stdout: string; stderr: string }): T {
  assert.equal(r.status, 0, `exit ${r.status}: ${r.stderr}${r.stdout}`);
  return JSON.parse(r.stdout) as T;
}

describe('control plane faults (real processes)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'outpost-e2e-faults-'));
  const cpDir = join(dir, 'cp');
  const agentState = join(dir, 'agent');
  let cp: ControlPlaneProcess;
  let agent: AgentProcess;
  let proxy: TcpProxy;
  let url = '';
  let tid = '';
  const cpArgs = ['--state-dir', cpDir];
  const agentEnv = { OUTPOST_STATE_DIR: agentState, OUTPOST_LINK_HEARTBEAT_MS: '700', OUTPOST_LINK_TIMEOUT_MS: '700' };

  before(async () => {
    const port = await freePort();
    url = `http://127.0.0.1:${port}`;
    tid = json<{ tenant: { tid: string } }>(
      await outpost(['controlplane', 'init', ...cpArgs, '--listen', `127.0.0.1:${port}`, '--json']),
    ).tenant.tid;
    cp = startControlPlaneProcess(cpDir);
    await cp.ready;
    proxy = await startTcpProxy(port);
    const configFile = writeGreenhouseAgentConfig(dir);
    const tokenFile = join(dir, 'enroll.token');
    json(await outpost(['controlplane', 'enroll-token', ...cpArgs, '--out', tokenFile, '--json']));
    json(
      await outpost(['enroll', '--url', url, '--token-file', tokenFile, '--config', configFile, '--json'], {
        env: agentEnv,
      }),
    );
    // The agent reaches the hub through the proxy.
    const enrollmentFile = join(agentState, 'enrollment.json');
    const e = JSON.parse(readFileSync(enrollmentFile, 'utf8')) as { wssUrl: string };
    writeFileSync(enrollmentFile, JSON.stringify({ ...e, wssUrl: e.wssUrl.replace(`:${port}/`, `:${proxy.port}/`) }));
    agent = startAgent({ configFile, env: agentEnv });
    await agent.ready;
    await until(
      async () => agent.log.some((l) => l.includes('link.state') && l.includes('state=online')),
      'the agent online',
    );
  });
  after(async () => {
    await agent?.stop();
    await cp?.stop();
    await proxy?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('notices a silently dropped connection by its heartbeat and reconnects when the path is back', async () => {
    const before = agent.log.length;
    proxy.blackhole();
    await until(
      async () => agent.log.slice(before).some((l) => l.includes('link.heartbeat_timeout')),
      'the heartbeat timeout',
    );
    proxy.resume();
    await until(
      async () => agent.log.slice(before).some((l) => l.includes('link.state') && l.includes('state=online')),
      'the agent online again',
    );
    const status = json<{ uplink: { state: string } }>(await outpost(['status', '--json'], { env: agentEnv }));
    assert.equal(status.uplink.state, 'online');
  });

  it('refuses garbage on the hub with typed errors and keeps serving the agent', async () => {
    const ws = new WebSocket(`${url.replace('http', 'ws')}/v1/hub/${tid}`, ['aethermesh.v2']);
    const received: { type: string; body: { code?: string } }[] = [];
    ws.on('message', (d) => received.push(JSON.parse(d.toString()) as (typeof received)[number]));
    await new Promise((resolve, reject) => {
      ws.once('open', resolve);
      ws.once('error', reject);
    });
    const closed = new Promise<number>((resolve) => ws.once('close', (code) => resolve(code)));
    ws.send('{"v":2,"type":"hello"'); // truncated JSON before any hello
    const code = await closed;
    assert.equal(code, 1008);
    assert.equal(received[0]?.type, 'hello.challenge');
    // Oversized frames are cut by ws's maxPayload (1009) before they are buffered whole.
    const big = new WebSocket(`${url.replace('http', 'ws')}/v1/hub/${tid}`, ['aethermesh.v2']);
    await new Promise((resolve) => big.once('open', resolve));
    const bigClosed = new Promise<number>((resolve) => big.once('close', (c) => resolve(c)));
    big.send('x'.repeat(2 * 1024 * 1024));
    assert.equal(await bigClosed, 1009);
    // A wrong subprotocol or an unknown tenant never gets an upgrade.
    const upgradeStatus = (path: string, protocol: string) =>
      new Promise<number>((resolve) => {
        const w = new WebSocket(`${url.replace('http', 'ws')}${path}`, [protocol]);
        w.once('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
        w.once('error', () => undefined);
      });
    assert.equal(await upgradeStatus(`/v1/hub/${tid}`, 'chat'), 426);
    assert.equal(await upgradeStatus('/v1/hub/00000000-0000-5000-8000-000000000000', 'aethermesh.v2'), 404);
    // The agent kept its session throughout.
    const d = json<{ devices: { online: boolean }[] }>(await outpost(['controlplane', 'devices', ...cpArgs, '--json']));
    assert.equal(d.devices[0]?.online, true);
  });
});
