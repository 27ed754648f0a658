import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { authenticate } from '../../controlplane/auth.ts';
import {
  enrollDevice,
  issueDeviceChallenge,
  mintEnrollToken as mintCore,
  refreshDeviceToken,
} from '../../controlplane/enrollment.ts';
import { isControlPlaneError } from '../../controlplane/errors.ts';
import { CONTROL_PLANE_AUDIENCE } from '../../controlplane/settings.ts';
import { toBase64Url } from '../../protocol/bytes.ts';
import { FakeClock } from '../../protocol/clock.ts';
import { DEVICE_TOKEN_PROOF_CONTEXT, deviceTokenProofMessage } from '../../protocol/enroll-proof.ts';
import { parseJwks } from '../../protocol/jwks.ts';
import { x25519KeyPair } from '../../protocol/lora-keys.ts';
import { signEd25519 } from '../../protocol/signing.ts';
import { verifyRuntimeToken } from '../../protocol/tokens.ts';
import {
  api,
  mintEnrollToken,
  SimDevice,
  startTestControlPlane,
  type TestControlPlane,
} from '../support/controlplane.ts';
import { createCoreHarness } from '../support/hub-harness.ts';

async function auditReasons(cp: TestControlPlane, kind: string): Promise<string[]> {
  const { lines } = await cp.host.state.store.exportAudit();
  return lines
    .map((l) => JSON.parse(l) as { type: string; kind?: string; reason?: string })
    .filter((e) => e.type === 'audit-entry' && e.kind === kind)
    .map((e) => e.reason!);
}

describe('enrollment over HTTP', () => {
  let cp: TestControlPlane;
  before(async () => {
    cp = await startTestControlPlane();
  });
  after(() => cp.close());

  it('trades a token, a key proof and a manifest for identity, token, JWKS and the hub URL', async () => {
    const d = new SimDevice('field-1');
    const lora = x25519KeyPair();
    const r = await api(cp.url, '/v1/devices/enroll', {
      body: d.enrollBody(await mintEnrollToken(cp), toBase64Url(lora.publicKey)),
    });
    assert.equal(r.status, 201, JSON.stringify(r.body));
    const e = r.body as unknown as {
      device: string;
      tid: string;
      wssUrl: string;
      manifest: { status: string };
      controlPlaneX25519PublicKey: unknown;
      jwks: unknown;
      runtimeToken: string;
    };
    assert.equal(e.device, d.did);
    assert.equal(e.tid, cp.tid);
    assert.equal(e.wssUrl, `ws://127.0.0.1:${cp.port}/v1/hub/${cp.tid}`);
    assert.equal(e.manifest.status, 'accepted');
    assert.equal(typeof e.controlPlaneX25519PublicKey, 'string');
    const jwks = parseJwks(JSON.stringify(e.jwks));
    const v = await verifyRuntimeToken(e.runtimeToken, {
      jwks,
      clock: { nowMs: () => Date.now(), monotonicMs: () => performance.now() },
      issuer: cp.url,
      audience: CONTROL_PLANE_AUDIENCE,
      tid: cp.tid,
    });
    assert.equal(v.claims.sub, d.did);
    assert.equal(v.claims.role, 'device');
    const stored = await cp.host.state.store.getDevice(d.did);
    assert.equal(stored?.x25519PublicKey, toBase64Url(lora.publicKey));
    assert.deepEqual(await auditReasons(cp, 'enroll'), ['OK']);
  });

  it('refuses a reused token and audits it', async () => {
    const token = await mintEnrollToken(cp);
    await new SimDevice('reuse-a').enroll(cp, token);
    const r = await api(cp.url, '/v1/devices/enroll', { body: new SimDevice('reuse-b').enrollBody(token) });
    assert.equal(r.status, 409);
    assert.equal(r.body.error?.code, 'ENROLL_TOKEN_USED');
    assert.ok((await auditReasons(cp, 'enroll')).includes('ENROLL_TOKEN_USED'));
  });

  const refusals: [string, (d: SimDevice, token: string) => Record<string, unknown>, number, string][] = [
    ['an unknown token', (d) => d.enrollBody(`oet_${'Z'.repeat(43)}`), 401, 'ENROLL_TOKEN_UNKNOWN'],
    [
      'a proof by another key',
      (d, t) => ({ ...d.enrollBody(t), proof: new SimDevice('x').enrollBody(t).proof }),
      401,
      'PROOF_INVALID',
    ],
    [
      'a manifest naming another device',
      (d, t) => ({ ...d.enrollBody(t), device: new SimDevice('y').did }),
      422,
      'MANIFEST_REFUSED',
    ],
    [
      'an invalid manifest',
      (d, t) => ({ ...d.enrollBody(t), manifest: { manifestVersion: 1 } }),
      422,
      'MANIFEST_REFUSED',
    ],
    ['a low-order X25519 key', (d, t) => d.enrollBody(t, toBase64Url(new Uint8Array(32))), 422, 'X25519_KEY_INVALID'],
    ['a body with an unknown member', (d, t) => ({ ...d.enrollBody(t), extra: true }), 400, 'BAD_REQUEST'],
  ];
  for (const [name, body, status, code] of refusals) {
    it(`refuses ${name} (${code})`, async () => {
      const d = new SimDevice(`refused-${code.toLowerCase().replaceAll('_', '-')}`.slice(0, 30));
      const r = await api(cp.url, '/v1/devices/enroll', { body: body(d, await mintEnrollToken(cp)) });
      assert.equal(r.status, status, JSON.stringify(r.body));
      assert.equal(r.body.error?.code, code);
    });
  }

  it('keeps device names unique in a tenant', async () => {
    await new SimDevice('same-name').enroll(cp, await mintEnrollToken(cp));
    const r = await api(cp.url, '/v1/devices/enroll', {
      body: new SimDevice('same-name').enrollBody(await mintEnrollToken(cp)),
    });
    assert.equal(r.body.error?.code, 'DEVICE_NAME_TAKEN');
  });

  it('holds the first manifest when the token says so', async () => {
    const d = new SimDevice('held');
    const e = await d.enroll(cp, await mintEnrollToken(cp, { holdManifest: true }));
    assert.equal(e.manifest.status, 'pending_approval');
    const r = await api(cp.url, `/v1/operator/devices/${d.did}`, { auth: cp.operatorKey });
    assert.equal((r.body.manifest as { accepted: null }).accepted, null);
  });

  it('re-enrolls a device with a new token, and refuses a revoked one', async () => {
    const d = new SimDevice('again');
    await d.enroll(cp, await mintEnrollToken(cp));
    const second = await d.enroll(cp, await mintEnrollToken(cp));
    assert.equal(second.reenrolled, true);
    await api(cp.url, `/v1/operator/devices/${d.did}/revoke`, { body: {}, auth: cp.operatorKey });
    const r = await api(cp.url, '/v1/devices/enroll', { body: d.enrollBody(await mintEnrollToken(cp)) });
    assert.equal(r.body.error?.code, 'DEVICE_REVOKED');
  });

  it('gives an enrolled device a fresh token for a proof over a challenge', async () => {
    const d = new SimDevice('re-token');
    await d.enroll(cp, await mintEnrollToken(cp));
    const c = await api(cp.url, '/v1/devices/challenge', { body: { device: d.did } });
    const challenge = c.body.challenge as string;
    const proof = toBase64Url(
      signEd25519(d.seed, DEVICE_TOKEN_PROOF_CONTEXT, deviceTokenProofMessage(d.did, challenge)),
    );
    const ok = await api(cp.url, '/v1/devices/token', { body: { v: 1, device: d.did, challenge, proof } });
    assert.equal(ok.status, 200);
    assert.equal(typeof ok.body.runtimeToken, 'string');
    // A challenge is bound to its device: another device cannot use it.
    const e = new SimDevice('thief');
    await e.enroll(cp, await mintEnrollToken(cp));
    const stolen = toBase64Url(
      signEd25519(e.seed, DEVICE_TOKEN_PROOF_CONTEXT, deviceTokenProofMessage(e.did, challenge)),
    );
    const bad = await api(cp.url, '/v1/devices/token', { body: { v: 1, device: e.did, challenge, proof: stolen } });
    assert.equal(bad.body.error?.code, 'CHALLENGE_INVALID');
  });

  it('locks out an address after repeated failures', async () => {
    const local = await startTestControlPlane({ limits: { authFailures: 3 } });
    try {
      const d = new SimDevice('guesser');
      const codes: string[] = [];
      for (let i = 0; i < 4; i++) {
        const r = await api(local.url, '/v1/devices/enroll', { body: d.enrollBody(`oet_${String(i).repeat(43)}`) });
        codes.push(r.body.error!.code);
      }
      assert.deepEqual(codes, ['ENROLL_TOKEN_UNKNOWN', 'ENROLL_TOKEN_UNKNOWN', 'LOCKED_OUT', 'LOCKED_OUT']);
      // Even a good operator key is refused from a locked-out address.
      const r = await api(local.url, '/v1/operator/devices', { auth: local.operatorKey });
      assert.equal(r.status, 429);
    } finally {
      await local.close();
    }
  });
});

describe('operator authentication', () => {
  it('locks out an address after repeated wrong operator keys, then refuses even the right one', async () => {
    const local = await startTestControlPlane({ limits: { authFailures: 3 } });
    try {
      const statuses: number[] = [];
      for (let i = 0; i < 4; i++) {
        const r = await api(local.url, '/v1/operator/devices', { auth: `opk_${String(i).repeat(43)}` });
        statuses.push(r.status);
      }
      assert.deepEqual(statuses, [401, 401, 429, 429]);
      const r = await api(local.url, '/v1/operator/devices', { auth: local.operatorKey });
      assert.equal(r.status, 429);
      assert.equal(r.body.error?.code, 'LOCKED_OUT');
    } finally {
      await local.close();
    }
  });
});

describe('enrollment in time', () => {
  it('refuses an expired token and an expired challenge', async () => {
    const clock = new FakeClock(Date.UTC(2026, 2, 1));
    const h = await createCoreHarness(clock);
    try {
      const ctx = h.cp.context;
      const principal = await authenticate(ctx, `Bearer ${h.operatorKey}`, 'test');
      const minted = await mintCore(ctx, principal, { ttlSeconds: 60 });
      clock.advance(60_000);
      const d = new SimDevice('late');
      await assert.rejects(enrollDevice(ctx, d.enrollBody(minted.token) as never, 'test'), (e) =>
        isControlPlaneError(e, 'ENROLL_TOKEN_EXPIRED'),
      );
      const fresh = await mintCore(ctx, principal, {});
      await enrollDevice(ctx, d.enrollBody(fresh.token) as never, 'test');
      const { challenge } = issueDeviceChallenge(ctx, { device: d.did });
      clock.advance(120_000);
      const proof = toBase64Url(
        signEd25519(d.seed, DEVICE_TOKEN_PROOF_CONTEXT, deviceTokenProofMessage(d.did, challenge)),
      );
      await assert.rejects(refreshDeviceToken(ctx, { v: 1, device: d.did, challenge, proof }, 'test'), (e) =>
        isControlPlaneError(e, 'CHALLENGE_INVALID'),
      );
    } finally {
      h.close();
    }
  });
});
