// The MCP gateway with the official SDK client against a real control plane and scripted devices: listing, calls
// forwarded with a per-call token the device can verify, roles and scopes, DNS-rebinding protection, and physical
// actuation through approvals (k of the policy, single use, expiry).

import assert from 'node:assert/strict';
import { request } from 'node:http';
import { after, before, describe, it } from 'node:test';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { DEVICE_AUDIENCE } from '../../controlplane/settings.ts';
import { toBase64Url } from '../../protocol/bytes.ts';
import { canonicalBytes } from '../../protocol/canonical-json.ts';
import { parseJwks } from '../../protocol/jwks.ts';
import { approverPublicKey, QUORUM_APPROVAL_CONTEXT, type QuorumPolicy, verifyQuorum } from '../../protocol/quorum.ts';
import { ed25519KeyPair, signEd25519 } from '../../protocol/signing.ts';
import { verifyRuntimeToken } from '../../protocol/tokens.ts';
import {
  api,
  mintCallerToken,
  mintEnrollToken,
  SimDevice,
  type SimSession,
  startTestControlPlane,
  type TestControlPlane,
} from '../support/controlplane.ts';

async function mcpClient(cp: TestControlPlane, token: string): Promise<Client> {
  const client = new Client({ name: 'test', version: '1' });
  await client.connect(
    new StreamableHTTPClientTransport(new URL(`${cp.url}/mcp`), {
      requestInit: { headers: { authorization: `Bearer ${token}` } },
    }),
  );
  return client;
}

const text = (r: unknown) => ((r as CallToolResult).content[0] as { text: string }).text;

describe('MCP gateway', () => {
  let cp: TestControlPlane;
  let session: SimSession;
  let device: SimDevice;
  const approvers = ['ann', 'bob', 'cid'].map((id) => ({ id, seed: ed25519KeyPair().seed }));
  before(async () => {
    cp = await startTestControlPlane();
    device = new SimDevice('greenhouse-1');
    await device.enroll(cp, await mintEnrollToken(cp));
    session = await device.session();
    session.tools.set('soil.read_moisture', (args) => ({ bed: args.bed, moisturePercent: 41.5 }));
    session.tools.set('fan.set', (args) => ({ speedPercent: args.speedPercent, previousSpeedPercent: 0 }));
    session.tools.set('valve.open', (args) => ({ bed: args.bed, closesInS: args.durationS }));
  });
  after(async () => {
    session.close();
    await cp.close();
  });

  it('lists the tools of callable devices as <device>.<tool> with annotations from the safety class', async () => {
    const client = await mcpClient(cp, await mintCallerToken(cp, { role: 'actuator', subject: 'alice' }));
    const { tools } = await client.listTools();
    const byName = new Map(tools.map((t) => [t.name, t]));
    assert.deepEqual([...byName.keys()].sort(), [
      'greenhouse-1.air.read_climate',
      'greenhouse-1.fan.set',
      'greenhouse-1.soil.read_moisture',
      'greenhouse-1.valve.flush',
      'greenhouse-1.valve.open',
    ]);
    assert.equal(byName.get('greenhouse-1.soil.read_moisture')?.annotations?.readOnlyHint, true);
    assert.equal(byName.get('greenhouse-1.valve.open')?.annotations?.destructiveHint, true);
    assert.equal(byName.get('greenhouse-1.fan.set')?.annotations?.destructiveHint, false);
    await client.close();
  });

  it('lists and allows only what the role and scopes allow', async () => {
    const viewer = await mcpClient(cp, await mintCallerToken(cp, { role: 'viewer', subject: 'val' }));
    const names = (await viewer.listTools()).tools.map((t) => t.name);
    assert.deepEqual(names.sort(), ['greenhouse-1.air.read_climate', 'greenhouse-1.soil.read_moisture']);
    const refused = await viewer.callTool({ name: 'greenhouse-1.fan.set', arguments: { speedPercent: 10 } });
    assert.equal(refused.isError, true);
    assert.match(text(refused), /^FORBIDDEN/);
    await viewer.close();
    const narrow = await mcpClient(
      cp,
      await mintCallerToken(cp, { role: 'operator', subject: 'ned', scopes: [`${cp.tid}/*/soil.*:call`] }),
    );
    assert.deepEqual(
      (await narrow.listTools()).tools.map((t) => t.name),
      ['greenhouse-1.soil.read_moisture'],
    );
    await narrow.close();
  });

  it('forwards a call with a per-call token the device can verify, and returns the result', async () => {
    const client = await mcpClient(cp, await mintCallerToken(cp, { role: 'operator', subject: 'olga' }));
    const seen = session.next('tool.call');
    const r = await client.callTool({ name: 'greenhouse-1.soil.read_moisture', arguments: { bed: 2 } });
    assert.deepEqual(r.structuredContent, { bed: 2, moisturePercent: 41.5 });
    const call = await seen;
    const jwks = parseJwks(JSON.stringify(device.enrollment!.jwks));
    const v = await verifyRuntimeToken(call.body.token, {
      jwks,
      clock: { nowMs: () => Date.now(), monotonicMs: () => performance.now() },
      issuer: cp.url,
      audience: DEVICE_AUDIENCE,
      tid: cp.tid,
    });
    assert.equal(v.claims.sub, 'olga');
    assert.equal(v.claims.dev, device.did);
    assert.equal(v.claims.scope, `${cp.tid}/${device.did}/soil.read_moisture:call`);
    // Bad arguments never reach the device.
    const bad = await client.callTool({ name: 'greenhouse-1.soil.read_moisture', arguments: { bed: 9 } });
    assert.match(text(bad), /^ARGS_INVALID/);
    const unknown = await client.callTool({ name: 'greenhouse-9.soil.read_moisture', arguments: { bed: 1 } });
    assert.match(text(unknown), /^DEVICE_UNKNOWN/);
    await client.close();
  });

  it('refuses callers without a token, with an operator key, and requests with a foreign Host', async () => {
    const post = (headers: Record<string, string>) =>
      fetch(`${cp.url}/mcp`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', ...headers },
        body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list' }),
      });
    assert.equal((await post({})).status, 401);
    assert.equal((await post({ authorization: `Bearer ${cp.operatorKey}` })).status, 403);
    const token = await mintCallerToken(cp, { role: 'viewer', subject: 'v2' });
    // DNS rebinding: a page on evil.example resolving to 127.0.0.1 sends Host: evil.example (fetch cannot set Host).
    const rebinding = await new Promise<number>((resolve, reject) => {
      const r = request(
        {
          host: '127.0.0.1',
          port: cp.port,
          path: '/mcp',
          method: 'POST',
          headers: {
            host: 'evil.example',
            authorization: `Bearer ${token}`,
            'content-type': 'application/json',
            accept: 'application/json, text/event-stream',
          },
        },
        (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        },
      );
      r.on('error', reject);
      r.end(JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list' }));
    });
    assert.equal(rebinding, 403);
    const origin = await post({ authorization: `Bearer ${token}`, origin: 'http://evil.example' });
    assert.equal(origin.status, 403);
  });

  it('holds physical actuation for k approvals, then runs it once with a quorum token the device verifies', async () => {
    const policyBody = {
      approvers: approvers.map((a) => ({ id: a.id, publicKey: approverPublicKey(a.seed) })),
      rules: [{ tool: 'valve.*', k: 2 }],
    };
    const set = await api(cp.url, '/v1/operator/policy', { method: 'PUT', body: policyBody, auth: cp.operatorKey });
    assert.equal(set.status, 200);
    const policy = (await session.next('policy.update')).body.policy as QuorumPolicy;
    const client = await mcpClient(cp, await mintCallerToken(cp, { role: 'actuator', subject: 'alice' }));
    const args = { bed: 3, durationS: 30 };
    const held = await client.callTool({ name: 'greenhouse-1.valve.open', arguments: args });
    assert.equal(held.isError, true);
    assert.match(text(held), /^NEEDS_APPROVAL/);
    const requestId = (held._meta as Record<string, { requestId: string }>)['outpost/approval']!.requestId;
    assert.ok(text(held).includes(requestId));
    // Calling again before approval reuses the same request.
    const again = await client.callTool({ name: 'greenhouse-1.valve.open', arguments: args });
    assert.equal((again._meta as Record<string, { requestId: string }>)['outpost/approval']!.requestId, requestId);

    const approverToken = await mintCallerToken(cp, { role: 'approver', subject: 'ann-token' });
    const view = await api(cp.url, `/v1/approvals/${requestId}`, { auth: approverToken });
    assert.deepEqual(view.body.args, args);
    const request = view.body.request as Record<string, unknown>;
    const sign = (a: (typeof approvers)[number]) =>
      toBase64Url(signEd25519(a.seed, QUORUM_APPROVAL_CONTEXT, canonicalBytes(request)));
    // A signature by a key not in the policy, or under another approver's name, is refused.
    const forged = await api(cp.url, `/v1/approvals/${requestId}/approve`, {
      body: { approver: 'ann', sig: sign(approvers[1]!) },
      auth: approverToken,
    });
    assert.equal(forged.body.error?.code, 'APPROVAL_INVALID');
    const first = await api(cp.url, `/v1/approvals/${requestId}/approve`, {
      body: { approver: 'ann', sig: sign(approvers[0]!) },
      auth: approverToken,
    });
    assert.equal(first.body.status, 'pending');
    // The same approver twice still counts once.
    await api(cp.url, `/v1/approvals/${requestId}/approve`, {
      body: { approver: 'ann', sig: sign(approvers[0]!) },
      auth: approverToken,
    });
    const second = await api(cp.url, `/v1/approvals/${requestId}/approve`, {
      body: { approver: 'cid', sig: sign(approvers[2]!) },
      auth: approverToken,
    });
    assert.equal(second.body.status, 'approved');

    // Different arguments are not what was approved.
    const other = await client.callTool({ name: 'greenhouse-1.valve.open', arguments: { bed: 3, durationS: 31 } });
    assert.match(text(other), /^NEEDS_APPROVAL/);
    const seen = session.next('tool.call', (c) => c.body.tool === 'valve.open');
    const ran = await client.callTool({ name: 'greenhouse-1.valve.open', arguments: args });
    assert.deepEqual(ran.structuredContent, { bed: 3, closesInS: 30 });
    const call = await seen;
    const verified = verifyQuorum(call.body.quorum!, {
      policy,
      tid: cp.tid,
      device: device.did,
      tool: 'valve.open',
      args: call.body.args,
      clock: { nowMs: () => Date.now(), monotonicMs: () => performance.now() },
    });
    assert.deepEqual([...verified.approvers].sort(), ['ann', 'cid']);
    // Single use: the next identical call needs a new approval.
    const third = await client.callTool({ name: 'greenhouse-1.valve.open', arguments: args });
    assert.match(text(third), /^NEEDS_APPROVAL/);
    assert.notEqual((third._meta as Record<string, { requestId: string }>)['outpost/approval']!.requestId, requestId);
    const used = await api(cp.url, `/v1/approvals/${requestId}`, { auth: cp.operatorKey });
    assert.equal(used.body.status, 'used');
    // Another caller's call does not use alice's approvals.
    const mallory = await mcpClient(cp, await mintCallerToken(cp, { role: 'actuator', subject: 'mallory' }));
    const m = await mallory.callTool({ name: 'greenhouse-1.valve.open', arguments: args });
    assert.match(text(m), /^NEEDS_APPROVAL/);
    await mallory.close();
    await client.close();
  });

  it('reports a device that is gone or silent as a tool error, not a protocol error', async () => {
    const quiet = new SimDevice('quiet-1');
    await quiet.enroll(cp, await mintEnrollToken(cp));
    const s = await quiet.session(); // no handlers: it never answers
    const client = await mcpClient(cp, await mintCallerToken(cp, { role: 'viewer', subject: 'v3' }));
    const pending = client.callTool({ name: 'quiet-1.air.read_climate', arguments: {} });
    await s.next('tool.call');
    s.close();
    const r = await pending;
    assert.equal(r.isError, true);
    assert.match(text(r), /^(SESSION_CLOSED|DEVICE_OFFLINE)/);
    const offline = await client.callTool({ name: 'quiet-1.air.read_climate', arguments: {} });
    assert.match(text(offline), /^DEVICE_OFFLINE/);
    await client.close();
  });
});
