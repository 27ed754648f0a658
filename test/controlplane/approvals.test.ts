// Approval requests in time: they expire, and an expired approval is never used.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  approve,
  denyApproval,
  getApproval,
  listApprovals,
  openApprovalRequest,
} from '../../controlplane/approvals.ts';
import { authenticate } from '../../controlplane/auth.ts';
import { isControlPlaneError } from '../../controlplane/errors.ts';
import { setPolicy } from '../../controlplane/policy.ts';
import { toBase64Url } from '../../protocol/bytes.ts';
import { canonicalBytes } from '../../protocol/canonical-json.ts';
import { FakeClock } from '../../protocol/clock.ts';
import { approverPublicKey, QUORUM_APPROVAL_CONTEXT, QUORUM_DENIAL_CONTEXT } from '../../protocol/quorum.ts';
import { ed25519KeyPair, signEd25519 } from '../../protocol/signing.ts';
import { createCoreHarness, enrollCoreDevice } from '../support/hub-harness.ts';

describe('approval requests', () => {
  it('expire: late signatures are refused and the call is not run with them', async () => {
    const clock = new FakeClock(Date.UTC(2026, 3, 1));
    const h = await createCoreHarness(clock);
    try {
      const ctx = h.cp.context;
      const op = await authenticate(ctx, `Bearer ${h.operatorKey}`, 'test');
      const seeds = [ed25519KeyPair().seed, ed25519KeyPair().seed];
      await assert.rejects(
        openApprovalRequest(ctx, {
          device: (await ctx.store.getDevice((await enrollCoreDevice(h, 'early')).did))!,
          tool: { name: 'valve.open', safety_class: 'physical_actuation' } as never,
          args: {},
          requester: 'alice',
        }),
        (e) => isControlPlaneError(e, 'POLICY_MISSING'),
      );
      await setPolicy(ctx, op, {
        approvers: seeds.map((s, i) => ({ id: `a${i}`, publicKey: approverPublicKey(s) })),
        rules: [],
      });
      const dev = await enrollCoreDevice(h, 'valves');
      const record = (await ctx.store.getDevice(dev.did))!;
      const tool = record.accepted!.manifest.tools.find((t) => t.name === 'valve.open')!;
      const args = { bed: 1, durationS: 10 };
      const r = await openApprovalRequest(ctx, { device: record, tool, args, requester: 'alice' });
      assert.equal(r.k, 2);
      const view = await getApproval(ctx, op, r.requestId);
      const sig = (i: number) =>
        toBase64Url(signEd25519(seeds[i]!, QUORUM_APPROVAL_CONTEXT, canonicalBytes(view.request)));
      await approve(ctx, op, r.requestId, { approver: 'a0', sig: sig(0) });
      clock.advance(ctx.settings.approvalTtlMs);
      await assert.rejects(approve(ctx, op, r.requestId, { approver: 'a1', sig: sig(1) }), (e) =>
        isControlPlaneError(e, 'APPROVAL_EXPIRED'),
      );
      assert.equal((await getApproval(ctx, op, r.requestId)).status, 'expired');
      assert.deepEqual(
        (await listApprovals(ctx, op, 'expired')).map((a) => a.requestId),
        [r.requestId],
      );
      const key = { tid: h.tid, device: dev.did, tool: 'valve.open', argsHash: r.argsHash, requester: 'alice' };
      assert.equal(await ctx.store.consumeApproval(key, clock.nowMs()), undefined);
      // A new request is opened for the same call once the old one expired.
      const fresh = await openApprovalRequest(ctx, { device: record, tool, args, requester: 'alice' });
      assert.notEqual(fresh.requestId, r.requestId);
    } finally {
      h.close();
    }
  });
});

describe('approval denials (quorum.md §4.1)', () => {
  it('close a request only with a denial signature; an approval signature is not a denial, nor the reverse', async () => {
    const clock = new FakeClock(Date.UTC(2026, 3, 1));
    const h = await createCoreHarness(clock);
    try {
      const ctx = h.cp.context;
      const op = await authenticate(ctx, `Bearer ${h.operatorKey}`, 'test');
      const seeds = [ed25519KeyPair().seed, ed25519KeyPair().seed];
      await setPolicy(ctx, op, {
        approvers: seeds.map((s, i) => ({ id: `a${i}`, publicKey: approverPublicKey(s) })),
        rules: [],
      });
      const dev = await enrollCoreDevice(h, 'valves');
      const record = (await ctx.store.getDevice(dev.did))!;
      const tool = record.accepted!.manifest.tools.find((t) => t.name === 'valve.open')!;
      const r = await openApprovalRequest(ctx, { device: record, tool, args: { bed: 2 }, requester: 'alice' });
      const view = await getApproval(ctx, op, r.requestId);
      const sign = (i: number, context: string) =>
        toBase64Url(signEd25519(seeds[i]!, context, canonicalBytes(view.request)));
      // An approval's signature does not deny.
      await assert.rejects(
        denyApproval(ctx, op, r.requestId, { approver: 'a1', sig: sign(1, QUORUM_APPROVAL_CONTEXT) }),
        (e) => isControlPlaneError(e, 'APPROVAL_INVALID'),
      );
      // Nor does another approver's key.
      await assert.rejects(
        denyApproval(ctx, op, r.requestId, { approver: 'a0', sig: sign(1, QUORUM_DENIAL_CONTEXT) }),
        (e) => isControlPlaneError(e, 'APPROVAL_INVALID'),
      );
      assert.equal((await getApproval(ctx, op, r.requestId)).status, 'pending');
      const denied = await denyApproval(ctx, op, r.requestId, { approver: 'a1', sig: sign(1, QUORUM_DENIAL_CONTEXT) });
      assert.equal(denied.status, 'denied');
      assert.equal(denied.deniedBy, 'a1');
      assert.equal((await getApproval(ctx, op, r.requestId)).deniedBy, 'a1', 'stored');
      // A denial signature never counts as an approval, and a closed request takes no more decisions.
      await assert.rejects(
        approve(ctx, op, r.requestId, { approver: 'a0', sig: sign(0, QUORUM_APPROVAL_CONTEXT) }),
        (e) => isControlPlaneError(e, 'APPROVAL_CLOSED'),
      );
      assert.deepEqual(
        (await listApprovals(ctx, op, 'denied')).map((a) => a.requestId),
        [r.requestId],
      );
      // The same call opens a new request.
      const fresh = await openApprovalRequest(ctx, { device: record, tool, args: { bed: 2 }, requester: 'alice' });
      assert.notEqual(fresh.requestId, r.requestId);
      assert.equal(fresh.status, 'pending');
    } finally {
      h.close();
    }
  });
});
