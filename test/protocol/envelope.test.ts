import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { canonicalize } from '../../protocol/canonical-json.ts';
import { didKeyFromEd25519 } from '../../protocol/did-key.ts';
import {
  type DecodeEnvelopeOptions,
  decodeEnvelope,
  ENVELOPE_TYPES,
  type Envelope,
  type EnvelopeOf,
  encodeEnvelope,
  newMessageId,
  signEnvelope,
  type UnsignedEnvelope,
  verifyEnvelope,
  WSS_SUBPROTOCOL,
} from '../../protocol/envelope.ts';
import { decodeManifest, manifestHash } from '../../protocol/manifest.ts';
import { ed25519KeyPair } from '../../protocol/signing.ts';
import { seedFromHex, vectorJson } from '../support/protocol-vectors.ts';

interface EnvelopeVector {
  name: string;
  description: string;
  deviceSeedHex?: string;
  envelope: UnsignedEnvelope;
  wireText: string;
}

const file = vectorJson<{
  vectors: EnvelopeVector[];
  rejects: { name: string; wireText: string; error: string; options?: DecodeEnvelopeOptions }[];
}>('envelope', 'envelopes.json');
const vectors = file.vectors;
const byName = (name: string) => vectors.find((v) => v.name === name)!;
const deviceSeed = seedFromHex(vectors.find((v) => v.deviceSeedHex)!.deviceSeedHex!);
const device = didKeyFromEd25519(ed25519KeyPair(deviceSeed).publicKey);
const tid = vectors[0]!.envelope.tid;

describe('envelope: vectors', () => {
  it(`the subprotocol is ${WSS_SUBPROTOCOL}`, () => assert.equal(WSS_SUBPROTOCOL, 'aethermesh.v2'));

  it('there is a vector for every message type', () => {
    assert.deepEqual([...new Set(vectors.map((v) => v.envelope.type))].sort(), [...ENVELOPE_TYPES].sort());
  });

  for (const v of vectors) {
    it(`${v.name}: encodes byte for byte and decodes to the same value`, () => {
      const env = v.deviceSeedHex ? signEnvelope(v.envelope, seedFromHex(v.deviceSeedHex)) : (v.envelope as Envelope);
      assert.equal(encodeEnvelope(env), v.wireText);
      const back = decodeEnvelope(v.wireText, { tid });
      assert.deepEqual(back, JSON.parse(v.wireText));
      assert.equal(encodeEnvelope(back), v.wireText);
      assert.equal(back.sig !== undefined, v.deviceSeedHex !== undefined);
    });
  }

  for (const c of file.rejects) {
    it(`refuses ${c.name}: ${c.error}`, () =>
      assert.throws(() => decodeEnvelope(c.wireText, c.options), { code: c.error }));
  }
});

describe('envelope: signatures', () => {
  const hello = byName('hello');

  it('the hello signature covers the challenge: a recorded hello does not answer another challenge', () => {
    const replay = JSON.parse(hello.wireText);
    replay.body.challenge = Buffer.alloc(32, 7).toString('base64url');
    assert.throws(() => decodeEnvelope(JSON.stringify(replay)), { code: 'ENVELOPE_BAD_SIGNATURE' });
  });

  it('every header field is covered: changing seq, ts, dst, tid or id breaks the signature', () => {
    const base = JSON.parse(byName('pong').wireText);
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
    assert.throws(() => signEnvelope(hello.envelope, seedFromHex('99'.repeat(32))), { code: 'ENVELOPE_WRONG_SOURCE' });
  });

  it('verifyEnvelope enforces the signature rule on in-memory values', () => {
    const signed = decodeEnvelope(hello.wireText);
    verifyEnvelope(signed);
    const { sig: _sig, ...unsigned } = signed;
    assert.throws(() => verifyEnvelope(unsigned as Envelope), { code: 'ENVELOPE_SIGNATURE_REQUIRED' });
    const ping = decodeEnvelope(byName('ping').wireText);
    assert.throws(() => verifyEnvelope({ ...ping, sig: signed.sig } as Envelope), {
      code: 'ENVELOPE_UNEXPECTED_SIGNATURE',
    });
  });

  it('encodeEnvelope refuses values JSON cannot carry in free-form members', () => {
    const call = decodeEnvelope(byName('tool.call').wireText) as EnvelopeOf<'tool.call'>;
    for (const bad of [{ at: new Date(0) }, { n: Number.NaN }, { f: () => 1 }, { a: [undefined] }]) {
      assert.throws(() => encodeEnvelope({ ...call, body: { ...call.body, args: bad } }), {
        code: 'ENVELOPE_MALFORMED',
      });
    }
    const result = decodeEnvelope(byName('tool.result ok').wireText) as EnvelopeOf<'tool.result'>;
    assert.throws(
      () => encodeEnvelope({ ...result, body: { ...result.body, result: undefined } } as unknown as Envelope),
      {
        code: 'ENVELOPE_MALFORMED',
      },
    );
  });

  it('encodeEnvelope refuses what decodeEnvelope would refuse', () => {
    const ping = decodeEnvelope(byName('ping').wireText);
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

describe('envelope: manifests', () => {
  const manifests = vectorJson<{ vectors: { name: string; manifestText: string; hash: string }[] }>(
    'manifest',
    'valid.json',
  );
  for (const m of manifests.vectors) {
    it(`manifest.announce accepts the manifest vector "${m.name}" with its manifest.md hash`, () => {
      const manifest = decodeManifest(m.manifestText);
      assert.equal(manifestHash(manifest), m.hash);
      const announce = byName('manifest.announce');
      const env = signEnvelope(
        { ...(announce.envelope as UnsignedEnvelope<'manifest.announce'>), body: { manifest, manifestHash: m.hash } },
        deviceSeed,
      );
      assert.deepEqual(decodeEnvelope(encodeEnvelope(env)).body, { manifest, manifestHash: m.hash });
    });
  }
});

describe('envelope: limits', () => {
  const ping = byName('ping').wireText;
  it('maxBytes counts UTF-8 bytes', () => {
    const bytes = Buffer.byteLength(ping);
    decodeEnvelope(ping, { maxBytes: bytes });
    assert.throws(() => decodeEnvelope(ping, { maxBytes: bytes - 1 }), { code: 'ENVELOPE_TOO_LARGE' });
    const err = JSON.parse(byName('error').wireText);
    err.body.message = 'é'.repeat(100);
    const text = JSON.stringify(err);
    assert.throws(() => decodeEnvelope(text, { maxBytes: text.length }), { code: 'ENVELOPE_TOO_LARGE' });
  });

  it('a "__proto__" member is refused, not silently dropped', () => {
    const call = JSON.parse(byName('tool.call').wireText);
    const text = JSON.stringify(call).replace('"args":{', '"args":{"__proto__":{"polluted":true},');
    assert.throws(() => decodeEnvelope(text), { code: 'ENVELOPE_MALFORMED' });
    assert.equal(({} as Record<string, unknown>).polluted, undefined);
  });
});

describe('envelope: round trip', () => {
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
      tool: fc.constantFrom('valve.open', 'pump.start', 'greenhouse.vent.close', 'a.b'),
      args: fc.dictionary(
        fc.string({ maxLength: 8 }).filter((k) => k !== '__proto__'),
        json,
        { maxKeys: 5 },
      ),
      token: fc.constant((byName('token.refresh').envelope.body as { token: string }).token),
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
});
