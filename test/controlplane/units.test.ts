// Pure pieces of the control plane: settings, credentials, the lockout planner, manifest diffs, ack ranges.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { EMPTY_RECORD, lockoutRemainingMs, recordFailure } from '../../controlplane/auth-limiter.ts';
import {
  enrollTokenHash,
  isEnrollTokenText,
  mintEnrollToken,
  mintOperatorKey,
  parseOperatorKey,
} from '../../controlplane/credentials.ts';
import { ControlPlaneError, errorBody, httpStatusFor } from '../../controlplane/errors.ts';
import { diffManifests } from '../../controlplane/manifest-diff.ts';
import { controlPlaneSettings, didWebForUrl, hubUrl, tenantDid } from '../../controlplane/settings.ts';
import { mergeRanges } from '../../controlplane/telemetry-ingest.ts';
import { ProtocolError } from '../../protocol/errors.ts';
import { tenantIdFromDidWeb } from '../../protocol/tokens.ts';
import { greenhouseManifest } from '../support/controlplane.ts';

describe('settings', () => {
  it('derives issuer, DIDs, control-plane id and hosts from the public URL', () => {
    const s = controlPlaneSettings({ publicUrl: 'http://127.0.0.1:7380/' });
    assert.equal(s.issuer, 'http://127.0.0.1:7380');
    assert.equal(s.did, 'did:web:127.0.0.1%3A7380');
    assert.equal(s.controlPlaneId, 'cp:127.0.0.1');
    assert.ok(s.allowedHosts.includes('127.0.0.1:7380'));
    assert.equal(hubUrl(s, 'abc'), 'ws://127.0.0.1:7380/v1/hub/abc');
    assert.equal(didWebForUrl(new URL('https://cp.example.org')), 'did:web:cp.example.org');
    const t = tenantDid(s.did, 'farm');
    assert.equal(t, 'did:web:127.0.0.1%3A7380:tenants:farm');
    assert.match(tenantIdFromDidWeb(t), /^[0-9a-f-]{36}$/);
  });

  for (const [name, input] of [
    ['a path', { publicUrl: 'http://a.example/x' }],
    ['another scheme', { publicUrl: 'ftp://a.example' }],
    ['credentials', { publicUrl: 'http://u:p@a.example' }],
    ['an IPv6 host (no did:web spelling)', { publicUrl: 'http://[::1]:80' }],
    [
      'an overlap below 900 s',
      { publicUrl: 'http://a.example', rotation: { overlapMs: 60_000, maxTokenLifetimeMs: 60_000 } },
    ],
    ['a heartbeat of 0', { publicUrl: 'http://a.example', heartbeatMs: 0 }],
  ] as const) {
    it(`refuses ${name}`, () => {
      assert.throws(
        () => controlPlaneSettings(input),
        (e) => e instanceof ControlPlaneError && e.code === 'CONFIG_INVALID',
      );
    });
  }

  it('refuses tenant names outside the grammar', () => {
    assert.throws(() => tenantDid('did:web:x', 'Farm'), /tenant name/);
    assert.throws(() => tenantDid('did:web:x', '-farm'), /tenant name/);
  });
});

describe('credentials', () => {
  it('operator keys parse back to their id and the stored hash; anything else does not', () => {
    const k = mintOperatorKey();
    const p = parseOperatorKey(k.text);
    assert.equal(p?.keyId, k.keyId);
    assert.deepEqual(p?.secretHash, k.secretHash);
    assert.equal(parseOperatorKey(`${k.text}x`), undefined);
    assert.equal(parseOperatorKey(k.text.replace('opk_', 'opx_')), undefined);
    const other = parseOperatorKey(`${k.text.slice(0, -1)}${k.text.endsWith('A') ? 'B' : 'A'}`);
    assert.notDeepEqual(other?.secretHash, k.secretHash);
  });

  it('enroll tokens are stored by hash and named by a prefix of it', () => {
    const t = mintEnrollToken();
    assert.ok(isEnrollTokenText(t.text));
    assert.deepEqual(enrollTokenHash(t.text), t.tokenHash);
    assert.equal(t.tokenId, Buffer.from(t.tokenHash.subarray(0, 8)).toString('hex'));
    assert.equal(isEnrollTokenText('oet_short'), false);
  });
});

describe('lockout planner', () => {
  const policy = { maxFailures: 3, windowMs: 1000, lockoutMs: 5000 };
  const table: { name: string; failuresAt: number[]; at: number; locked: number }[] = [
    { name: 'no failures', failuresAt: [], at: 0, locked: 0 },
    { name: 'two failures stay under the limit', failuresAt: [0, 10], at: 20, locked: 0 },
    { name: 'three within the window lock out', failuresAt: [0, 10, 20], at: 20, locked: 5000 },
    { name: 'the lockout runs down', failuresAt: [0, 10, 20], at: 4020, locked: 1000 },
    { name: 'failures outside the window are forgotten', failuresAt: [0, 1500, 3000], at: 3000, locked: 0 },
  ];
  for (const row of table) {
    it(row.name, () => {
      let r = EMPTY_RECORD;
      for (const t of row.failuresAt) r = recordFailure(r, t, policy);
      assert.equal(lockoutRemainingMs(r, row.at), row.locked);
    });
  }
});

describe('errors map to HTTP once', () => {
  const table: [unknown, number, string][] = [
    [new ControlPlaneError('ENROLL_TOKEN_USED', 'x'), 409, 'ENROLL_TOKEN_USED'],
    [new ControlPlaneError('LOCKED_OUT', 'x'), 429, 'LOCKED_OUT'],
    [new ProtocolError('TOKEN_EXPIRED', 'x'), 401, 'TOKEN_EXPIRED'],
    [new ProtocolError('MANIFEST_INVALID', 'x'), 400, 'MANIFEST_INVALID'],
    [new ControlPlaneError('INTERNAL', 'secret detail'), 500, 'INTERNAL'],
    [new Error('boom'), 500, 'INTERNAL'],
  ];
  for (const [e, status, code] of table) {
    it(`${code} → ${status}`, () => {
      assert.equal(httpStatusFor(e), status);
      assert.equal(errorBody(e).error.code, code);
    });
  }
  it('hides internal messages', () => {
    assert.equal(errorBody(new ControlPlaneError('INTERNAL', 'secret detail')).error.message, 'internal error');
  });
});

describe('manifest diff', () => {
  const before = greenhouseManifest('did:key:z6MkjchhfUsD6mmvni8mCdXHw216Xrm9bQe2mBH1P5RDjVJG', 'gh');
  it('names added, removed and re-classed tools, and flags a class made less strict', () => {
    const after = {
      ...before,
      device: { ...before.device, name: 'gh2' },
      tools: [
        ...before.tools
          .filter((t) => t.name !== 'fan.set')
          .map((t) => (t.name === 'valve.open' ? { ...t, safety_class: 'reversible' as const } : t)),
        { ...before.tools[0]!, name: 'soil.read_ph' },
      ],
    };
    const d = diffManifests(before, after);
    assert.deepEqual(d.added, ['soil.read_ph']);
    assert.deepEqual(d.removed, ['fan.set']);
    assert.deepEqual(d.downgrades, ['valve.open']);
    assert.equal(d.renamed, true);
  });
  it('reports nothing for the same manifest, and everything as added against none', () => {
    assert.deepEqual(diffManifests(before, before).summary, {
      added: [],
      removed: [],
      reclassed: [],
      downgrades: [],
      renamed: false,
    });
    assert.equal(diffManifests(undefined, before).added.length, before.tools.length);
  });
});

describe('acknowledgement ranges', () => {
  const table: [
    string,
    { device: string; fromSeq: number; toSeq: number }[],
    { device: string; fromSeq: number; toSeq: number }[],
  ][] = [
    ['empty', [], []],
    [
      'touching ranges merge',
      [
        { device: 'a', fromSeq: 1, toSeq: 3 },
        { device: 'a', fromSeq: 4, toSeq: 9 },
      ],
      [{ device: 'a', fromSeq: 1, toSeq: 9 }],
    ],
    [
      'overlaps merge',
      [
        { device: 'a', fromSeq: 5, toSeq: 9 },
        { device: 'a', fromSeq: 1, toSeq: 6 },
      ],
      [{ device: 'a', fromSeq: 1, toSeq: 9 }],
    ],
    [
      'gaps stay',
      [
        { device: 'a', fromSeq: 1, toSeq: 2 },
        { device: 'a', fromSeq: 4, toSeq: 4 },
      ],
      [
        { device: 'a', fromSeq: 1, toSeq: 2 },
        { device: 'a', fromSeq: 4, toSeq: 4 },
      ],
    ],
    [
      'devices stay apart',
      [
        { device: 'b', fromSeq: 1, toSeq: 2 },
        { device: 'a', fromSeq: 3, toSeq: 4 },
      ],
      [
        { device: 'a', fromSeq: 3, toSeq: 4 },
        { device: 'b', fromSeq: 1, toSeq: 2 },
      ],
    ],
  ];
  for (const [name, input, expected] of table) it(name, () => assert.deepEqual(mergeRanges(input), expected));
});
