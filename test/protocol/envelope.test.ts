import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { resolve } from 'node:path';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { canonicalize } from '../../protocol/canonical-json.ts';
import { didKeyFromEd25519 } from '../../protocol/did-key.ts';
import {
  type DecodeEnvelopeOptions,
  decodeEnvelope,
  ENVELOPE_TYPES,
  type Envelope,
  encodeEnvelope,
  newMessageId,
  signEnvelope,
  type UnsignedEnvelope,
  verifyEnvelope,
  WSS_SUBPROTOCOL,
} from '../../protocol/envelope.ts';
import { ed25519KeyPair } from '../../protocol/signing.ts';
import { assertDecoderTotal, jsonTextInputs } from '../support/fuzz.ts';
import { seedFromHex, vectorJson, vectorText } from '../support/protocol-vectors.ts';

interface EnvelopeVector {
  description: string;
  deviceSeedHex?: string;
  unsigned: UnsignedEnvelope;
  wire: string;
}

const DIR = resolve(import.meta.dirname, '../../docs/protocol/vectors/envelope');
const names = readdirSync(DIR)
  .filter((f) => f.endsWith('.json') && f !== 'deny.json')
  .map((f) => f.slice(0, -'.json'.length));
const vectors = names.map((name) => {
  const v = vectorJson<EnvelopeVector>('envelope', `${name}.json`);
  return { name, ...v, wireText: vectorText('envelope', v.wire) };
});
const deviceSeed = seedFromHex(vectors.find((v) => v.deviceSeedHex)!.deviceSeedHex!);
const device = didKeyFromEd25519(ed25519KeyPair(deviceSeed).publicKey);
const tid = vectors[0]!.unsigned.tid;

describe('envelope: vectors', () => {
  it(`the subprotocol is ${WSS_SUBPROTOCOL}`, () => assert.equal(WSS_SUBPROTOCOL, 'aethermesh.v2'));

  it('there is a vector for every message type', () => {
    assert.deepEqual([...new Set(vectors.map((v) => v.unsigned.type))].sort(), [...ENVELOPE_TYPES].sort());
  });

  for (const v of vectors) {
    it(`${v.name}: encodes byte for byte and decodes to the same value`, () => {
      const env = v.deviceSeedHex ? signEnvelope(v.unsigned, seedFromHex(v.deviceSeedHex)) : (v.unsigned as Envelope);
      assert.equal(encodeEnvelope(env), v.wireText);
      const back = decodeEnvelope(v.wireText, { tid });
      assert.deepEqual(back, JSON.parse(v.wireText));
      assert.equal(encodeEnvelope(back), v.wireText);
      assert.equal(back.sig !== undefined, v.deviceSeedHex !== undefined);
    });
  }

  const deny = vectorJson<{ cases: { name: string; wire: string; code: string; options?: DecodeEnvelopeOptions }[] }>(
    'envelope',
    'deny.json',
  );
  for (const c of deny.cases) {
    it(`refuses ${c.name}: ${c.code}`, () => assert.throws(() => decodeEnvelope(c.wire, c.options), { code: c.code }));
  }
});

describe('envelope: signatures', () => {
  const hello = vectors.find((v) => v.name === 'hello')!;

  it('the hello signature covers the challenge: a recorded hello does not answer another challenge', () => {
    const replay = JSON.parse(hello.wireText);
    replay.body.challenge = Buffer.alloc(32, 7).toString('base64url');
    assert.throws(() => decodeEnvelope(JSON.stringify(replay)), { code: 'ENVELOPE_BAD_SIGNATURE' });
  });

  it('every header field is covered: changing seq, ts, dst, tid or id breaks the signature', () => {
    const base = JSON.parse(vectors.find((v) => v.name === 'pong')!.wireText);
    const changes: Record<string, unknown> = {
      seq: base.seq + 1,
      ts: base.ts + 1,
      dst: 'cp:other',
      id: newMessageId(),
      tid: '626da41c-ab3d-5933-bf1d-bbf0b043620d',
    };
    for (const [k, value] of Object.entries(changes)) {
      assert.throws(
        () => decodeEnvelope(JSON.stringify({ ...base, [k]: value })),
        { code: 'ENVELOPE_BAD_SIGNATURE' },
        k,
      );
    }
  });

  it('signEnvelope refuses a src other than the signing key', () => {
    assert.throws(() => signEnvelope(hello.unsigned, seedFromHex('99'.repeat(32))), { code: 'ENVELOPE_WRONG_SOURCE' });
  });

  it('verifyEnvelope enforces the signature rule on in-memory values', () => {
    const signed = decodeEnvelope(hello.wireText);
    verifyEnvelope(signed);
    const { sig: _sig, ...unsigned } = signed;
    assert.throws(() => verifyEnvelope(unsigned as Envelope), { code: 'ENVELOPE_SIGNATURE_REQUIRED' });
    const ping = decodeEnvelope(vectors.find((v) => v.name === 'ping')!.wireText);
    assert.throws(() => verifyEnvelope({ ...ping, sig: signed.sig } as Envelope), {
      code: 'ENVELOPE_UNEXPECTED_SIGNATURE',
    });
  });

  it('encodeEnvelope refuses what decodeEnvelope would refuse', () => {
    const ping = decodeEnvelope(vectors.find((v) => v.name === 'ping')!.wireText);
    assert.throws(() => encodeEnvelope({ ...ping, extra: 1 } as unknown as Envelope), {
      code: 'ENVELOPE_UNKNOWN_FIELD',
    });
    assert.throws(() => encodeEnvelope({ ...ping, type: 'nope' } as unknown as Envelope), {
      code: 'ENVELOPE_UNKNOWN_TYPE',
    });
    const { sig: _s, ...unsignedHello } = decodeEnvelope(hello.wireText);
    assert.throws(() => encodeEnvelope(unsignedHello as Envelope), { code: 'ENVELOPE_SIGNATURE_REQUIRED' });
  });
});

describe('envelope: limits', () => {
  const ping = vectors.find((v) => v.name === 'ping')!.wireText;
  it('maxBytes counts UTF-8 bytes', () => {
    const bytes = Buffer.byteLength(ping);
    decodeEnvelope(ping, { maxBytes: bytes });
    assert.throws(() => decodeEnvelope(ping, { maxBytes: bytes - 1 }), { code: 'ENVELOPE_TOO_LARGE' });
    const err = JSON.parse(vectors.find((v) => v.name === 'error')!.wireText);
    err.body.message = 'é'.repeat(100);
    const text = JSON.stringify(err);
    assert.throws(() => decodeEnvelope(text, { maxBytes: text.length }), { code: 'ENVELOPE_TOO_LARGE' });
  });

  it('a "__proto__" member is refused, not silently dropped', () => {
    const call = JSON.parse(vectors.find((v) => v.name === 'tool.call')!.wireText);
    const text = JSON.stringify(call).replace('"args":{', '"args":{"__proto__":{"polluted":true},');
    assert.throws(() => decodeEnvelope(text), { code: 'ENVELOPE_MALFORMED' });
    assert.equal(({} as Record<string, unknown>).polluted, undefined);
  });
});

describe('envelope: round trip and fuzz', () => {
  const header = (type: string, src: string, dst: string) =>
    fc.record({
      v: fc.constant(2),
      id: fc.uint8Array({ minLength: 16, maxLength: 16 }).map((b) => Buffer.from(b).toString('base64url')),
      tid: fc.constant(tid),
      type: fc.constant(type),
      ts: fc.nat({ max: 2 ** 50 }),
      seq: fc.nat({ max: Number.MAX_SAFE_INTEGER }),
      src: fc.constant(src),
      dst: fc.constant(dst),
    });
  const json = fc.jsonValue({ maxDepth: 3 }).map((x) => JSON.parse(JSON.stringify(x)) as unknown);
  const callId = fc.uint8Array({ minLength: 16, maxLength: 16 }).map((b) => Buffer.from(b).toString('base64url'));

  it('device envelopes: sign → encode → decode is the identity', () => {
    const result = fc.oneof(
      fc.record({ callId, ok: fc.constant(true), result: json, durationMs: fc.nat() }),
      fc.record({
        callId,
        ok: fc.constant(false),
        error: fc.record({ code: fc.stringMatching(/^[A-Z][A-Z0-9_]{0,20}$/), message: fc.string({ maxLength: 100 }) }),
        durationMs: fc.nat(),
      }),
    );
    fc.assert(
      fc.property(header('tool.result', device, 'cp:main'), result, (h, body) => {
        const env = signEnvelope({ ...h, body } as UnsignedEnvelope<'tool.result'>, deviceSeed);
        const back = decodeEnvelope(encodeEnvelope(env), { tid });
        assert.equal(canonicalize(back), canonicalize(env));
      }),
      { numRuns: 300 },
    );
  });

  it('control-plane envelopes: encode → decode is the identity', () => {
    const body = fc.record({
      callId,
      tool: fc.stringMatching(/^[a-z][a-z0-9_]{0,8}(\.[a-z][a-z0-9_]{0,8}){0,2}$/),
      args: fc.dictionary(
        fc.string({ maxLength: 8 }).filter((k) => k !== '__proto__'),
        json,
        { maxKeys: 5 },
      ),
      token: fc.constant(vectorText('tokens', 'runtime-token.jws')),
      deadlineMs: fc.nat({ max: 2 ** 50 }),
    });
    fc.assert(
      fc.property(header('tool.call', 'cp:main', device), body, (h, b) => {
        const env = { ...h, body: b } as Envelope;
        const text = encodeEnvelope(env);
        assert.equal(encodeEnvelope(decodeEnvelope(text)), text);
      }),
      { numRuns: 300 },
    );
  });

  it('decodeEnvelope is total over mutated vectors and junk', () => {
    const seeds = vectors.map((v) => JSON.parse(v.wireText));
    const r = assertDecoderTotal(jsonTextInputs(seeds), (text) => decodeEnvelope(text, { tid, maxBytes: 200_000 }));
    assert.ok(r.accepted > 0 && r.rejected > 0, `accepted ${r.accepted}, rejected ${r.rejected}`);
    assert.ok(r.codes.has('ENVELOPE_UNKNOWN_FIELD') && r.codes.has('ENVELOPE_MALFORMED'), [...r.codes.keys()].join());
  });
});
