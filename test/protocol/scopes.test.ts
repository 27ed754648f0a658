import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { didKeyFromEd25519 } from '../../protocol/did-key.ts';
import {
  formatScope,
  parseScope,
  parseScopeClaim,
  type ScopeRequest,
  scopesAllow,
  toolPatternMatches,
} from '../../protocol/scopes.ts';

const T = '0e6c3a3d-952c-55af-be8a-3d562dcf52c7';
const OTHER_T = '626da41c-ab3d-5933-bf1d-bbf0b043620d';
const D1 = didKeyFromEd25519(new Uint8Array(32).fill(1));
const D2 = didKeyFromEd25519(new Uint8Array(32).fill(2));

describe('scopes: grammar', () => {
  const valid = [
    `${T}/*/*:call`,
    `${T}/${D1}/valve.open:call`,
    `${T}/${D1}/valve.*:read`,
    `${T}/*/pump_2.start_now:approve`,
    `${T}/*/*:admin`,
  ];
  for (const s of valid) {
    it(`accepts ${s.replace(T, 'T')}`, () => assert.equal(formatScope(parseScope(s)), s));
  }
  const invalid: [string, string][] = [
    ['no action', `${T}/*/*`],
    ['unknown action', `${T}/*/*:write`],
    ['uppercase tenant', `${T.toUpperCase()}/*/*:call`],
    ['tenant glob', `*/*/*:call`],
    ['device prefix glob', `${T}/did:key:z6Mk*/*:call`],
    ['device not a did:key', `${T}/sensor-1/*:call`],
    ['tool infix glob', `${T}/*/valve*:call`],
    ['tool inner glob', `${T}/*/*.open:call`],
    ['uppercase tool', `${T}/*/Valve.open:call`],
    ['trailing dot', `${T}/*/valve.:call`],
    ['one-word tool name (manifest names have two or more)', `${T}/*/valve:call`],
    ['hyphen in a tool name', `${T}/*/valve.open-now:call`],
    ['four parts', `${T}/*/*/x:call`],
    ['empty', ''],
    ['space', `${T}/*/* :call`],
    ['too long', `${T}/*/${'a'.repeat(300)}:call`],
  ];
  for (const [name, s] of invalid) {
    it(`refuses ${name}`, () => assert.throws(() => parseScope(s), { code: 'SCOPE_MALFORMED' }));
  }

  it('formatScope and parseScope are inverse for every scope the grammar allows', () => {
    const word = fc
      .tuple(fc.constantFrom(...'abcxyz'), fc.string({ unit: fc.constantFrom(...'az09_'), maxLength: 8 }))
      .map(([a, b]) => a + b);
    const scope = fc.record({
      tenant: fc.constantFrom(T, OTHER_T),
      device: fc.constantFrom('*', D1, D2),
      tool: fc.oneof(
        fc.constant('*'),
        fc.array(word, { minLength: 2, maxLength: 4 }).map((w) => w.join('.')),
        fc.array(word, { minLength: 1, maxLength: 3 }).map((w) => `${w.join('.')}.*`),
      ),
      action: fc.constantFrom('call' as const, 'read' as const, 'approve' as const, 'admin' as const),
    });
    fc.assert(
      fc.property(scope, (s) => {
        assert.deepEqual(parseScope(formatScope(s)), { ...s });
      }),
      { numRuns: 1000 },
    );
  });

  it('parses a claim of single-space-separated scopes and refuses duplicates and double spaces', () => {
    assert.equal(parseScopeClaim(`${T}/*/*:call ${T}/*/*:read`).length, 2);
    assert.deepEqual(parseScopeClaim(''), []);
    assert.throws(() => parseScopeClaim(`${T}/*/*:call  ${T}/*/*:read`), { code: 'SCOPE_MALFORMED' });
    assert.throws(() => parseScopeClaim(`${T}/*/*:call ${T}/*/*:call`), { code: 'SCOPE_MALFORMED' });
    assert.throws(() => parseScopeClaim(Array.from({ length: 65 }, (_, i) => `${T}/*/t${i}:call`).join(' ')), {
      code: 'SCOPE_MALFORMED',
    });
  });
});

describe('scopes: matching', () => {
  const req = (o: Partial<ScopeRequest> = {}): ScopeRequest => ({
    tenant: T,
    device: D1,
    tool: 'valve.open',
    action: 'call',
    ...o,
  });
  const table: [string, string, ScopeRequest, boolean][] = [
    ['exact', `${T}/${D1}/valve.open:call`, req(), true],
    ['any device', `${T}/*/valve.open:call`, req({ device: D2 }), true],
    ['other device', `${T}/${D2}/valve.open:call`, req(), false],
    ['other tenant', `${OTHER_T}/*/*:call`, req(), false],
    ['prefix', `${T}/*/valve.*:call`, req(), true],
    ['prefix, deeper name', `${T}/*/valve.*:call`, req({ tool: 'valve.a.b' }), true],
    ['prefix is per segment', `${T}/*/valve.*:call`, req({ tool: 'valves.open' }), false],
    ['prefix does not match the bare prefix', `${T}/*/valve.*:call`, req({ tool: 'valve' }), false],
    ['any tool', `${T}/*/*:call`, req({ tool: 'x' }), true],
    ['actions do not imply one another', `${T}/*/*:admin`, req(), false],
    ['read does not grant call', `${T}/*/*:read`, req(), false],
  ];
  for (const [name, scope, request, want] of table) {
    it(`${name}: ${want ? 'allows' : 'denies'}`, () => assert.equal(scopesAllow([parseScope(scope)], request), want));
  }

  it('no scopes, no access', () => assert.equal(scopesAllow([], req()), false));

  it('toolPatternMatches agrees with a reference definition', () => {
    const seg = fc.stringMatching(/^[a-z][a-z0-9]{0,3}$/);
    fc.assert(
      fc.property(
        fc.array(seg, { minLength: 1, maxLength: 3 }),
        fc.array(seg, { minLength: 1, maxLength: 4 }),
        (p, t) => {
          const tool = t.join('.');
          const prefix = `${p.join('.')}.*`;
          const refPrefix = t.length > p.length && p.every((s, i) => s === t[i]);
          assert.equal(toolPatternMatches(prefix, tool), refPrefix);
          assert.equal(toolPatternMatches(p.join('.'), tool), p.join('.') === tool);
          assert.equal(toolPatternMatches('*', tool), true);
        },
      ),
      { numRuns: 500 },
    );
  });
});
