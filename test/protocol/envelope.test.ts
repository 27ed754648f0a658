import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { canonicalize } from '../../protocol/canonical-json.ts';
import { didKeyFromEd25519 } from '../../protocol/did-key.ts';
import {
  type BodyOf,
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
import { RADIO_STATES } from '../../protocol/lora-relay.ts';
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

describe('envelope: lora.health', () => {
  const health = byName('lora.health');
  const gwSeed = seedFromHex(health.deviceSeedHex!);
  const base = health.envelope as UnsignedEnvelope<'lora.health'>;
  const radio = base.body.radios[0]!;
  // Refusals are checked before any signature, so the recorded signature may go stale here.
  const withBody = (body: unknown) => JSON.stringify({ ...(JSON.parse(health.wireText) as object), body });
  const withRadio = (patch: Record<string, unknown>) => withBody({ ...base.body, radios: [{ ...radio, ...patch }] });

  it('accepts a gateway with no radios, and a radio over its budget with no RSSI or SNR yet', () => {
    const empty = { ...base.body, radios: [], uplinkBacklog: 0, downlinkBacklog: 0 };
    const signed = (body: BodyOf<'lora.health'>) => encodeEnvelope(signEnvelope({ ...base, body }, gwSeed));
    assert.deepEqual(decodeEnvelope(signed(empty)).body, empty);
    const overran = { ...radio, airtime: { ...radio.airtime, budgetUsed: 1.5 }, rssiDbm: null, snrDb: null };
    assert.deepEqual(decodeEnvelope(signed({ ...base.body, radios: [overran] })).body, {
      ...base.body,
      radios: [overran],
    });
  });

  const refusals: [string, string, string][] = [
    ['an unknown radio state', withRadio({ state: 'sleeping' }), 'ENVELOPE_MALFORMED'],
    ['a negative budget', withRadio({ airtime: { ...radio.airtime, budgetUsed: -0.1 } }), 'ENVELOPE_MALFORMED'],
    ['a fractional frame count', withRadio({ frames: { ...radio.frames, sent: 1.5 } }), 'ENVELOPE_MALFORMED'],
    ['a bad radio name', withRadio({ name: 'Radio 0' }), 'ENVELOPE_MALFORMED'],
    ['an unknown kind', withRadio({ kind: 'sx1262' }), 'ENVELOPE_MALFORMED'],
    ['an unknown radio field', withRadio({ path: '/dev/ttyUSB0' }), 'ENVELOPE_UNKNOWN_FIELD'],
    [
      'a bucket bound that is neither a number nor +Inf',
      withRadio({ rssiDbm: { ...radio.rssiDbm!, buckets: [{ le: 'Inf', count: 1 }] } }),
      'ENVELOPE_MALFORMED',
    ],
    [
      '33 histogram buckets',
      withRadio({ snrDb: { ...radio.snrDb!, buckets: Array.from({ length: 33 }, (_, i) => ({ le: i, count: 0 })) } }),
      'ENVELOPE_MALFORMED',
    ],
    ['9 radios', withBody({ ...base.body, radios: Array.from({ length: 9 }, () => radio) }), 'ENVELOPE_MALFORMED'],
    ['a negative backlog', withBody({ ...base.body, uplinkBacklog: -1 }), 'ENVELOPE_MALFORMED'],
    ['a missing backlog', withBody({ radios: base.body.radios, uplinkBacklog: 0 }), 'ENVELOPE_MALFORMED'],
  ];
  for (const [name, text, code] of refusals) {
    it(`refuses ${name}: ${code}`, () => assert.throws(() => decodeEnvelope(text, { tid }), { code }));
  }

  it('refuses an unsigned lora.health from a gateway', () => {
    const { sig: _sig, ...unsigned } = JSON.parse(health.wireText) as Record<string, unknown>;
    assert.throws(() => decodeEnvelope(JSON.stringify(unsigned)), { code: 'ENVELOPE_SIGNATURE_REQUIRED' });
  });

  it('sign → encode → decode is the identity for any valid report', () => {
    const uint = fc.nat({ max: Number.MAX_SAFE_INTEGER });
    const hist = fc.option(
      fc.record({
        buckets: fc.array(
          fc.record({ le: fc.oneof(fc.integer({ min: -200, max: 50 }), fc.constant('+Inf' as const)), count: uint }),
          { maxLength: 32 },
        ),
        count: uint,
        sum: fc
          .double({ min: -1e9, max: 1e9, noNaN: true, noDefaultInfinity: true })
          .map((x) => (Object.is(x, -0) ? 0 : x)),
      }),
    );
    const report = fc.record({
      name: fc.stringMatching(/^[a-z][a-z0-9_]{0,31}$/),
      kind: fc.constantFrom('rnode' as const, 'meshtastic' as const),
      state: fc.constantFrom(...RADIO_STATES),
      ready: fc.boolean(),
      airtime: fc.record({
        windowMs: uint,
        budgetUsed: fc.double({ min: 0, max: 10, noNaN: true }).map((x) => (Object.is(x, -0) ? 0 : x)),
        totalMs: uint,
      }),
      frames: fc.record({ received: uint, sent: uint, dropped: uint }),
      rssiDbm: hist,
      snrDb: hist,
      lastRxMs: fc.option(uint),
    });
    const body = fc.record({ radios: fc.array(report, { maxLength: 8 }), uplinkBacklog: uint, downlinkBacklog: uint });
    fc.assert(
      fc.property(body, (b) => {
        const env = signEnvelope({ ...base, body: b }, gwSeed);
        const back = decodeEnvelope(encodeEnvelope(env), { tid });
        assert.equal(canonicalize(back), canonicalize(env));
      }),
      { numRuns: 200 },
    );
  });
});
