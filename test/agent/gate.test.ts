import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import {
  decide,
  GATE_REASONS,
  type GateFacts,
  type GateReason,
  type TokenFact,
  type ToolHistory,
} from '../../agent/gate.ts';
import { quorumFactFromError, tokenFactFromError } from '../../agent/gate-facts.ts';
import { ProtocolError } from '../../protocol/errors.ts';
import type { ToolSpec } from '../../protocol/manifest.ts';
import { parseScope } from '../../protocol/scopes.ts';

const TENANT = '2b7c1c1e-5d3f-5a8e-9f00-0123456789ab';
const DEVICE = 'did:key:z6MkjchhfUsD6mmvni8mCdXHw216Xrm9bQe2mBH1P5RDjVJG';
const OTHER_DEVICE = 'did:key:z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK';
const NOON = Date.UTC(2026, 5, 1, 12, 0);

const schema = { type: 'object', properties: {}, additionalProperties: false } as ToolSpec['inputSchema'];
const tools: Record<string, ToolSpec> = {
  echo: { name: 'system.echo', description: 'e', inputSchema: schema, safety_class: 'read_only', timeoutMs: 1000 },
  fan: {
    name: 'fan.set',
    description: 'f',
    inputSchema: schema,
    safety_class: 'reversible',
    timeoutMs: 1000,
    rateLimit: { maxCalls: 2, perMs: 60_000 },
    undo: { tool: 'fan.set', args: {} },
  },
  valve: {
    name: 'valve.open',
    description: 'v',
    inputSchema: schema,
    safety_class: 'physical_actuation',
    timeoutMs: 1000,
    interlocks: [
      { kind: 'allowed_hours', fromHour: 6, toHour: 20, utcOffsetMinutes: 0 },
      { kind: 'min_interval', ms: 60_000 },
      { kind: 'mutually_exclusive', tools: ['valve.flush'], windowMs: 300_000 },
    ],
  },
};

const scopes = (...s: string[]) => s.map(parseScope);

function validToken(over: Partial<Extract<TokenFact, { state: 'valid' }>> = {}): TokenFact {
  return {
    state: 'valid',
    subject: 'operator:ada',
    tenant: TENANT,
    device: DEVICE,
    role: 'actuator',
    scopes: scopes(`${TENANT}/${DEVICE}/*:call`),
    jti: 'jti-000000000000001',
    jtiSeen: false,
    ...over,
  };
}

function facts(over: Partial<GateFacts> = {}): GateFacts {
  const tool = over.tool === undefined && !('tool' in over) ? tools.valve : over.tool;
  return {
    source: 'local_api',
    toolName: tool?.name ?? 'nope.tool',
    tool,
    exclusions: tool?.name === 'valve.open' ? [{ tool: 'valve.flush', windowMs: 300_000 }] : [],
    argsErrors: [],
    device: { id: DEVICE, tenant: TENANT },
    token: validToken(),
    quorum: { state: 'valid', nonce: 'nonce-1', nonceSeen: false, approvers: ['alice', 'bob'] },
    wallMs: NOON,
    wallClockTrusted: true,
    nowStoreMs: 10_000_000,
    history: new Map<string, ToolHistory>(),
    ...over,
  };
}

const hist = (h: Partial<ToolHistory>): ToolHistory => ({
  running: 0,
  lastEndStoreMs: undefined,
  startsStoreMs: [],
  ...h,
});

describe('safety gate: decide', () => {
  it('allows a physical call with a valid token and quorum, and says what to spend', () => {
    const d = decide(facts());
    assert.equal(d.reason, 'ALLOWED');
    assert.deepEqual(d.consume, { jti: 'jti-000000000000001', quorumNonce: 'nonce-1' });
    assert.deepEqual(d.principal, { kind: 'token', subject: 'operator:ada', role: 'actuator' });
  });

  it('lets a local caller call read_only tools without a token', () => {
    const d = decide(facts({ tool: tools.echo, token: { state: 'absent' }, quorum: { state: 'absent' } }));
    assert.equal(d.allow, true);
    assert.equal(d.consume, undefined);
  });

  const denials: [string, Partial<GateFacts>, GateReason][] = [
    ['an unknown tool', { tool: undefined }, 'TOOL_UNKNOWN'],
    ['a reversible call without a token', { tool: tools.fan, token: { state: 'absent' } }, 'TOKEN_REQUIRED'],
    [
      'an upstream read_only call without a token',
      { tool: tools.echo, source: 'upstream', token: { state: 'absent' } },
      'TOKEN_REQUIRED',
    ],
    ['a forged token', { token: { state: 'invalid', detail: 'TOKEN_BAD_SIGNATURE' } }, 'TOKEN_INVALID'],
    [
      'a token even on a read_only call when it is bad',
      { tool: tools.echo, token: { state: 'invalid', detail: 'TOKEN_MALFORMED' } },
      'TOKEN_INVALID',
    ],
    ['an expired token', { token: { state: 'expired' } }, 'TOKEN_EXPIRED'],
    ['a token from the future', { token: { state: 'not_yet_valid' } }, 'TOKEN_NOT_YET_VALID'],
    ['a replayed token (jti spent)', { token: validToken({ jtiSeen: true }) }, 'TOKEN_REPLAYED'],
    ['a token without a trust bundle', { token: { state: 'unverifiable' } }, 'TRUST_NOT_CONFIGURED'],
    [
      'a valid token when the device has no tenant',
      { device: { id: DEVICE, tenant: undefined } },
      'TRUST_NOT_CONFIGURED',
    ],
    [
      'a token for another tenant',
      { token: validToken({ tenant: '00000000-0000-5000-8000-000000000000' }) },
      'TENANT_MISMATCH',
    ],
    ['a token bound to another device', { token: validToken({ device: OTHER_DEVICE }) }, 'DEVICE_MISMATCH'],
    [
      'a scope for another tool',
      { token: validToken({ scopes: scopes(`${TENANT}/${DEVICE}/fan.*:call`) }) },
      'SCOPE_DENIED',
    ],
    [
      'a scope for another device',
      { token: validToken({ device: undefined, scopes: scopes(`${TENANT}/${OTHER_DEVICE}/*:call`) }) },
      'SCOPE_DENIED',
    ],
    ['a read scope used to call', { token: validToken({ scopes: scopes(`${TENANT}/*/*:read`) }) }, 'SCOPE_DENIED'],
    ['an operator calling a physical tool', { token: validToken({ role: 'operator' }) }, 'CLASS_NOT_ALLOWED'],
    [
      'a viewer calling a reversible tool',
      { tool: tools.fan, token: validToken({ role: 'viewer' }) },
      'CLASS_NOT_ALLOWED',
    ],
    ['arguments outside the schema', { argsErrors: ['/x: unknown member'] }, 'ARGS_INVALID'],
    ['a physical call without quorum', { quorum: { state: 'absent' } }, 'QUORUM_REQUIRED'],
    [
      'a quorum with a bad signature',
      { quorum: { state: 'invalid', reason: 'QUORUM_INVALID', detail: 'QUORUM_BAD_SIGNATURE' } },
      'QUORUM_INVALID',
    ],
    [
      'a quorum for other arguments',
      { quorum: { state: 'invalid', reason: 'QUORUM_MISMATCH', detail: 'QUORUM_ARGS_MISMATCH' } },
      'QUORUM_MISMATCH',
    ],
    [
      'an expired quorum',
      { quorum: { state: 'invalid', reason: 'QUORUM_EXPIRED', detail: 'QUORUM_EXPIRED' } },
      'QUORUM_EXPIRED',
    ],
    [
      'too few approvers',
      { quorum: { state: 'invalid', reason: 'QUORUM_INSUFFICIENT', detail: 'QUORUM_TOO_FEW' } },
      'QUORUM_INSUFFICIENT',
    ],
    [
      'a reused quorum',
      { quorum: { state: 'valid', nonce: 'n', nonceSeen: true, approvers: ['a', 'b'] } },
      'QUORUM_REUSED',
    ],
    ['allowed hours with an unset clock', { wallClockTrusted: false }, 'CLOCK_UNTRUSTED'],
    ['a call outside allowed hours', { wallMs: Date.UTC(2026, 5, 1, 22, 30) }, 'OUTSIDE_ALLOWED_HOURS'],
    ['an exclusive tool running', { history: new Map([['valve.flush', hist({ running: 1 })]]) }, 'INTERLOCKED'],
    [
      'an exclusive tool that ran within its window',
      { history: new Map([['valve.flush', hist({ lastEndStoreMs: 10_000_000 - 299_000 })]]) },
      'INTERLOCKED',
    ],
    [
      'the same tool still running (min interval)',
      { history: new Map([['valve.open', hist({ running: 1 })]]) },
      'MIN_INTERVAL',
    ],
    [
      'the same tool too soon (min interval)',
      { history: new Map([['valve.open', hist({ lastEndStoreMs: 10_000_000 - 59_000 })]]) },
      'MIN_INTERVAL',
    ],
    [
      'the rate limit exceeded',
      {
        tool: tools.fan,
        quorum: { state: 'absent' },
        history: new Map([['fan.set', hist({ startsStoreMs: [9_950_000, 9_990_000] })]]),
      },
      'RATE_LIMITED',
    ],
  ];
  for (const [name, over, reason] of denials) {
    it(`denies ${name} (${reason})`, () => {
      const d = decide(facts(over));
      assert.equal(d.allow, false);
      assert.equal(d.reason, reason, d.message);
      assert.equal(d.consume, undefined);
    });
  }

  const allowed: [string, Partial<GateFacts>][] = [
    [
      'an exclusive tool that ran before its window',
      { history: new Map([['valve.flush', hist({ lastEndStoreMs: 10_000_000 - 300_000 })]]) },
    ],
    ['after the min interval', { history: new Map([['valve.open', hist({ lastEndStoreMs: 10_000_000 - 60_000 })]]) }],
    [
      'calls that left the rate window',
      {
        tool: tools.fan,
        quorum: { state: 'absent' },
        history: new Map([['fan.set', hist({ startsStoreMs: [9_000_000, 9_990_000] })]]),
      },
    ],
    ['a reversible call needs no quorum', { tool: tools.fan, quorum: { state: 'absent' } }],
    [
      'a wildcard device scope',
      { token: validToken({ device: undefined, scopes: scopes(`${TENANT}/*/valve.*:call`) }) },
    ],
  ];
  for (const [name, over] of allowed) {
    it(`allows ${name}`, () => assert.equal(decide(facts(over)).reason, 'ALLOWED'));
  }

  it('wraps allowed hours across midnight', () => {
    const night = {
      ...tools.valve!,
      interlocks: [{ kind: 'allowed_hours' as const, fromHour: 22, toHour: 6, utcOffsetMinutes: 60 }],
    };
    assert.equal(decide(facts({ tool: night, wallMs: Date.UTC(2026, 5, 1, 22, 30) })).reason, 'ALLOWED');
    assert.equal(decide(facts({ tool: night, wallMs: Date.UTC(2026, 5, 1, 12, 0) })).reason, 'OUTSIDE_ALLOWED_HOURS');
  });

  it('only ever returns documented reasons, and allows only with every check passed', () => {
    const tokenArb = fc.constantFrom<TokenFact>(
      { state: 'absent' },
      { state: 'expired' },
      { state: 'invalid', detail: 'X' },
      validToken(),
      validToken({ jtiSeen: true }),
      validToken({ role: 'viewer' }),
    );
    fc.assert(
      fc.property(
        tokenArb,
        fc.constantFrom('echo', 'fan', 'valve'),
        fc.boolean(),
        fc.boolean(),
        (token, t, hasQuorum, clockOk) => {
          const d = decide(
            facts({
              tool: tools[t],
              token,
              wallClockTrusted: clockOk,
              quorum: hasQuorum
                ? { state: 'valid', nonce: 'n', nonceSeen: false, approvers: ['a', 'b'] }
                : { state: 'absent' },
            }),
          );
          assert.ok((GATE_REASONS as readonly string[]).includes(d.reason));
          if (d.allow && t === 'valve') assert.ok(hasQuorum && token.state === 'valid' && clockOk);
          if (d.allow && t !== 'echo') assert.equal(token.state, 'valid');
        },
      ),
    );
  });
});

describe('gate facts from verifier errors', () => {
  const tokenRows: [string, string][] = [
    ['TOKEN_EXPIRED', 'expired'],
    ['TOKEN_NOT_YET_VALID', 'not_yet_valid'],
    ['TOKEN_BAD_SIGNATURE', 'invalid'],
    ['TOKEN_UNKNOWN_KEY', 'invalid'],
    ['TOKEN_WRONG_AUDIENCE', 'invalid'],
  ];
  for (const [code, state] of tokenRows) {
    it(`${code} → ${state}`, () =>
      assert.equal(tokenFactFromError(new ProtocolError(code as 'TOKEN_EXPIRED', 'x')).state, state));
  }
  it('an untyped failure is invalid', () => assert.equal(tokenFactFromError(new Error('x')).state, 'invalid'));
  const quorumRows: [string, string][] = [
    ['QUORUM_EXPIRED', 'QUORUM_EXPIRED'],
    ['QUORUM_ARGS_MISMATCH', 'QUORUM_MISMATCH'],
    ['QUORUM_WRONG_DEVICE', 'QUORUM_MISMATCH'],
    ['QUORUM_TOO_FEW', 'QUORUM_INSUFFICIENT'],
    ['QUORUM_BAD_SIGNATURE', 'QUORUM_INVALID'],
    ['QUORUM_UNKNOWN_APPROVER', 'QUORUM_INVALID'],
  ];
  for (const [code, reason] of quorumRows) {
    it(`${code} → ${reason}`, () => {
      const f = quorumFactFromError(new ProtocolError(code as 'QUORUM_EXPIRED', 'x'));
      assert.equal(f.state === 'invalid' && f.reason, reason);
    });
  }
});
