import assert from 'node:assert/strict';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { CONTROL_PLANE_AUDIENCE } from '../../controlplane/settings.ts';
import { FakeClock } from '../../protocol/clock.ts';
import { isOutpostError } from '../../protocol/errors.ts';
import { verifyRuntimeToken } from '../../protocol/tokens.ts';
import { createCoreHarness } from '../support/hub-harness.ts';

const HOUR = 3_600_000;
const DAY = 24 * HOUR;

describe('token issuer', () => {
  it('rotates active → overlap → retired → purged on the policy’s schedule; overlap tokens keep verifying', async () => {
    const clock = new FakeClock(Date.UTC(2026, 0, 10));
    const h = await createCoreHarness(clock);
    try {
      const issuer = h.cp.context.issuer;
      const claims = { aud: CONTROL_PLANE_AUDIENCE, sub: 'svc', tid: h.tid, role: 'viewer' as const, scope: '' };
      assert.deepEqual(
        issuer.jwks().keys.map((k) => k.status),
        ['active'],
      );
      const first = issuer.jwks().keys[0]!.kid;
      const t1 = await issuer.issue(claims, 20 * HOUR);
      clock.advance(7 * DAY - 10 * HOUR);
      const t2 = await issuer.issue(claims, 20 * HOUR);
      clock.advance(10 * HOUR); // the key is 7 days old now
      await issuer.rotate();
      assert.deepEqual(
        issuer.jwks().keys.map((k) => [k.kid === first, k.status]),
        [
          [false, 'active'],
          [true, 'overlap'],
        ],
      );
      // A token the old key signed before the rotation still verifies during the overlap.
      assert.equal((await issuer.verify(t2.token, { audience: CONTROL_PLANE_AUDIENCE })).kid, first);
      await assert.rejects(issuer.verify(t1.token, { audience: CONTROL_PLANE_AUDIENCE }), (e) =>
        isOutpostError(e, 'TOKEN_EXPIRED'),
      );
      clock.advance(DAY - 1);
      await issuer.rotate();
      assert.equal(issuer.jwks().keys.find((k) => k.kid === first)?.status, 'overlap', 'not retired a moment early');
      clock.advance(1);
      await issuer.rotate();
      assert.equal(issuer.jwks().keys.find((k) => k.kid === first)?.status, 'retired');
      await assert.rejects(
        verifyRuntimeToken(t2.token, {
          jwks: issuer.jwks(),
          clock: new FakeClock(t2.claims.iat * 1000),
          issuer: h.cp.context.settings.issuer,
          audience: CONTROL_PLANE_AUDIENCE,
        }),
        (e) => isOutpostError(e, 'TOKEN_KEY_RETIRED'),
      );
      const keyFile = join(h.dir, 'keys', `token-${first}.ed25519.key`);
      assert.ok(existsSync(keyFile));
      clock.advance(7 * DAY);
      await issuer.rotate();
      assert.equal(
        issuer.jwks().keys.some((k) => k.kid === first),
        false,
      );
      assert.equal(existsSync(keyFile), false, 'a purged key’s secret is destroyed');
      assert.equal(issuer.jwks().keys.filter((k) => k.status === 'active').length, 1);
    } finally {
      h.close();
    }
  });

  it('signs hybrid Ed25519 + ML-DSA-65 tokens when configured, verified only with both halves', async () => {
    const clock = new FakeClock(Date.UTC(2026, 0, 10));
    const h = await createCoreHarness(clock, {}, { hybrid: true });
    try {
      const issuer = h.cp.context.issuer;
      const t = await issuer.issue(
        { aud: CONTROL_PLANE_AUDIENCE, sub: 'svc', tid: h.tid, role: 'viewer', scope: '' },
        HOUR,
      );
      assert.equal(t.token.split('.').length, 4);
      assert.ok(issuer.jwks().keys[0]!.pq);
      assert.equal((await issuer.verify(t.token, { audience: CONTROL_PLANE_AUDIENCE })).hybrid, true);
      const stripped = t.token.split('.').slice(0, 3).join('.');
      await assert.rejects(issuer.verify(stripped, { audience: CONTROL_PLANE_AUDIENCE }), (e) =>
        isOutpostError(e, 'TOKEN_HYBRID_REQUIRED'),
      );
      assert.ok(readdirSync(join(h.dir, 'keys')).some((f) => f.endsWith('.mldsa.key')));
    } finally {
      h.close();
    }
  });

  it('refuses tokens for the wrong audience and revoked jtis', async () => {
    const clock = new FakeClock(Date.UTC(2026, 0, 10));
    const h = await createCoreHarness(clock);
    try {
      const issuer = h.cp.context.issuer;
      const t = await issuer.issue({ aud: 'outpost-device', sub: 'svc', tid: h.tid, role: 'viewer', scope: '' }, HOUR);
      await assert.rejects(issuer.verify(t.token, { audience: CONTROL_PLANE_AUDIENCE }), (e) =>
        isOutpostError(e, 'TOKEN_WRONG_AUDIENCE'),
      );
      issuer.revokeJti(t.claims.jti, clock.nowMs() + HOUR);
      await assert.rejects(issuer.verify(t.token, { audience: 'outpost-device' }), (e) =>
        isOutpostError(e, 'TOKEN_REVOKED'),
      );
    } finally {
      h.close();
    }
  });
});
