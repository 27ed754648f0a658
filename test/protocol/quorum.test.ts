import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { canonicalize, parseJson } from '../../protocol/canonical-json.ts';
import { FakeClock } from '../../protocol/clock.ts';
import { didKeyFromEd25519 } from '../../protocol/did-key.ts';
import { isOutpostError } from '../../protocol/errors.ts';
import {
  type ApprovalRequest,
  approverPublicKey,
  argsHash,
  checkPolicyUpdate,
  decodeQuorumToken,
  encodeQuorumToken,
  MAX_QUORUM_TOKEN_BYTES,
  type PolicyEndorsement,
  parseQuorumPolicy,
  type QuorumPolicy,
  type QuorumToken,
  quorumTokenFromText,
  quorumTokenToText,
  requiredApprovals,
  signApproval,
  signPolicyUpdate,
  type VerifyQuorumOptions,
  verifyQuorum,
} from '../../protocol/quorum.ts';
import { assertDecoderTotal, jsonTextInputs } from '../support/fuzz.ts';
import { seedFromHex, vectorJson } from '../support/protocol-vectors.ts';

interface QuorumCase {
  name: string;
  tool: string;
  args: unknown;
  safetyClass: 'physical_actuation';
  requiredK: number;
  request: ApprovalRequest;
  requestCanonicalText: string;
  approvals: QuorumToken['approvals'];
  tokenHex: string;
  tokenBase64url: string;
  tokenBytes: number;
}
const v = vectorJson<{
  approvers: { id: string; ed25519SeedHex: string }[];
  policy: QuorumPolicy;
  verifyAtMs: number;
  vectors: QuorumCase[];
  rejects: {
    name: string;
    tokenHex: string;
    tool?: string;
    args?: unknown;
    device?: string;
    verifyAtMs?: number;
    error: string;
  }[];
}>('quorum', 'quorum-tokens.json');
const seeds = new Map(v.approvers.map((a) => [a.id, seedFromHex(a.ed25519SeedHex)]));
const k2 = v.vectors.find((c) => c.requiredK === 2)!;
const k3 = v.vectors.find((c) => c.requiredK === 3)!;
const hexBytes = (hex: string) => new Uint8Array(Buffer.from(hex, 'hex'));
const bytesOf = (c: QuorumCase) => hexBytes(c.tokenHex);

function opts(c: QuorumCase, o: Partial<VerifyQuorumOptions> = {}): VerifyQuorumOptions {
  return {
    policy: v.policy,
    tid: c.request.tid,
    device: c.request.device,
    tool: c.tool,
    args: structuredClone(c.args),
    clock: new FakeClock(v.verifyAtMs),
    ...o,
  };
}

function tokenOf(request: ApprovalRequest, signers: string[]): QuorumToken {
  return { request, approvals: signers.map((id) => signApproval(request, id, seeds.get(id)!)) };
}

describe('quorum: vectors', () => {
  for (const c of v.vectors) {
    it(`${c.name}: signs, encodes and decodes byte for byte (${c.tokenBytes} bytes)`, () => {
      assert.equal(canonicalize(c.request), c.requestCanonicalText);
      assert.equal(c.request.argsHash, argsHash(c.args));
      const token = tokenOf(
        c.request,
        c.approvals.map((a) => a.approver),
      );
      assert.deepEqual(token.approvals, c.approvals);
      const bytes = encodeQuorumToken(token);
      assert.deepEqual(bytes, bytesOf(c));
      assert.equal(bytes.length, c.tokenBytes);
      assert.equal(quorumTokenToText(token), c.tokenBase64url);
      assert.deepEqual(decodeQuorumToken(bytes), token);
      assert.deepEqual(quorumTokenFromText(c.tokenBase64url), token);
    });

    it(`${c.name}: verifies offline and returns the nonce`, () => {
      assert.equal(requiredApprovals(v.policy, c.tool, 'physical_actuation'), c.requiredK);
      for (const form of [bytesOf(c), c.tokenBase64url, decodeQuorumToken(bytesOf(c))]) {
        const r = verifyQuorum(form, opts(c));
        assert.equal(r.nonce, c.request.nonce);
        assert.equal(r.requestId, c.request.requestId);
        assert.equal(r.expMs, c.request.expMs);
        assert.deepEqual(
          r.approvers,
          c.approvals.map((a) => a.approver),
        );
      }
    });
  }

  it('argument order does not matter, argument values do', () => {
    verifyQuorum(k2.tokenBase64url, opts(k2, { args: { durationS: 30, position: 'open' } }));
    assert.throws(() => verifyQuorum(k2.tokenBase64url, opts(k2, { args: { durationS: 31, position: 'open' } })), {
      code: 'QUORUM_ARGS_MISMATCH',
    });
  });
});

describe('quorum: reject vectors', () => {
  for (const c of v.rejects) {
    it(`${c.name}: ${c.error}`, () =>
      assert.throws(
        () =>
          verifyQuorum(
            hexBytes(c.tokenHex),
            opts(k2, {
              ...(c.tool ? { tool: c.tool } : {}),
              ...(c.args ? { args: c.args } : {}),
              ...(c.device ? { device: c.device } : {}),
              ...(c.verifyAtMs ? { clock: new FakeClock(c.verifyAtMs) } : {}),
            }),
          ),
        { code: c.error },
      ));
  }
});

describe('quorum: every rule denies', () => {
  const req = k2.request;
  const deny: [string, () => unknown, string][] = [
    ['too few approvers (1 of 2)', () => verifyQuorum(tokenOf(req, ['alice']), opts(k2)), 'QUORUM_TOO_FEW'],
    [
      'too few for a stricter tool rule (2 of 3)',
      () => verifyQuorum(tokenOf(k3.request, ['alice', 'bob']), opts(k3)),
      'QUORUM_TOO_FEW',
    ],
    [
      'the same approver twice',
      () => {
        const a = signApproval(req, 'alice', seeds.get('alice')!);
        return verifyQuorum({ request: req, approvals: [a, a] }, opts(k2));
      },
      'QUORUM_DUPLICATE_APPROVER',
    ],
    [
      'an approver not in the policy',
      () => {
        const mallory = signApproval(req, 'mallory', seedFromHex('ee'.repeat(32)));
        return verifyQuorum(
          { request: req, approvals: [signApproval(req, 'alice', seeds.get('alice')!), mallory] },
          opts(k2),
        );
      },
      'QUORUM_UNKNOWN_APPROVER',
    ],
    [
      'a policy member signing under another member’s id',
      () => {
        const forged = signApproval(req, 'bob', seeds.get('alice')!);
        return verifyQuorum(
          { request: req, approvals: [signApproval(req, 'alice', seeds.get('alice')!), forged] },
          opts(k2),
        );
      },
      'QUORUM_BAD_SIGNATURE',
    ],
    [
      'a signature over another request',
      () => {
        const other = { ...req, nonce: 'AAAAAAAAAAAAAAAAAAAAAA' };
        return verifyQuorum(
          {
            request: req,
            approvals: [signApproval(req, 'alice', seeds.get('alice')!), signApproval(other, 'bob', seeds.get('bob')!)],
          },
          opts(k2),
        );
      },
      'QUORUM_BAD_SIGNATURE',
    ],
    [
      'other arguments',
      () => verifyQuorum(k2.tokenBase64url, opts(k2, { args: { position: 'closed', durationS: 30 } })),
      'QUORUM_ARGS_MISMATCH',
    ],
    ['no arguments', () => verifyQuorum(k2.tokenBase64url, opts(k2, { args: {} })), 'QUORUM_ARGS_MISMATCH'],
    [
      'arguments JSON cannot hold',
      () => verifyQuorum(k2.tokenBase64url, opts(k2, { args: { n: Number.NaN } })),
      'QUORUM_ARGS_MISMATCH',
    ],
    [
      'another device',
      () => verifyQuorum(k2.tokenBase64url, opts(k2, { device: didKeyFromEd25519(new Uint8Array(32).fill(9)) })),
      'QUORUM_WRONG_DEVICE',
    ],
    ['another tool', () => verifyQuorum(k2.tokenBase64url, opts(k2, { tool: 'valve.close' })), 'QUORUM_WRONG_TOOL'],
    [
      'another tenant',
      () =>
        verifyQuorum(
          k2.tokenBase64url,
          opts(k2, {
            tid: '626da41c-ab3d-5933-bf1d-bbf0b043620d',
            policy: { ...v.policy, tid: '626da41c-ab3d-5933-bf1d-bbf0b043620d' },
          }),
        ),
      'QUORUM_WRONG_TENANT',
    ],
    [
      'a policy of another tenant',
      () =>
        verifyQuorum(
          k2.tokenBase64url,
          opts(k2, { policy: { ...v.policy, tid: '626da41c-ab3d-5933-bf1d-bbf0b043620d' } }),
        ),
      'QUORUM_WRONG_TENANT',
    ],
    [
      'expired (at expMs exactly)',
      () => verifyQuorum(k2.tokenBase64url, opts(k2, { clock: new FakeClock(req.expMs) })),
      'QUORUM_EXPIRED',
    ],
    [
      'expiring too far ahead',
      () => verifyQuorum(k2.tokenBase64url, opts(k2, { maxTtlMs: req.expMs - v.verifyAtMs - 1 })),
      'QUORUM_EXPIRY_TOO_FAR',
    ],
    [
      'a flipped signature bit',
      () => {
        const b = bytesOf(k2);
        b[b.length - 1]! ^= 1;
        return verifyQuorum(b, opts(k2));
      },
      'QUORUM_BAD_SIGNATURE',
    ],
    [
      'a flipped nonce bit',
      () => {
        const b = bytesOf(k2);
        b[100]! ^= 1; // inside the nonce (offset 97..112)
        return verifyQuorum(b, opts(k2));
      },
      'QUORUM_BAD_SIGNATURE',
    ],
    [
      'an invalid policy',
      () => verifyQuorum(k2.tokenBase64url, opts(k2, { policy: { ...v.policy, approvers: [] } })),
      'QUORUM_POLICY_INVALID',
    ],
  ];
  for (const [name, run, code] of deny) {
    it(`${name}: ${code}`, () => assert.throws(run, { code }));
  }

  it('the token is accepted again by verifyQuorum: single use is the caller’s job, keyed by the nonce', () => {
    const a = verifyQuorum(k2.tokenBase64url, opts(k2));
    const b = verifyQuorum(k2.tokenBase64url, opts(k2));
    assert.equal(a.nonce, b.nonce);
  });
});

describe('quorum: policy', () => {
  const base = v.policy;
  const bad: [string, unknown][] = [
    ['physical_actuation with k 1', { ...base, rules: [{ safetyClass: 'physical_actuation', k: 1 }] }],
    ['k larger than the approvers', { ...base, rules: [{ tool: '*', k: 4 }] }],
    [
      'duplicate approver id',
      { ...base, approvers: [base.approvers[0], { ...base.approvers[1], id: base.approvers[0]!.id }] },
    ],
    ['one key under two ids', { ...base, approvers: [base.approvers[0], { ...base.approvers[0], id: 'alias' }] }],
    ['bad tool pattern', { ...base, rules: [{ tool: 'valve*', k: 2 }] }],
    ['rule with both tool and class', { ...base, rules: [{ tool: '*', safetyClass: 'reversible', k: 2 }] }],
    ['unknown member', { ...base, note: 'x' }],
    ['no approvers', { ...base, approvers: [] }],
  ];
  for (const [name, value] of bad) {
    it(`refuses ${name}`, () => assert.throws(() => parseQuorumPolicy(value), { code: 'QUORUM_POLICY_INVALID' }));
  }

  it('k is the largest matching rule, never below 2 for physical_actuation', () => {
    const p = parseQuorumPolicy({
      ...base,
      rules: [
        { tool: 'valve.*', k: 3 },
        { safetyClass: 'reversible', k: 1 },
      ],
    });
    assert.equal(requiredApprovals(p, 'valve.open', 'physical_actuation'), 3);
    assert.equal(requiredApprovals(p, 'pump.start', 'physical_actuation'), 2);
    assert.equal(requiredApprovals(p, 'light.dim', 'reversible'), 1);
    assert.equal(requiredApprovals(p, 'soil.read', 'read_only'), 0);
    assert.equal(requiredApprovals({ ...p, rules: [] }, 'x', 'physical_actuation'), 2);
  });
});

describe('quorum: round trip', () => {
  it('decode(encode(t)) = t for arbitrary tokens', () => {
    const b64 = (n: number) =>
      fc.uint8Array({ minLength: n, maxLength: n }).map((b) => Buffer.from(b).toString('base64url'));
    const token = fc.record({
      request: fc.record({
        v: fc.constant(1 as const),
        tid: fc.uuid().map((u) => u.toLowerCase()),
        requestId: b64(16),
        device: fc.uint8Array({ minLength: 32, maxLength: 32 }).map(didKeyFromEd25519),
        tool: fc
          .array(
            fc
              .tuple(fc.constantFrom(...'abcz'), fc.string({ unit: fc.constantFrom(...'az09_'), maxLength: 12 }))
              .map(([a, b]) => a + b),
            { minLength: 2, maxLength: 4 },
          )
          .map((segs) => segs.join('.')),
        argsHash: b64(32),
        nonce: b64(16),
        expMs: fc.integer({ min: 1, max: 2 ** 48 - 1 }),
      }),
      approvals: fc.array(fc.record({ approver: fc.stringMatching(/^[a-z0-9][a-z0-9._-]{0,31}$/), sig: b64(64) }), {
        minLength: 1,
        maxLength: 16,
      }),
    });
    fc.assert(
      fc.property(token, (t) => {
        const bytes = encodeQuorumToken(t);
        assert.ok(bytes.length <= MAX_QUORUM_TOKEN_BYTES);
        // fast-check may build null-prototype objects; compare values, not prototypes.
        assert.equal(canonicalize(decodeQuorumToken(bytes)), canonicalize(t));
        assert.equal(canonicalize(quorumTokenFromText(quorumTokenToText(t))), canonicalize(t));
        assert.deepEqual(encodeQuorumToken(decodeQuorumToken(bytes)), bytes);
      }),
      { numRuns: 500 },
    );
  });
});

describe('quorum: approver keys', () => {
  it('approverPublicKey matches the policy vector', () => {
    for (const a of v.approvers) {
      assert.equal(
        approverPublicKey(seedFromHex(a.ed25519SeedHex)),
        v.policy.approvers.find((p) => p.id === a.id)!.publicKey,
      );
    }
  });
});

describe('quorum: policy updates (a control plane cannot appoint its own approvers)', () => {
  const installed = { policy: v.policy, serial: 0 };
  const rogue = approverPublicKey(new Uint8Array(32).fill(7));
  const widened: QuorumPolicy = {
    ...v.policy,
    approvers: [
      { id: 'cp-1', publicKey: rogue },
      { id: 'cp-2', publicKey: approverPublicKey(new Uint8Array(32).fill(8)) },
    ],
    rules: [{ safetyClass: 'physical_actuation', k: 2 }],
  };
  const endorse = (policy: QuorumPolicy, serial: number, signers: string[]): PolicyEndorsement => ({
    serial,
    approvals: signers.map((id) => signPolicyUpdate(policy, serial, id, seeds.get(id)!)),
  });
  const throwsCode = (fn: () => unknown, code: string) =>
    assert.throws(fn, (e: unknown) => isOutpostError(e, code), `expected ${code}`);

  it('policy takeover: replacing the approvers without their endorsement is refused', () => {
    throwsCode(() => checkPolicyUpdate(installed, widened), 'QUORUM_POLICY_UNAUTHORIZED');
    // Nor may it add one approver, lower a k, or drop a rule.
    const added = { ...v.policy, approvers: [...v.policy.approvers, { id: 'cp', publicKey: rogue }] };
    throwsCode(() => checkPolicyUpdate(installed, added), 'QUORUM_POLICY_UNAUTHORIZED');
    const lowered = { ...v.policy, rules: [v.policy.rules[0]!, { tool: 'pump.*', k: 2 }] };
    throwsCode(() => checkPolicyUpdate(installed, lowered), 'QUORUM_POLICY_UNAUTHORIZED');
    throwsCode(() => checkPolicyUpdate(installed, { ...v.policy, rules: [] }), 'QUORUM_POLICY_UNAUTHORIZED');
    // A key moved to another id is a new key for that id's old holder: still only keys already trusted.
    const swapped = {
      ...v.policy,
      approvers: v.policy.approvers.map((a, i, all) => ({ id: a.id, publicKey: all[(i + 1) % all.length]!.publicKey })),
    };
    assert.deepEqual(checkPolicyUpdate(installed, swapped), { policy: swapped, serial: 0 });
  });

  it('a policy not yet in force (fewer approvers than any physical quorum) is replaced like a first policy', () => {
    const one: QuorumPolicy = { ...v.policy, approvers: v.policy.approvers.slice(0, 1), rules: [] };
    const withRogue = { ...one, approvers: [v.policy.approvers[0]!, { id: 'cp', publicKey: rogue }] };
    assert.deepEqual(checkPolicyUpdate({ policy: one, serial: 4 }, withRogue), { policy: withRogue, serial: 4 });
    // Once two approvers are installed, a quorum is possible and the same widening is refused.
    throwsCode(
      () => checkPolicyUpdate({ policy: { ...one, approvers: v.policy.approvers.slice(0, 2) }, serial: 0 }, withRogue),
      'QUORUM_POLICY_UNAUTHORIZED',
    );
    // Once a policy was in force on the device, shrinking it below the threshold does not reopen it: otherwise a
    // control plane could remove approvers (a tightening) and then add its own.
    throwsCode(
      () => checkPolicyUpdate({ policy: one, serial: 0, wasInForce: true }, withRogue),
      'QUORUM_POLICY_UNAUTHORIZED',
    );
    // The tenant still has to match.
    throwsCode(
      () =>
        checkPolicyUpdate({ policy: one, serial: 0 }, { ...withRogue, tid: '0e6c3a3d-952c-55af-be8a-3d562dcf52c8' }),
      'QUORUM_WRONG_TENANT',
    );
  });

  it('tightening needs no endorsement: fewer approvers, higher k, more rules', () => {
    const tighter: QuorumPolicy = {
      ...v.policy,
      approvers: v.policy.approvers.slice(0, 3),
      rules: [
        { safetyClass: 'physical_actuation', k: 3 },
        { tool: 'pump.*', k: 3 },
        { tool: 'valve.open', k: 3 },
      ],
    };
    assert.deepEqual(checkPolicyUpdate(installed, tighter), { policy: tighter, serial: 0 });
    const fewer: QuorumPolicy = { ...v.policy, approvers: v.policy.approvers.slice(0, 2), rules: [] };
    // Dropping the pump.* k=3 rule is a weakening even though only two approvers remain.
    throwsCode(() => checkPolicyUpdate(installed, fewer), 'QUORUM_POLICY_UNAUTHORIZED');
  });

  it('a widening endorsed by the strictest k of the installed policy is accepted, with its serial', () => {
    // The installed policy's strictest rule is pump.* k = 3: three of its approvers must endorse.
    throwsCode(() => checkPolicyUpdate(installed, widened, endorse(widened, 1, ['alice', 'bob'])), 'QUORUM_TOO_FEW');
    const ok = checkPolicyUpdate(installed, widened, endorse(widened, 1, ['alice', 'bob', 'carol']));
    assert.deepEqual(ok, { policy: widened, serial: 1 });
  });

  it('endorsements bind the exact policy, the tenant and the serial, and count only installed approvers', () => {
    const e = endorse(widened, 5, ['alice', 'bob', 'carol']);
    const other = {
      ...widened,
      rules: [
        { safetyClass: 'physical_actuation' as const, k: 2 },
        { tool: 'x.*', k: 1 },
      ],
    };
    throwsCode(() => checkPolicyUpdate(installed, other, e), 'QUORUM_BAD_SIGNATURE');
    throwsCode(() => checkPolicyUpdate(installed, widened, { ...e, serial: 6 }), 'QUORUM_BAD_SIGNATURE');
    const dup = { serial: 5, approvals: [e.approvals[0]!, e.approvals[0]!, e.approvals[1]!] };
    throwsCode(() => checkPolicyUpdate(installed, widened, dup), 'QUORUM_DUPLICATE_APPROVER');
    // The new policy's own approvers (the control plane's keys) do not count.
    const byRogues = {
      serial: 5,
      approvals: [
        signPolicyUpdate(widened, 5, 'cp-1', new Uint8Array(32).fill(7)),
        signPolicyUpdate(widened, 5, 'cp-2', new Uint8Array(32).fill(8)),
        e.approvals[0]!,
      ],
    };
    throwsCode(() => checkPolicyUpdate(installed, widened, byRogues), 'QUORUM_UNKNOWN_APPROVER');
    // Another tenant's policy is never an update.
    throwsCode(
      () => checkPolicyUpdate(installed, { ...widened, tid: '00000000-0000-5000-8000-000000000000' }, e),
      'QUORUM_WRONG_TENANT',
    );
  });

  it('policy rollback: an endorsement at or below the installed serial is refused', () => {
    // dave is added with the approvers' endorsement, later removed (a tightening, allowed), and the control plane
    // then replays the old endorsement to bring his (since compromised) key back.
    const withDave = { ...v.policy, approvers: [...v.policy.approvers, { id: 'dave', publicKey: rogue }] };
    const e = endorse(withDave, 3, ['alice', 'bob', 'carol']);
    const added = checkPolicyUpdate(installed, withDave, e);
    assert.equal(added.serial, 3);
    const removed = checkPolicyUpdate(added, v.policy);
    assert.deepEqual(removed, { policy: v.policy, serial: 3 });
    throwsCode(() => checkPolicyUpdate(removed, withDave, e), 'QUORUM_POLICY_STALE');
  });

  it('is total on arbitrary inputs', () => {
    const r = assertDecoderTotal(jsonTextInputs([widened, endorse(widened, 1, ['alice'])]), (text) => {
      const value = parseJson(text, 1 << 16) as { policy?: unknown; serial?: unknown };
      checkPolicyUpdate(installed, value, value as unknown as PolicyEndorsement);
    });
    assert.ok(r.rejected > 0);
  });
});
