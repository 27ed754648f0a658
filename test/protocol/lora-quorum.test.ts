import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { FakeClock } from '../../protocol/clock.ts';
import { decodeToolCall, encodeToolCall } from '../../protocol/lora.ts';
import { fromLoraQuorum, toLoraQuorum } from '../../protocol/lora-quorum.ts';
import { type QuorumPolicy, type QuorumToken, verifyQuorum } from '../../protocol/quorum.ts';
import { vectorJson } from '../support/protocol-vectors.ts';

interface QuorumFile {
  policy: QuorumPolicy;
  verifyAtMs: number;
  vectors: { name: string; request: QuorumToken['request']; approvals: QuorumToken['approvals']; args: unknown }[];
}

const file = vectorJson<QuorumFile>('quorum', 'quorum-tokens.json');

describe('quorum tokens in LoRa form', () => {
  for (const v of file.vectors) {
    it(`${v.name}: rebuilt on the device, the token verifies; other arguments do not`, () => {
      const token: QuorumToken = { request: v.request, approvals: v.approvals };
      const lora = toLoraQuorum(token, file.policy);
      assert.ok(
        lora.approvals.every((a) => 'shortId' in a.approver),
        'policy approvers travel as short ids',
      );
      const call = decodeToolCall(
        encodeToolCall({ callId: 'c1', tool: { name: v.request.tool }, quorum: lora, args: v.args as never }),
      );
      const rebuilt = fromLoraQuorum(call.quorum!, {
        tid: v.request.tid,
        device: v.request.device,
        tool: v.request.tool,
        args: call.args,
        policy: file.policy,
      });
      assert.deepEqual(rebuilt, token);
      const options = {
        policy: file.policy,
        tid: v.request.tid,
        device: v.request.device,
        tool: v.request.tool,
        args: call.args,
        clock: new FakeClock(file.verifyAtMs),
      };
      assert.doesNotThrow(() => verifyQuorum(rebuilt, options));
      const tampered = fromLoraQuorum(call.quorum!, { ...options, args: { other: true } });
      assert.throws(() => verifyQuorum(tampered, options), { code: 'QUORUM_ARGS_MISMATCH' });
    });
  }

  it('a short id naming no approver fails the token closed', () => {
    const v = file.vectors[0]!;
    const lora = toLoraQuorum({ request: v.request, approvals: v.approvals }, file.policy);
    const rebuilt = fromLoraQuorum(lora, {
      tid: v.request.tid,
      device: v.request.device,
      tool: v.request.tool,
      args: v.args,
      policy: { ...file.policy, approvers: file.policy.approvers.slice(0, 1) },
    });
    assert.ok(rebuilt.approvals.some((a) => a.approver.startsWith('unresolved.')));
    assert.throws(
      () =>
        verifyQuorum(rebuilt, {
          policy: file.policy,
          tid: v.request.tid,
          device: v.request.device,
          tool: v.request.tool,
          args: v.args,
          clock: new FakeClock(file.verifyAtMs),
        }),
      { code: 'QUORUM_UNKNOWN_APPROVER' },
    );
  });

  it('approvers outside the policy travel by id', () => {
    const v = file.vectors[0]!;
    const lora = toLoraQuorum({ request: v.request, approvals: v.approvals });
    assert.ok(lora.approvals.every((a) => 'id' in a.approver));
  });
});
