import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { calculateJwkThumbprint } from 'jose';
import {
  checkRotationPolicy,
  ed25519Thumbprint,
  type KeyRecord,
  MIN_OVERLAP_MS,
  planRotation,
  publishedJwk,
  type RotationPolicy,
  type RotationStep,
} from '../../protocol/jwks.ts';
import { ed25519KeyPair, hybridKeyPair } from '../../protocol/signing.ts';

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const policy: RotationPolicy = {
  rotateAfterMs: 30 * DAY,
  overlapMs: 2 * HOUR,
  maxTokenLifetimeMs: HOUR,
  retainRetiredMs: 7 * DAY,
};
const T0 = Date.UTC(2026, 0, 1);

/** Applies planned steps the way an issuer would, naming new keys k1, k2, … */
function apply(keys: KeyRecord[], steps: readonly RotationStep[], nowMs: number, next: () => string): KeyRecord[] {
  let out = [...keys];
  for (const s of steps) {
    if (s.kind === 'create_active') out.push({ kid: next(), state: 'active', activatedAtMs: nowMs });
    else if (s.kind === 'purge') out = out.filter((k) => k.kid !== s.kid);
    else {
      out = out.map((k) => {
        if (k.kid !== s.kid) return k;
        if (s.kind === 'demote')
          return { kid: k.kid, state: 'overlap', activatedAtMs: k.activatedAtMs, overlapSinceMs: nowMs };
        assert.equal(k.state, 'overlap');
        return { ...(k as Extract<KeyRecord, { state: 'overlap' }>), state: 'retired', retiredAtMs: nowMs };
      });
    }
  }
  return out;
}

describe('JWKS: published keys', () => {
  it('kid is the RFC 7638 thumbprint (cross-checked with jose)', async () => {
    const pub = ed25519KeyPair(new Uint8Array(32).fill(5)).publicKey;
    const jwk = publishedJwk(pub, 'active');
    assert.equal(jwk.kid, await calculateJwkThumbprint({ kty: 'OKP', crv: 'Ed25519', x: jwk.x }, 'sha256'));
    assert.equal(jwk.kid, ed25519Thumbprint(pub));
    assert.equal(jwk.pq, undefined);
  });

  it('a hybrid key carries its ML-DSA-65 half as an AKP member', () => {
    const k = hybridKeyPair(new Uint8Array(32).fill(1), new Uint8Array(32).fill(2));
    const jwk = publishedJwk(k.publicKey, 'overlap', 'hybrid-1');
    assert.equal(jwk.kid, 'hybrid-1');
    assert.equal(jwk.pq?.kty, 'AKP');
    assert.equal(Buffer.from(jwk.pq!.pub, 'base64url').length, 1952);
    assert.throws(() => publishedJwk(new Uint8Array(31), 'active'), { code: 'SIG_BAD_KEY' });
  });
});

describe('JWKS: rotation policy', () => {
  it(`refuses an overlap under ${MIN_OVERLAP_MS} ms`, () => {
    assert.throws(() => checkRotationPolicy({ ...policy, overlapMs: 899_999, maxTokenLifetimeMs: 1000 }), {
      code: 'JWKS_BAD_POLICY',
    });
    checkRotationPolicy({ ...policy, overlapMs: 900_000, maxTokenLifetimeMs: 900_000 });
  });

  it('refuses an overlap shorter than the longest token', () => {
    assert.throws(() => checkRotationPolicy({ ...policy, overlapMs: HOUR, maxTokenLifetimeMs: HOUR + 1 }), {
      code: 'JWKS_BAD_POLICY',
    });
  });

  it('refuses non-positive or fractional durations', () => {
    for (const bad of [0, -1, 1.5, Number.NaN]) {
      assert.throws(() => planRotation([], T0, { ...policy, rotateAfterMs: bad }), { code: 'JWKS_BAD_POLICY' });
    }
  });
});

describe('JWKS: planRotation', () => {
  const cases: { name: string; keys: KeyRecord[]; now: number; steps: RotationStep[]; next: number }[] = [
    {
      name: 'no key: create one',
      keys: [],
      now: T0,
      steps: [{ kind: 'create_active' }],
      next: T0 + policy.rotateAfterMs,
    },
    {
      name: 'young active key: nothing to do',
      keys: [{ kid: 'a', state: 'active', activatedAtMs: T0 }],
      now: T0 + DAY,
      steps: [],
      next: T0 + policy.rotateAfterMs,
    },
    {
      name: 'old active key: new key, old one to overlap',
      keys: [{ kid: 'a', state: 'active', activatedAtMs: T0 }],
      now: T0 + policy.rotateAfterMs,
      steps: [{ kind: 'create_active' }, { kind: 'demote', kid: 'a' }],
      next: T0 + policy.rotateAfterMs + policy.overlapMs,
    },
    {
      name: 'overlap window not over: keep verifying',
      keys: [
        { kid: 'b', state: 'active', activatedAtMs: T0 },
        { kid: 'a', state: 'overlap', activatedAtMs: T0 - DAY, overlapSinceMs: T0 },
      ],
      now: T0 + policy.overlapMs - 1,
      steps: [],
      next: T0 + policy.overlapMs,
    },
    {
      name: 'overlap window over: retire',
      keys: [
        { kid: 'b', state: 'active', activatedAtMs: T0 },
        { kid: 'a', state: 'overlap', activatedAtMs: T0 - DAY, overlapSinceMs: T0 },
      ],
      now: T0 + policy.overlapMs,
      steps: [{ kind: 'retire', kid: 'a' }],
      next: T0 + policy.overlapMs + policy.retainRetiredMs,
    },
    {
      name: 'wall clock moved backwards: no early retirement',
      keys: [
        { kid: 'b', state: 'active', activatedAtMs: T0 },
        { kid: 'a', state: 'overlap', activatedAtMs: T0 - DAY, overlapSinceMs: T0 },
      ],
      now: T0 - DAY,
      steps: [],
      next: T0 + policy.overlapMs,
    },
    {
      name: 'retired long enough: purge',
      keys: [
        { kid: 'b', state: 'active', activatedAtMs: T0 },
        { kid: 'a', state: 'retired', activatedAtMs: T0 - DAY, overlapSinceMs: T0 - DAY, retiredAtMs: T0 },
      ],
      now: T0 + policy.retainRetiredMs,
      steps: [{ kind: 'purge', kid: 'a' }],
      next: T0 + policy.rotateAfterMs,
    },
    {
      name: 'two active keys: keep the newest',
      keys: [
        { kid: 'old', state: 'active', activatedAtMs: T0 },
        { kid: 'new', state: 'active', activatedAtMs: T0 + HOUR },
      ],
      now: T0 + 2 * HOUR,
      steps: [{ kind: 'demote', kid: 'old' }],
      next: T0 + 2 * HOUR + policy.overlapMs,
    },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const plan = planRotation(c.keys, c.now, policy);
      assert.deepEqual(plan.steps, c.steps);
      assert.equal(plan.nextCheckAtMs, c.next);
    });
  }

  it('over any run of time steps (with backward jumps): one active key, overlaps honoured', () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: -DAY, max: 20 * DAY }), { minLength: 1, maxLength: 60 }),
        fc.boolean(),
        (deltas, followNextCheck) => {
          let n = 0;
          let now = T0;
          let keys: KeyRecord[] = [];
          const demotedAt = new Map<string, number>();
          for (const d of deltas) {
            const plan = planRotation(keys, now, policy);
            keys = apply(keys, plan.steps, now, () => `k${n++}`);
            for (const k of keys) if (k.state === 'overlap' && !demotedAt.has(k.kid)) demotedAt.set(k.kid, now);
            assert.equal(keys.filter((k) => k.state === 'active').length, 1);
            for (const k of keys) {
              if (k.state === 'retired') assert.ok(k.retiredAtMs - k.overlapSinceMs >= policy.overlapMs);
            }
            assert.ok(plan.nextCheckAtMs >= now);
            now = followNextCheck && d > 0 ? Math.max(now, plan.nextCheckAtMs) : now + d;
          }
        },
      ),
      { numRuns: 300 },
    );
  });
});
