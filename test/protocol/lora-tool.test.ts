import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { fromHex, toHex } from '../../protocol/bytes.ts';
import type { JsonValue } from '../../protocol/canonical-json.ts';
import { didKeyFromEd25519 } from '../../protocol/did-key.ts';
import { isOutpostError } from '../../protocol/errors.ts';
import {
  decodeToolCall,
  decodeToolResult,
  encodeToolCall,
  encodeToolResult,
  type LoraApproval,
  type LoraToolCall,
  type LoraToolResult,
} from '../../protocol/lora.ts';
import { loadVector, type VectorFile } from './lora-vectors.ts';

function codeOf(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    return isOutpostError(e) ? e.code : `untyped: ${String(e)}`;
  }
  return 'accepted';
}

/** JSON values as a decoder returns them (fast-check builds some objects without a prototype). */
const json = (v: unknown): JsonValue => JSON.parse(JSON.stringify(v)) as JsonValue;
const jsonArb = fc.jsonValue({ maxDepth: 4 }).map(json);
const idString = fc.oneof(
  fc.uuid(),
  fc.string({ minLength: 1, maxLength: 30 }),
  fc.uint8Array({ minLength: 8, maxLength: 24 }).map((b) => Buffer.from(b).toString('base64url')),
  fc.uint8Array({ minLength: 32, maxLength: 32 }).map((b) => didKeyFromEd25519(b)),
);
const approvalArb: fc.Arbitrary<LoraApproval> = fc.record({
  approver: fc.oneof(
    fc.uint8Array({ minLength: 4, maxLength: 4 }).map((shortId) => ({ shortId })),
    idString.map((id) => ({ id })),
  ),
  signature: fc.uint8Array({ minLength: 64, maxLength: 64 }),
});
const segment = (min: number, max: number) =>
  fc.uint8Array({ minLength: min, maxLength: max }).map((b) => Buffer.from(b).toString('base64url'));
/** Compact JWS: three canonical base64url segments (the real one is header.payload.Ed25519-signature). */
const jwsArb = fc.tuple(segment(1, 60), segment(1, 200), segment(64, 64)).map((p) => p.join('.'));
const callArb: fc.Arbitrary<LoraToolCall> = fc
  .record({
    callId: fc.oneof(
      fc.uint8Array({ minLength: 16, maxLength: 16 }).map((b) => Buffer.from(b).toString('base64url')),
      fc.string({ minLength: 1, maxLength: 64 }),
    ),
    tool: fc.oneof(
      fc.nat(0xffff).map((index) => ({ index })),
      fc.stringMatching(/^[a-z][a-z0-9_]{0,20}(\.[a-z][a-z0-9_]{0,20}){0,2}$/).map((name) => ({ name })),
    ),
    deadlineMs: fc.option(fc.nat(2 ** 48), { nil: undefined }),
    token: fc.option(jwsArb, { nil: undefined }),
    quorum: fc.option(
      fc.record({
        requestId: idString,
        nonce: idString,
        expMs: fc.maxSafeNat(),
        approvals: fc.array(approvalArb, { minLength: 1, maxLength: 5 }),
      }),
      { nil: undefined },
    ),
    args: jsonArb,
  })
  .map(({ deadlineMs, token, quorum, ...rest }) =>
    // structuredClone gives ordinary objects (fast-check's records have no prototype) and keeps Uint8Arrays.
    structuredClone({
      ...rest,
      ...(deadlineMs !== undefined ? { deadlineMs } : {}),
      ...(token !== undefined ? { token } : {}),
      ...(quorum !== undefined ? { quorum } : {}),
    }),
  );

describe('tool.call and tool.result payloads', () => {
  it('tool.call round-trips, including quorum approvals in both approver forms', () => {
    fc.assert(
      fc.property(callArb, (call) => {
        const payload = encodeToolCall(call);
        assert.deepEqual(decodeToolCall(payload), call);
        assert.equal(toHex(encodeToolCall(decodeToolCall(payload))), toHex(payload));
      }),
      { numRuns: 500 },
    );
  });

  it('tool.result round-trips', () => {
    fc.assert(
      fc.property(
        fc.record({
          callId: fc.string({ minLength: 1, maxLength: 64 }),
          status: fc.constantFrom('ok', 'error', 'denied' as const),
          durationMs: fc.maxSafeNat(),
          value: jsonArb,
        }),
        (result) => {
          const r = structuredClone(result) as LoraToolResult;
          assert.deepEqual(decodeToolResult(encodeToolResult(r)), r);
        },
      ),
    );
  });

  it('a 2-of-3 quorum call with short approver ids fits one Meshtastic frame; with approver id strings it may not', () => {
    const file = loadVector<VectorFile<{ payloadHex: string }>>('tool.json');
    const short = file.vectors.find((v) => v.name === 'quorum-2-of-3-short-ids')!;
    const long = file.vectors.find((v) => v.name === 'quorum-2-of-3-approver-ids')!;
    assert.ok(short.payloadHex.length / 2 <= 233 - 26);
    assert.ok(long.payloadHex.length / 2 > 233 - 26);
  });

  it('refuses calls it cannot carry', () => {
    const base: LoraToolCall = { callId: 'c1', tool: { index: 0 }, args: {} };
    const approval = { approver: { shortId: new Uint8Array(4) }, signature: new Uint8Array(64) };
    const quorum = { requestId: 'r', nonce: 'n', expMs: 1, approvals: [approval] };
    const cases: [string, LoraToolCall][] = [
      ['tool index beyond 65535', { ...base, tool: { index: 65536 } }],
      ['empty tool name', { ...base, tool: { name: '' } }],
      ['tool name over 64 bytes', { ...base, tool: { name: 'x'.repeat(65) } }],
      ['no approvals', { ...base, quorum: { ...quorum, approvals: [] } }],
      ['17 approvals', { ...base, quorum: { ...quorum, approvals: new Array(17).fill(approval) } }],
      [
        'short signature',
        { ...base, quorum: { ...quorum, approvals: [{ ...approval, signature: new Uint8Array(63) }] } },
      ],
      [
        '3-byte approver id',
        { ...base, quorum: { ...quorum, approvals: [{ ...approval, approver: { shortId: new Uint8Array(3) } }] } },
      ],
      ['NaN argument', { ...base, args: { x: Number.NaN } }],
      ['empty call id', { ...base, callId: '' }],
      ['call id over 64 characters', { ...base, callId: 'x'.repeat(65) }],
      ['token that is not a JWS', { ...base, token: 'abc.def' }],
      ['token with padding', { ...base, token: 'YQ==.YQ.YQ' }],
      ['token with an empty segment', { ...base, token: 'YQ..YQ' }],
    ];
    for (const [name, call] of cases)
      assert.equal(
        codeOf(() => encodeToolCall(call)),
        'LORA_VALUE_UNSUPPORTED',
        name,
      );
    assert.equal(
      codeOf(() =>
        encodeToolResult({ callId: 'c1', status: 'maybe' as LoraToolResult['status'], durationMs: 0, value: null }),
      ),
      'LORA_VALUE_UNSUPPORTED',
    );
  });

  it('rejects malformed payloads with typed codes', () => {
    const id = '000161'; // callId "a": compact string, UTF-8 form, length 1
    const cases: [string, string, string][] = [
      ['reserved flag', `${id}1000a0`, 'LORA_PAYLOAD_MALFORMED'],
      ['name length 0', `${id}0100a0`, 'LORA_PAYLOAD_MALFORMED'],
      ['name not UTF-8', `${id}0101ffa0`, 'LORA_PAYLOAD_MALFORMED'],
      ['empty call id', '00000000a0', 'LORA_PAYLOAD_MALFORMED'],
      ['no arguments', `${id}0000`, 'LORA_PAYLOAD_MALFORMED'],
      ['two argument items', `${id}0000a0a0`, 'LORA_PAYLOAD_MALFORMED'],
      ['token segment of length 0', `${id}080000a0`, 'LORA_PAYLOAD_MALFORMED'],
      ['unknown approver form', `${id}0400${id}${id}010107`, 'LORA_PAYLOAD_MALFORMED'],
      ['zero approvals', `${id}0400${id}${id}0100`, 'LORA_PAYLOAD_MALFORMED'],
    ];
    for (const [name, hex, code] of cases)
      assert.equal(
        codeOf(() => decodeToolCall(fromHex(hex))),
        code,
        name,
      );
    assert.equal(
      codeOf(() => decodeToolResult(fromHex(`${id}0300f6`))),
      'LORA_PAYLOAD_MALFORMED',
    );
    assert.equal(
      codeOf(() => decodeToolResult(fromHex(`${id}0000`))),
      'LORA_PAYLOAD_MALFORMED',
    );
  });
});
