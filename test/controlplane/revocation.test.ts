import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { toBase64Url } from '../../protocol/bytes.ts';
import { DEVICE_TOKEN_PROOF_CONTEXT, deviceTokenProofMessage } from '../../protocol/enroll-proof.ts';
import { signEd25519 } from '../../protocol/signing.ts';
import {
  api,
  mintCallerToken,
  mintEnrollToken,
  SimDevice,
  startTestControlPlane,
  type TestControlPlane,
} from '../support/controlplane.ts';

describe('revocation', () => {
  let cp: TestControlPlane;
  before(async () => {
    cp = await startTestControlPlane();
  });
  after(() => cp.close());

  it('closes the session, refuses the device’s tokens and its re-enrollment, and tells gateways', async () => {
    const d = new SimDevice('stolen');
    await d.enroll(cp, await mintEnrollToken(cp));
    const s = await d.session();
    const gw = new SimDevice('gateway-1');
    await gw.enroll(cp, await mintEnrollToken(cp, { role: 'gateway' }));
    const g = await gw.session();
    const r = await api(cp.url, '/v1/operator/devices/stolen/revoke', {
      body: { reason: 'stolen from the field' },
      auth: cp.operatorKey,
    });
    assert.equal(r.status, 200);
    assert.deepEqual((await s.next('revoke')).body, { kind: 'device', device: d.did });
    assert.equal((await s.whenClosed()).code, 1008);
    assert.deepEqual((await g.next('revoke')).body, { kind: 'device', device: d.did });
    // Its session token no longer opens a session.
    const again = await d.connect();
    void again.hello();
    assert.equal((await again.next('error')).body.code, 'HANDSHAKE_FAILED');
    // No fresh token by proof of key, no re-enrollment.
    const c = await api(cp.url, '/v1/devices/challenge', { body: { device: d.did } });
    const challenge = c.body.challenge as string;
    const proof = toBase64Url(
      signEd25519(d.seed, DEVICE_TOKEN_PROOF_CONTEXT, deviceTokenProofMessage(d.did, challenge)),
    );
    assert.equal(
      (await api(cp.url, '/v1/devices/token', { body: { v: 1, device: d.did, challenge, proof } })).body.error?.code,
      'DEVICE_REVOKED',
    );
    assert.equal(
      (await api(cp.url, '/v1/devices/enroll', { body: d.enrollBody(await mintEnrollToken(cp)) })).body.error?.code,
      'DEVICE_REVOKED',
    );
    // Gateways catch up through the list.
    const list = await api(cp.url, '/v1/revocations?after=0', { auth: gw.token });
    const rev = (list.body.revocations as { kind: string; subject: string; seq: number }[]).find(
      (x) => x.subject === d.did,
    );
    assert.equal(rev?.kind, 'device');
    const later = await api(cp.url, `/v1/revocations?after=${rev!.seq}`, { auth: gw.token });
    assert.deepEqual(later.body.revocations, []);
    g.close();
  });

  it('revokes a caller token by jti: refused at once, and devices are told', async () => {
    const d = new SimDevice('listener');
    await d.enroll(cp, await mintEnrollToken(cp));
    const s = await d.session();
    const minted = await api(cp.url, '/v1/operator/tokens', {
      body: { role: 'admin', subject: 'temp' },
      auth: cp.operatorKey,
    });
    const token = minted.body.token as string;
    assert.equal((await api(cp.url, '/v1/operator/devices', { auth: token })).status, 200);
    await api(cp.url, '/v1/operator/tokens/revoke', { body: { jti: minted.body.jti }, auth: cp.operatorKey });
    const refused = await api(cp.url, '/v1/operator/devices', { auth: token });
    assert.equal(refused.body.error?.code, 'TOKEN_REVOKED');
    const rv = await s.next('revoke');
    assert.equal(rv.body.kind, 'token');
    // The revocation survives a restart.
    s.close();
    await cp.restart();
    assert.equal((await api(cp.url, '/v1/operator/devices', { auth: token })).body.error?.code, 'TOKEN_REVOKED');
    assert.equal(
      (await api(cp.url, '/v1/revocations', { auth: await mintCallerToken(cp, { role: 'viewer', subject: 'v' }) }))
        .status,
      403,
    );
  });
});

describe('operator authority of tokens', () => {
  let cp: TestControlPlane;
  before(async () => {
    cp = await startTestControlPlane();
  });
  after(() => cp.close());

  it('takes an admin token with an admin scope over everything, and nothing narrower', async () => {
    const wide = await mintCallerToken(cp, { role: 'admin', subject: 'root-ish' });
    assert.equal((await api(cp.url, '/v1/operator/devices', { auth: wide })).status, 200);
    const narrow = await mintCallerToken(cp, {
      role: 'admin',
      subject: 'valves',
      scopes: [`${cp.tid}/*/valve.*:admin`],
    });
    assert.equal((await api(cp.url, '/v1/operator/devices', { auth: narrow })).body.error?.code, 'FORBIDDEN');
    const actuator = await mintCallerToken(cp, { role: 'actuator', subject: 'a' });
    assert.equal(
      (await api(cp.url, '/v1/operator/enroll-token', { body: {}, auth: actuator })).body.error?.code,
      'FORBIDDEN',
    );
  });
});
