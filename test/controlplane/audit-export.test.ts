import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import {
  DEVICE_CHECKPOINT_CONTEXT,
  type SignedAuditExport,
  verifyAuditExportSignature,
} from '../../controlplane/audit-export.ts';
import { toBase64Url } from '../../protocol/bytes.ts';
import { canonicalBytes } from '../../protocol/canonical-json.ts';
import { signEd25519 } from '../../protocol/signing.ts';
import { AUDIT_CHECKPOINT_CONTEXT } from '../../store/audit.ts';
import {
  api,
  mintCallerToken,
  mintEnrollToken,
  SimDevice,
  startTestControlPlane,
  type TestControlPlane,
} from '../support/controlplane.ts';

describe('audit', () => {
  let cp: TestControlPlane;
  before(async () => {
    cp = await startTestControlPlane();
  });
  after(() => cp.close());

  it('exports the chain signed by the control plane’s identity; any change breaks the signature', async () => {
    await new SimDevice('audited').enroll(cp, await mintEnrollToken(cp));
    const r = await api(cp.url, '/v1/operator/audit/export', { auth: cp.operatorKey });
    const doc = r.body as unknown as SignedAuditExport;
    assert.equal(doc.chainVerified, true);
    assert.equal(doc.signer, cp.host.state.identityDid);
    const kinds = doc.lines.map((l) => (l as { kind?: string }).kind);
    for (const k of ['tenant.create', 'operator_key.create', 'enroll_token.mint', 'enroll'])
      assert.ok(kinds.includes(k), k);
    assert.equal(verifyAuditExportSignature(doc, cp.host.state.identityDid), true);
    const edited = structuredClone(doc) as unknown as { lines: { decision?: string }[] };
    edited.lines[0]!.decision = 'deny';
    assert.equal(verifyAuditExportSignature(edited as unknown as SignedAuditExport), false);
    assert.equal(verifyAuditExportSignature(doc, 'did:key:z6MkjchhfUsD6mmvni8mCdXHw216Xrm9bQe2mBH1P5RDjVJG'), false);
    // The chain spans tenants: admins and non-root keys of other tenants cannot export it.
    const admin = await mintCallerToken(cp, { role: 'admin', subject: 'adm' });
    assert.equal((await api(cp.url, '/v1/operator/audit/export', { auth: admin })).body.error?.code, 'FORBIDDEN');
  });

  it('anchors a device’s signed checkpoints and refuses a rewritten history', async () => {
    assert.equal(DEVICE_CHECKPOINT_CONTEXT, AUDIT_CHECKPOINT_CONTEXT);
    const d = new SimDevice('anchoring');
    await d.enroll(cp, await mintEnrollToken(cp));
    const checkpoint = (seq: number, macByte: number) => {
      const body = {
        v: 1,
        head_seq: seq,
        head_mac: toBase64Url(new Uint8Array(32).fill(macByte)),
        count: seq,
        ts: 1,
        key_id: d.did,
      };
      return {
        checkpoint: {
          body,
          signature: toBase64Url(signEd25519(d.seed, AUDIT_CHECKPOINT_CONTEXT, canonicalBytes(body))),
        },
      };
    };
    const post = (b: unknown) => api(cp.url, '/v1/devices/audit-checkpoint', { body: b, auth: d.token });
    assert.deepEqual((await post(checkpoint(10, 1))).body, { anchored: true, duplicate: false, headSeq: 10 });
    assert.equal((await post(checkpoint(10, 1))).body.duplicate, true);
    assert.equal((await post(checkpoint(10, 2))).body.error?.code, 'ANCHOR_CONFLICT');
    assert.equal((await post(checkpoint(20, 3))).status, 200);
    assert.equal((await post(checkpoint(15, 4))).body.error?.code, 'ANCHOR_CONFLICT');
    const forged = checkpoint(30, 5);
    forged.checkpoint.body.head_seq = 31;
    assert.equal((await post(forged)).body.error?.code, 'PROOF_INVALID');
    // Only the device itself anchors.
    assert.equal(
      (await api(cp.url, '/v1/devices/audit-checkpoint', { body: checkpoint(40, 6), auth: cp.operatorKey })).status,
      403,
    );
  });
});
