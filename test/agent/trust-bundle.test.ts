import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { devApprove, fileDevKeyStore, initDevTrust, mintDevToken } from '../../agent/dev-trust.ts';
import { loadTrustBundle } from '../../agent/trust-bundle.ts';
import { FakeClock } from '../../protocol/clock.ts';
import { isOutpostError } from '../../protocol/errors.ts';
import { verifyQuorum } from '../../protocol/quorum.ts';
import { verifyRuntimeToken } from '../../protocol/tokens.ts';

const dir = mkdtempSync(join(tmpdir(), 'outpost-trust-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const keys = fileDevKeyStore();
const DEVICE = 'did:key:z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK';
const files = { jwksFile: join(dir, 't', 'jwks.json'), approvalPolicyFile: join(dir, 't', 'approval-policy.json') };
const init = initDevTrust(keys, { dir: join(dir, 't'), approvers: ['alice', 'bob', 'carol'], k: 2 });
const clock = new FakeClock(Date.UTC(2026, 5, 1));

describe('dev trust bundle', () => {
  it('loads as a trust bundle, and its tokens and approvals verify with the protocol verifiers', async () => {
    const b = loadTrustBundle(files, { issuer: init.issuer, audience: 'outpost-device' });
    assert.equal(b.tenantId, init.tenantId);
    const token = await mintDevToken(keys, {
      dir: init.dir,
      device: DEVICE,
      role: 'operator',
      tools: ['fan.*'],
      ttlS: 60,
      subject: 's',
      audience: 'outpost-device',
      clock,
    });
    const v = await verifyRuntimeToken(token, { jwks: b.jwks, clock, issuer: init.issuer, audience: 'outpost-device' });
    assert.equal(v.claims.dev, DEVICE);
    assert.equal(v.scopes[0]!.tool, 'fan.*');
    const { token: q } = devApprove(keys, {
      dir: init.dir,
      device: DEVICE,
      tool: 'valve.open',
      args: { s: 1 },
      ttlS: 60,
      clock,
    });
    const vq = verifyQuorum(q, {
      policy: b.policy,
      tid: b.tenantId,
      device: DEVICE,
      tool: 'valve.open',
      args: { s: 1 },
      clock,
    });
    assert.deepEqual(vq.approvers, ['alice', 'bob']);
  });

  it('refuses to overwrite an existing issuer, and key files are 0600', async () => {
    assert.throws(
      () => initDevTrust(keys, { dir: join(dir, 't'), approvers: ['x', 'y'], k: 2 }),
      (e) => isOutpostError(e, 'CONFIG_INVALID'),
    );
    const { statSync } = await import('node:fs');
    assert.equal(statSync(join(dir, 't', 'issuer.key')).mode & 0o777, 0o600);
    assert.equal(statSync(join(dir, 't', 'approvers', 'bob.key')).mode & 0o777, 0o600);
  });

  const broken: [string, () => void, RegExp][] = [
    ['a missing file', () => rmSync(join(dir, 'b', 'jwks.json')), /cannot read trust file/],
    ['JWKS that is not JSON', () => writeFileSync(join(dir, 'b', 'jwks.json'), '{'), /not a valid JWK Set/],
    [
      'a policy with k above the approvers',
      () =>
        writeFileSync(
          join(dir, 'b', 'approval-policy.json'),
          JSON.stringify({ v: 1, tid: init.tenantId, approvers: [], rules: [] }),
        ),
      /not a valid approval policy/,
    ],
  ];
  for (const [name, breakIt, message] of broken) {
    it(`reports ${name} naming the file`, () => {
      rmSync(join(dir, 'b'), { recursive: true, force: true });
      initDevTrust(keys, { dir: join(dir, 'b'), approvers: ['a1', 'a2'], k: 2 });
      breakIt();
      assert.throws(
        () =>
          loadTrustBundle(
            { jwksFile: join(dir, 'b', 'jwks.json'), approvalPolicyFile: join(dir, 'b', 'approval-policy.json') },
            { issuer: 'i', audience: 'a' },
          ),
        (e) =>
          isOutpostError(e, 'CONFIG_TRUST_INVALID') && message.test(e.message) && typeof e.details.file === 'string',
      );
    });
  }

  it('refuses a bundle for another tenant than configured', () => {
    assert.throws(
      () => loadTrustBundle(files, { issuer: 'i', audience: 'a', tenant_id: '00000000-0000-5000-8000-000000000000' }),
      (e) => isOutpostError(e, 'CONFIG_TRUST_INVALID'),
    );
  });
});
