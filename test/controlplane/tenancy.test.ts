// Two tenants on one control plane: nothing of one is visible or actionable from the other — devices, tokens,
// approvers, telemetry, the hub.

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { toBase64Url } from '../../protocol/bytes.ts';
import { canonicalBytes } from '../../protocol/canonical-json.ts';
import { approverPublicKey, QUORUM_APPROVAL_CONTEXT } from '../../protocol/quorum.ts';
import { ed25519KeyPair, signEd25519 } from '../../protocol/signing.ts';
import {
  api,
  mintCallerToken,
  mintEnrollToken,
  readings,
  SimDevice,
  SimSession,
  startTestControlPlane,
  type TestControlPlane,
} from '../support/controlplane.ts';

describe('tenant isolation', () => {
  let cp: TestControlPlane;
  /** The second tenant, seen through its own operator key. */
  let b: TestControlPlane;
  let deviceA: SimDevice;
  let deviceB: SimDevice;
  let sessionA: SimSession;
  before(async () => {
    cp = await startTestControlPlane({ tenant: 'alpha' });
    const created = await api(cp.url, '/v1/operator/tenants', { body: { name: 'beta' }, auth: cp.operatorKey });
    assert.equal(created.status, 201);
    b = { ...cp, operatorKey: created.body.operatorKey as string, tid: (created.body.tenant as { tid: string }).tid };
    deviceA = new SimDevice('shared-name');
    deviceB = new SimDevice('shared-name'); // the same label is fine in another tenant
    await deviceA.enroll(cp, await mintEnrollToken(cp));
    await deviceB.enroll(cp, await mintEnrollToken(b));
    sessionA = await deviceA.session();
    sessionA.tools.set('soil.read_moisture', () => ({ bed: 1, moisturePercent: 1 }));
  });
  after(async () => {
    sessionA.close();
    await cp.close();
  });

  it('gives each tenant its own id and hub, and only root keys create tenants', async () => {
    assert.notEqual(b.tid, cp.tid);
    assert.equal(deviceB.enrollment!.wssUrl.endsWith(b.tid), true);
    const r = await api(cp.url, '/v1/operator/tenants', { body: { name: 'gamma' }, auth: b.operatorKey });
    assert.equal(r.body.error?.code, 'FORBIDDEN');
  });

  it('lists and resolves only the tenant’s own devices', async () => {
    const listA = await api(cp.url, '/v1/operator/devices', { auth: cp.operatorKey });
    const listB = await api(cp.url, '/v1/operator/devices', { auth: b.operatorKey });
    assert.deepEqual(
      (listA.body.devices as { device: string }[]).map((d) => d.device),
      [deviceA.did],
    );
    assert.deepEqual(
      (listB.body.devices as { device: string }[]).map((d) => d.device),
      [deviceB.did],
    );
    const cross = await api(cp.url, `/v1/operator/devices/${deviceA.did}`, { auth: b.operatorKey });
    assert.equal(cross.body.error?.code, 'DEVICE_UNKNOWN');
    const revoke = await api(cp.url, `/v1/operator/devices/${deviceA.did}/revoke`, { body: {}, auth: b.operatorKey });
    assert.equal(revoke.body.error?.code, 'DEVICE_UNKNOWN');
    assert.equal((await cp.host.state.store.getDevice(deviceA.did))?.status, 'active');
  });

  it('refuses a device on another tenant’s hub', async () => {
    const s = await SimSession.open(deviceB, `ws://127.0.0.1:${cp.port}/v1/hub/${cp.tid}`);
    await s.next('hello.challenge');
    s.send('hello', {
      token: deviceB.token,
      device: deviceB.did,
      agentVersion: '0',
      manifestHash: deviceB.enrollment!.manifest.hash,
      resume: { lastAckedSeq: null },
      challenge: s.challenge,
    });
    const err = await s.next('error');
    assert.ok(['UNAUTHENTICATED', 'HANDSHAKE_FAILED'].includes(err.body.code), err.body.code);
    assert.equal((await s.whenClosed()).code, 1008);
  });

  it('refuses a tenant’s token on another tenant’s devices, and shows it none of their tools', async () => {
    const tokenB = await mintCallerToken(b, { role: 'actuator', subject: 'bea' });
    const client = new Client({ name: 't', version: '1' });
    await client.connect(
      new StreamableHTTPClientTransport(new URL(`${cp.url}/mcp`), {
        requestInit: { headers: { authorization: `Bearer ${tokenB}` } },
      }),
    );
    assert.deepEqual((await client.listTools()).tools, []);
    const r = await client.callTool({ name: 'shared-name.soil.read_moisture', arguments: { bed: 1 } });
    assert.equal(r.isError, true);
    // Tenant B has a device of that name, offline; tenant A's online device is never reached.
    assert.match((r.content as { text: string }[])[0]!.text, /^DEVICE_OFFLINE/);
    await client.close();
    // Scopes naming another tenant cannot even be minted.
    const bad = await api(cp.url, '/v1/operator/tokens', {
      body: { role: 'actuator', subject: 'x', scopes: [`${cp.tid}/*/*:call`] },
      auth: b.operatorKey,
    });
    assert.equal(bad.body.error?.code, 'BAD_REQUEST');
  });

  it('keeps telemetry apart and keeps approvers to their tenant', async () => {
    sessionA.sendTelemetry(readings(1, 3));
    await sessionA.next('telemetry.ack');
    const mine = await api(cp.url, '/v1/operator/telemetry', { auth: cp.operatorKey });
    const theirs = await api(cp.url, '/v1/operator/telemetry', { auth: b.operatorKey });
    assert.equal(mine.body.total, 3);
    assert.equal(theirs.body.total, 0);
    const cross = await api(cp.url, `/v1/operator/telemetry?device=${encodeURIComponent(deviceA.did)}`, {
      auth: b.operatorKey,
    });
    assert.equal(cross.body.error?.code, 'DEVICE_UNKNOWN');

    const ann = ed25519KeyPair().seed;
    const bob = ed25519KeyPair().seed;
    const approvers = [
      { id: 'ann', publicKey: approverPublicKey(ann) },
      { id: 'bob', publicKey: approverPublicKey(bob) },
    ];
    await api(cp.url, '/v1/operator/policy', { method: 'PUT', body: { approvers, rules: [] }, auth: cp.operatorKey });
    const alice = new Client({ name: 't', version: '1' });
    await alice.connect(
      new StreamableHTTPClientTransport(new URL(`${cp.url}/mcp`), {
        requestInit: {
          headers: { authorization: `Bearer ${await mintCallerToken(cp, { role: 'actuator', subject: 'alice' })}` },
        },
      }),
    );
    const held = await alice.callTool({ name: 'shared-name.valve.open', arguments: { bed: 1, durationS: 5 } });
    const requestId = (held._meta as Record<string, { requestId: string }>)['outpost/approval']!.requestId;
    await alice.close();
    // Tenant B's approver (even with a key A's policy lists) cannot see or approve A's request.
    const approverB = await mintCallerToken(b, { role: 'approver', subject: 'ann' });
    assert.equal(
      (await api(cp.url, `/v1/approvals/${requestId}`, { auth: approverB })).body.error?.code,
      'APPROVAL_UNKNOWN',
    );
    const view = await api(cp.url, `/v1/approvals/${requestId}`, { auth: cp.operatorKey });
    const sig = toBase64Url(signEd25519(ann, QUORUM_APPROVAL_CONTEXT, canonicalBytes(view.body.request)));
    const r = await api(cp.url, `/v1/approvals/${requestId}/approve`, {
      body: { approver: 'ann', sig },
      auth: approverB,
    });
    assert.equal(r.body.error?.code, 'APPROVAL_UNKNOWN');
    assert.deepEqual((await api(cp.url, '/v1/approvals', { auth: b.operatorKey })).body.approvals, []);
  });
});
