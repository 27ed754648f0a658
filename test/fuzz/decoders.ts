// The registry of every decoder of outside bytes: its module, its seed inputs (golden vectors, mutated
// structure-aware and at byte level, plus random input), and what a run must show. test/fuzz/decoders.test.ts
// runs each at fuzzCases() (≥ 10,000) in `npm test`; `npm run fuzz` runs each at 1,000,000 (test/fuzz/run.ts).
// A part whose decoders land later adds its entries here; its own test file then keeps only properties.

import assert from 'node:assert/strict';
import { createPrivateKey } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import fc from 'fast-check';
import { CompactSign } from 'jose';
import { parseConfig } from '../../agent/config.ts';
import { decodeApiRequest, ROUTES } from '../../agent/local-api/requests.ts';
import { RadioError } from '../../firmware-bridge/errors.ts';
import { decodeOnAirPacket, encodeOnAirPacket, type OnAirPacket } from '../../firmware-bridge/meshtastic/on-air.ts';
import {
  decodeData,
  decodeFromRadio,
  decodeMeshPacket,
  decodeRouting,
  decodeToRadio,
  encodeData,
  encodeFromRadio,
  encodeMeshPacket,
  encodeRouting,
  encodeToRadio,
  isPlausibleFromRadio,
} from '../../firmware-bridge/meshtastic/protobuf.ts';
import {
  createStreamDecoder,
  encodeStreamFrame,
  MAX_STREAM_BODY_BYTES,
} from '../../firmware-bridge/meshtastic/stream-framer.ts';
import { decodeDeviceMessage, decodeHostMessage } from '../../firmware-bridge/rnode/commands.ts';
import {
  createKissDecoder,
  decodeKissFrame,
  encodeKissFrame,
  type KissFrame,
} from '../../firmware-bridge/rnode/kiss.ts';
import {
  fromBase58btc,
  fromBase64Url,
  fromHex,
  fromUtf8,
  toBase58btc,
  toBase64Url,
  toHex,
  utf8,
} from '../../protocol/bytes.ts';
import { canonicalBytes, canonicalize, parseJson } from '../../protocol/canonical-json.ts';
import { FakeClock } from '../../protocol/clock.ts';
import { didKeyFromEd25519, ed25519FromDidKey } from '../../protocol/did-key.ts';
import { decodeEnvelope, type UnsignedEnvelope } from '../../protocol/envelope.ts';
import { parseJsonPointer } from '../../protocol/json-pointer.ts';
import { decodeToolSchema } from '../../protocol/json-schema.ts';
import { parseJsonWithPositions } from '../../protocol/json-source-map.ts';
import { decodeJwks, parseJwks } from '../../protocol/jwks.ts';
import {
  checkEnrollRequest,
  createLoraReassembler,
  createReplayWindow,
  decodeBeacon,
  decodeControl,
  decodeHeartbeat,
  decodeLoraHeader,
  decodeTelemetry,
  decodeTelemetryAck,
  decodeToolCall,
  decodeToolResult,
  encodeBeacon,
  encodeControl,
  encodeHeartbeat,
  encodeTelemetry,
  encodeTelemetryAck,
  encodeToolCall,
  encodeToolResult,
  type LoraFrameType,
  openLoraFrame,
} from '../../protocol/lora.ts';
import { decodeCbor, encodeCbor } from '../../protocol/lora-cbor.ts';
import { openEnrollRequest, openEnrollResponse } from '../../protocol/lora-enroll.ts';
import { ByteReader, ByteWriter, readCompactString, writeCompactString } from '../../protocol/lora-wire.ts';
import { decodeManifest, manifestHash } from '../../protocol/manifest.ts';
import { mcpToolName, parseMcpToolName } from '../../protocol/mcp-projection.ts';
import { decodeQuorumToken, type QuorumPolicy, type QuorumToken, verifyQuorum } from '../../protocol/quorum.ts';
import { compileSafePattern } from '../../protocol/safe-regex.ts';
import { parseScope, parseScopeClaim } from '../../protocol/scopes.ts';
import { ed25519KeyPair, signEd25519 } from '../../protocol/signing.ts';
import { decodeTelemetryUnit, verifyTelemetryUnit } from '../../protocol/telemetry.ts';
import { inspectRuntimeToken, tenantIdFromDidWeb, verifyRuntimeToken } from '../../protocol/tokens.ts';
import { AUDIT_MIGRATIONS, createAuditLog, parseAuditExport, verifyAuditChain } from '../../store/audit.ts';
import { openDatabase } from '../../store/database.ts';
import { createOutbox, OUTBOX_MIGRATIONS, type SeqRange } from '../../store/outbox.ts';
import { loadVector, type VectorFile, vectorSeeds, vectorSessions } from '../protocol/lora-vectors.ts';
import { byteInputs, jsonTextInputs } from '../support/fuzz.ts';
import {
  dataArb,
  fromRadioArb,
  meshPacketArb,
  routingArb,
  toRadioArb,
  u32,
} from '../support/meshtastic-arbitraries.ts';
import { seedFromHex, vectorJson } from '../support/protocol-vectors.ts';
import { safePattern } from '../support/safe-pattern.ts';
import type { FuzzDecoder, FuzzTarget } from './engine.ts';

const ROOT = resolve(import.meta.dirname, '../..');
const hex = (s: string) => Uint8Array.from(Buffer.from(s.replace(/\s+/g, ''), 'hex'));
const latin1 = (b: Uint8Array) => Buffer.from(b).toString('latin1');

/** Text inputs: seeds damaged at byte level read as latin1 and as UTF-8, plus random text. */
function textInputs(seeds: readonly string[], maxRandom = 300): fc.Arbitrary<string> {
  const damaged = byteInputs(seeds.map((s) => utf8(s)));
  return fc.oneof(
    damaged.map(latin1),
    damaged.map((b) => Buffer.from(b).toString('utf8')),
    fc.string({ unit: 'binary', maxLength: maxRandom }),
  );
}

/** A target with typed inputs, for the registry (inputs and decode must agree). */
function target<I>(t: FuzzTarget<I>): FuzzTarget<unknown> {
  return t as FuzzTarget<unknown>;
}

/** An oracle: an accepted input must re-encode to exactly the bytes it came from. */
function canonicalBytesOracle<T>(decode: (b: Uint8Array) => T, encode: (v: T) => Uint8Array, what: string) {
  return (b: Uint8Array) => assert.equal(toHex(encode(decode(b))), toHex(b), `an accepted ${what} is canonical`);
}

// ---------------------------------------------------------------------------------------------
// firmware-bridge/rnode

const KISS_SEEDS = [
  hex('C0 08 73 C0 50 00 C0 48 00 C0 49 00 C0'),
  hex('C0 00 DB DC DB DD 01 C0'),
  hex('C0 23 60 C0 C0 24 28 C0 C0 00 01 02 03 C0'),
  encodeKissFrame(0, new Uint8Array(508).fill(0xc0)),
];
const RNODE_COMMAND_SEEDS = [
  hex('25 00 64 00 0A 01 F4 00 32 3C 25 FF'),
  hex('26 08 00 00 3D 00 12 00 25 00 18 00 31'),
  hex('50 01 56'),
  hex('01 33 B0 6C 00'),
];
const asKissFrame = (b: Uint8Array): KissFrame => ({ command: b[0] ?? 0, data: b.subarray(1) });

const radio: FuzzDecoder[] = [
  {
    name: 'rnode.kiss.frame',
    module: 'firmware-bridge/rnode/kiss.ts',
    setup: () => target({ inputs: byteInputs(KISS_SEEDS, 1100), decode: (b) => decodeKissFrame(b) }),
  },
  {
    name: 'rnode.kiss.stream',
    module: 'firmware-bridge/rnode/kiss.ts',
    setup() {
      // One decoder across all inputs, as on a serial port: state carries over, violations are reported, not thrown.
      const d = createKissDecoder();
      let frames = 0;
      return target({
        inputs: byteInputs(KISS_SEEDS, 1100),
        decode(b: Uint8Array) {
          for (const e of d.push(b)) {
            if (e.type === 'violation') assert.ok(e.error instanceof RadioError, 'a violation carries a RadioError');
            else {
              frames++;
              assert.ok(e.frame.data.length <= 508, 'no frame beyond the KISS limit');
            }
          }
        },
        expect: { rejects: false },
        after: () => assert.ok(frames > 0, 'the stream yielded frames'),
      });
    },
  },
  {
    name: 'rnode.device-message',
    module: 'firmware-bridge/rnode/commands.ts',
    setup: () =>
      target({ inputs: byteInputs(RNODE_COMMAND_SEEDS, 600), decode: (b) => decodeDeviceMessage(asKissFrame(b)) }),
  },
  {
    name: 'rnode.host-message',
    module: 'firmware-bridge/rnode/commands.ts',
    setup: () =>
      target({ inputs: byteInputs(RNODE_COMMAND_SEEDS, 600), decode: (b) => decodeHostMessage(asKissFrame(b)) }),
  },
];

// ---------------------------------------------------------------------------------------------
// firmware-bridge/meshtastic: seeds are encodings of generated messages (fixed sample seeds, so stable)

const sampled = <T>(arb: fc.Arbitrary<T>, encode: (v: T) => Uint8Array, numRuns = 40, seed = 7) =>
  fc.sample(arb, { numRuns, seed }).map(encode);

const onAirPacketArb: fc.Arbitrary<OnAirPacket> = fc.record({
  header: fc.record({
    to: u32,
    from: u32,
    id: u32,
    hopLimit: fc.integer({ min: 0, max: 7 }),
    wantAck: fc.boolean(),
    viaMqtt: fc.boolean(),
    hopStart: fc.integer({ min: 0, max: 7 }),
    channelHash: fc.integer({ min: 0, max: 255 }),
    nextHop: fc.integer({ min: 0, max: 255 }),
    relayNode: fc.integer({ min: 0, max: 255 }),
  }),
  payload: fc.uint8Array({ maxLength: 239 }),
});

const protobufEntry = <T>(
  name: string,
  decode: (b: Uint8Array) => T,
  arb: fc.Arbitrary<T>,
  encode: (v: T) => Uint8Array,
): FuzzDecoder => ({
  name: `meshtastic.${name}`,
  module: 'firmware-bridge/meshtastic/protobuf.ts',
  setup: () => target({ inputs: byteInputs(sampled(arb, encode), 600), decode: (b: Uint8Array) => decode(b) }),
});

const meshtastic: FuzzDecoder[] = [
  {
    name: 'meshtastic.stream',
    module: 'firmware-bridge/meshtastic/stream-framer.ts',
    setup() {
      const bodies = fromRadioArb
        .map((m) => encodeFromRadio(m))
        .filter((b) => b.length > 0 && b.length <= MAX_STREAM_BODY_BYTES && isPlausibleFromRadio(b));
      const seeds = fc
        .sample(fc.array(bodies, { minLength: 1, maxLength: 3 }), { numRuns: 30, seed: 3 })
        .map((bs) => Uint8Array.from(Buffer.concat(bs.map((b) => encodeStreamFrame(b)))));
      type Input = [Uint8Array, number[]];
      return target<Input>({
        // A serial stream cut at arbitrary points: every byte is framed, debug text or noise, never lost.
        inputs: fc.tuple(byteInputs(seeds, 2048), fc.array(fc.nat(), { maxLength: 6 })),
        decode([bytes, cuts]) {
          const d = createStreamDecoder({ accept: isPlausibleFromRadio });
          const points = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b);
          let framed = 0;
          let at = 0;
          for (const p of [...points, bytes.length]) {
            for (const e of d.push(bytes.subarray(at, p))) framed += e.kind === 'frame' ? e.body.length + 4 : 0;
            at = p;
          }
          for (const e of d.flush()) framed += e.kind === 'frame' ? e.body.length + 4 : 0;
          assert.equal(d.pendingBytes(), 0, 'no bytes left after flush');
          const st = d.stats();
          assert.equal(framed + st.debugBytes + st.noiseBytes, bytes.length, 'every byte accounted for');
        },
        expect: { rejects: false },
      });
    },
  },
  protobufEntry('from-radio', decodeFromRadio, fromRadioArb, encodeFromRadio),
  protobufEntry('to-radio', decodeToRadio, toRadioArb, encodeToRadio),
  protobufEntry('mesh-packet', decodeMeshPacket, meshPacketArb, encodeMeshPacket),
  protobufEntry('data', decodeData, dataArb, encodeData),
  protobufEntry('routing', decodeRouting, routingArb, encodeRouting),
  {
    name: 'meshtastic.on-air',
    module: 'firmware-bridge/meshtastic/on-air.ts',
    setup: () =>
      target({
        inputs: byteInputs(sampled(onAirPacketArb, encodeOnAirPacket, 20, 5), 300),
        decode: (b: Uint8Array) => decodeOnAirPacket(b),
      }),
  },
];

// ---------------------------------------------------------------------------------------------
// protocol: bytes, canonical JSON, JSON positions and pointers, identities

const encodings = vectorJson<{
  base64url: { text: string }[];
  base58btc: { text: string }[];
}>('canonical-signing', 'encodings.json');

const basics: FuzzDecoder[] = [
  {
    name: 'bytes.base64url',
    module: 'protocol/bytes.ts',
    setup: () =>
      target({
        inputs: textInputs(encodings.base64url.map((v) => v.text).filter(Boolean)),
        decode: (t: string) => assert.equal(toBase64Url(fromBase64Url(t)), t, 'accepted text is canonical'),
      }),
  },
  {
    name: 'bytes.base58btc',
    module: 'protocol/bytes.ts',
    setup: () =>
      target({
        inputs: textInputs(encodings.base58btc.map((v) => v.text).filter(Boolean)),
        decode: (t: string) => assert.equal(toBase58btc(fromBase58btc(t)), t, 'accepted text re-encodes the same'),
      }),
  },
  {
    name: 'bytes.hex',
    module: 'protocol/bytes.ts',
    setup: () => target({ inputs: textInputs(['00ff', 'deadbeef']), decode: (t: string) => fromHex(t) }),
  },
  {
    name: 'bytes.utf8',
    module: 'protocol/bytes.ts',
    setup: () => target({ inputs: byteInputs([utf8('héllo wörld €𝄞')]), decode: (b: Uint8Array) => fromUtf8(b) }),
  },
  {
    name: 'json.canonical',
    module: 'protocol/canonical-json.ts',
    setup() {
      const docs = vectorJson<{ vectors: { inputHex: string }[] }>('canonical-signing', 'jcs-documents.json');
      const seeds = docs.vectors.map((d) => JSON.parse(fromUtf8(fromHex(d.inputHex))) as unknown);
      return target({
        inputs: jsonTextInputs(seeds),
        decode: (text: string) => canonicalBytes(parseJson(text, 64 * 1024)),
      });
    },
  },
  {
    name: 'json.positions',
    module: 'protocol/json-source-map.ts',
    setup: () =>
      target({
        inputs: jsonTextInputs([{ tools: [{ name: 'a.b', x: [1, 2] }] }]),
        decode: (t: string) => parseJsonWithPositions(t, { maxBytes: 64 * 1024 }),
      }),
  },
  {
    name: 'json.pointer',
    module: 'protocol/json-pointer.ts',
    setup: () =>
      target({
        inputs: fc.oneof(
          fc.string({ unit: fc.constantFrom('a', '/', '~', '0', '1', '2', 'é'), maxLength: 40 }),
          fc.string({ unit: 'binary', maxLength: 300 }),
        ),
        decode: (p: string) => parseJsonPointer(p),
      }),
  },
  {
    name: 'did-key',
    module: 'protocol/did-key.ts',
    setup() {
      const dv = vectorJson<{ vectors: { did: string }[] }>('canonical-signing', 'did-key.json');
      const seeds = dv.vectors.map((v) => utf8(v.did));
      return target({
        inputs: fc.oneof(
          byteInputs(seeds).map(latin1),
          byteInputs(seeds).map((b) => Buffer.from(b).toString('utf8')),
        ),
        decode: (did: string) =>
          assert.equal(didKeyFromEd25519(ed25519FromDidKey(did)), did, 'accepted DID re-encodes'),
      });
    },
  },
];

// ---------------------------------------------------------------------------------------------
// protocol: manifests, tool schemas, MCP names, scopes, patterns

const closedObject = (properties: Record<string, unknown>, required: string[] = []) => ({
  type: 'object',
  additionalProperties: false,
  properties,
  ...(required.length > 0 ? { required } : {}),
});
const FULL_SCHEMA = {
  type: 'object',
  title: 'Everything',
  description: 'Uses every keyword of the subset',
  additionalProperties: false,
  required: ['n', 's'],
  default: { n: 1, s: 'ab' },
  properties: {
    n: { type: 'integer', minimum: 0, maximum: 10, default: 1, description: 'count' },
    x: { type: 'number', exclusiveMinimum: 0, exclusiveMaximum: 1 },
    s: { type: 'string', minLength: 2, maxLength: 4, pattern: '^[a-z]+$', default: 'ab' },
    e: { type: 'string', enum: ['on', 'off'] },
    c: { type: 'string', const: 'fixed' },
    k: { type: 'number', enum: [1, 2.5] },
    b: { type: 'boolean', default: false },
    z: { type: 'null' },
    a: { type: 'array', items: { type: 'integer' }, minItems: 1, maxItems: 3, default: [1] },
    o: closedObject({ deep: closedObject({ v: { type: 'boolean', const: true } }, ['v']) }, ['deep']),
  },
};

const T = '0e6c3a3d-952c-55af-be8a-3d562dcf52c7';
const D1 = didKeyFromEd25519(new Uint8Array(32).fill(1));

const capabilities: FuzzDecoder[] = [
  {
    name: 'manifest',
    module: 'protocol/manifest.ts',
    setup() {
      const example = (f: string) => JSON.parse(readFileSync(join(ROOT, 'examples/manifests', f), 'utf8')) as unknown;
      return target({
        inputs: jsonTextInputs([example('greenhouse.json'), example('minimal.json')]),
        decode(text: string) {
          const m = decodeManifest(text);
          // Whatever decodes can be hashed, and re-decodes from its own canonical form to the same hash.
          assert.equal(manifestHash(decodeManifest(canonicalize(m))), manifestHash(m), 'accepted manifest is stable');
        },
      });
    },
  },
  {
    name: 'manifest.tool-schema',
    module: 'protocol/json-schema.ts',
    setup: () =>
      target({
        inputs: jsonTextInputs([FULL_SCHEMA, closedObject({})]),
        decode: (t: string) => decodeToolSchema(parseJson(t, 1 << 20), 'input'),
      }),
  },
  {
    name: 'mcp.tool-name',
    module: 'protocol/mcp-projection.ts',
    setup() {
      const names = vectorJson<{ vectors: { mcpName: string }[] }>('mcp-projection', 'names.json');
      const seeds = names.vectors.map((v) => v.mcpName);
      return target({
        inputs: fc.oneof(
          fc.constantFrom(...seeds),
          fc.tuple(fc.constantFrom(...seeds), fc.nat(), fc.string({ maxLength: 3 })).map(([s, at, ins]) => {
            const i = at % (s.length + 1);
            return s.slice(0, i) + ins + s.slice(i + 1);
          }),
          fc.string({ unit: 'binary', maxLength: 120 }),
        ),
        decode(n: string) {
          const p = parseMcpToolName(n);
          assert.equal(mcpToolName(p.deviceLabel, p.toolName), n, 'accepted name re-forms the same');
        },
      });
    },
  },
  {
    name: 'scopes',
    module: 'protocol/scopes.ts',
    setup() {
      const valid = [
        `${T}/*/*:call`,
        `${T}/${D1}/valve.open:call`,
        `${T}/${D1}/valve.*:read`,
        `${T}/*/pump_2.start_now:approve`,
        `${T}/*/*:admin`,
      ];
      return target({
        inputs: fc.oneof(
          fc.string({ maxLength: 300 }),
          fc
            .tuple(fc.constantFrom(...valid), fc.nat(), fc.string({ maxLength: 3 }))
            .map(([s, at, ins]) => s.slice(0, at % s.length) + ins + s.slice(at % s.length)),
        ),
        decode(s: string) {
          parseScope(s);
          parseScopeClaim(s);
        },
      });
    },
  },
  {
    name: 'safe-regex',
    module: 'protocol/safe-regex.ts',
    setup: () =>
      target({
        inputs: fc.oneof(
          safePattern,
          fc.string({ unit: fc.constantFrom(...'ab()[]{}|*+?^$\\.-,0123:=!<>kdpuxc'), maxLength: 24 }),
          fc.string({ unit: 'binary', maxLength: 40 }),
        ),
        decode: (p: string) => compileSafePattern(p).test('ab1'),
      }),
  },
];

// ---------------------------------------------------------------------------------------------
// protocol: tenants, runtime tokens, JWKS, quorum tokens

interface TokenVector {
  ed25519SeedHex: string;
  kid: string;
  hybrid: boolean;
  claims: unknown;
  token: string;
}
const tokenFile = () =>
  vectorJson<{ issuer: string; audience: string; verifyAtMs: number; vectors: TokenVector[] }>(
    'tokens',
    'runtime-tokens.json',
  );
const jwksText = () => vectorJson<{ vectors: { jwksText: string }[] }>('tokens', 'jwks.json').vectors[0]!.jwksText;

interface QuorumVectors {
  policy: QuorumPolicy;
  verifyAtMs: number;
  vectors: {
    tool: string;
    args: unknown;
    requiredK: number;
    tokenHex: string;
    tokenBase64url: string;
    request: QuorumToken['request'];
  }[];
}
function quorumSetup() {
  const v = vectorJson<QuorumVectors>('quorum', 'quorum-tokens.json');
  const k2 = v.vectors.find((c) => c.requiredK === 2)!;
  const k3 = v.vectors.find((c) => c.requiredK === 3)!;
  const options = () => ({
    policy: v.policy,
    tid: k2.request.tid,
    device: k2.request.device,
    tool: k2.tool,
    args: structuredClone(k2.args),
    clock: new FakeClock(v.verifyAtMs),
  });
  return { k2, k3, options };
}

const credentials: FuzzDecoder[] = [
  {
    name: 'tenant-id',
    module: 'protocol/tokens.ts',
    setup() {
      const v = vectorJson<{ vectors: { didWeb: string }[] }>('tokens', 'tenant-id.json');
      return target({
        inputs: fc.oneof(
          fc.string(),
          fc.constantFrom(...v.vectors.map((c) => c.didWeb)).map((s) => `${s}x`),
        ),
        decode: (s: string) => tenantIdFromDidWeb(s),
        expect: { accepts: false },
      });
    },
  },
  {
    name: 'token.inspect',
    module: 'protocol/tokens.ts',
    setup() {
      const f = tokenFile();
      const seeds = f.vectors.map((t) => utf8(t.token));
      return target({
        inputs: fc.oneof(byteInputs(seeds, 256).map(latin1), fc.string({ maxLength: 300 })),
        decode: (t: string) => inspectRuntimeToken(t),
      });
    },
  },
  {
    name: 'token.verify',
    module: 'protocol/tokens.ts',
    setup() {
      const f = tokenFile();
      const plain = f.vectors.find((t) => !t.hybrid)!;
      const hybrid = f.vectors.find((t) => t.hybrid)!;
      const jwks = parseJwks(jwksText());
      const privateKey = createPrivateKey({
        key: { kty: 'OKP', crv: 'Ed25519', x: jwks.keys[0]!.x, d: toBase64Url(seedFromHex(plain.ed25519SeedHex)) },
        format: 'jwk',
      });
      const header = { alg: 'EdDSA', kid: plain.kid, typ: 'outpost-rt+jwt' };
      const asToken = (b: Uint8Array) => ({ kind: 'token' as const, text: latin1(b) });
      type Input = { kind: 'token' | 'claims'; text: string };
      return target<Input>({
        inputs: fc.oneof(
          // Junk claims get a valid signature, so the claims decoder itself is what is fuzzed.
          {
            arbitrary: jsonTextInputs([plain.claims, hybrid.claims]).map((text) => ({ kind: 'claims' as const, text })),
            weight: 10,
          },
          { arbitrary: byteInputs([utf8(plain.token)], 256).map(asToken), weight: 9 },
          // Hybrid tokens are mutated less often: ML-DSA-65 verification is the slow step.
          { arbitrary: byteInputs([utf8(hybrid.token)], 256).map(asToken), weight: 1 },
        ),
        async: true,
        async decode(input) {
          const token =
            input.kind === 'token'
              ? input.text
              : await new CompactSign(Buffer.from(input.text)).setProtectedHeader(header).sign(privateKey);
          return verifyRuntimeToken(token, {
            jwks,
            clock: new FakeClock(f.verifyAtMs),
            issuer: f.issuer,
            audience: f.audience,
          });
        },
      });
    },
  },
  {
    name: 'jwks',
    module: 'protocol/jwks.ts',
    setup: () => target({ inputs: jsonTextInputs([JSON.parse(jwksText())]), decode: (t: string) => parseJwks(t) }),
  },
  {
    name: 'jwks.value',
    module: 'protocol/jwks.ts',
    setup: () =>
      target({
        inputs: jsonTextInputs([JSON.parse(jwksText())]).map((t) => {
          try {
            return JSON.parse(t) as unknown;
          } catch {
            return t;
          }
        }),
        decode: (v: unknown) => decodeJwks(v),
      }),
  },
  {
    name: 'quorum.bytes',
    module: 'protocol/quorum.ts',
    setup() {
      const { k2, k3, options } = quorumSetup();
      return target({
        inputs: byteInputs([fromHex(k2.tokenHex), fromHex(k3.tokenHex)], 512),
        decode: (b: Uint8Array) => verifyQuorum(b, options()),
      });
    },
  },
  {
    name: 'quorum.json',
    module: 'protocol/quorum.ts',
    setup() {
      const { k2, options } = quorumSetup();
      return target({
        inputs: jsonTextInputs([decodeQuorumToken(fromHex(k2.tokenHex)), k2.tokenBase64url]),
        decode(text: string) {
          const parsed: unknown = parseJson(text, 65_536);
          return typeof parsed === 'string'
            ? verifyQuorum(parsed, options())
            : verifyQuorum(parsed as QuorumToken, options());
        },
      });
    },
  },
];

// ---------------------------------------------------------------------------------------------
// protocol: WSS envelope, telemetry units

const wire: FuzzDecoder[] = [
  {
    name: 'envelope',
    module: 'protocol/envelope.ts',
    setup() {
      const file = vectorJson<{ vectors: { envelope: UnsignedEnvelope; wireText: string }[] }>(
        'envelope',
        'envelopes.json',
      );
      const tid = file.vectors[0]!.envelope.tid;
      return target({
        inputs: jsonTextInputs(file.vectors.map((v) => JSON.parse(v.wireText) as unknown)),
        decode: (text: string) => decodeEnvelope(text, { tid, maxBytes: 200_000 }),
        expect: { codes: ['ENVELOPE_UNKNOWN_FIELD', 'ENVELOPE_MALFORMED'] },
      });
    },
  },
  {
    name: 'telemetry.unit',
    module: 'protocol/telemetry.ts',
    setup() {
      const file = vectorJson<{ vectors: { unitText: string }[] }>('telemetry', 'units.json');
      return target({
        inputs: jsonTextInputs([JSON.parse(file.vectors[0]!.unitText) as unknown]),
        decode: (text: string) => verifyTelemetryUnit(decodeTelemetryUnit(text)),
      });
    },
  },
];

// ---------------------------------------------------------------------------------------------
// protocol: LoRa frames, fragments and payloads

function loraFrameSeeds(): Uint8Array[] {
  const fv = loadVector<VectorFile<{ framesHex: string[] }, { frameHex: string }>>('frames.json');
  return [
    ...fv.vectors.flatMap((f) => f.framesHex.map((h) => fromHex(h))),
    ...(fv.rejects ?? []).slice(0, 4).map((r) => fromHex(r.frameHex)),
    ...vectorSeeds('enroll.json', 'requestHex').slice(0, 1),
    ...vectorSeeds('enroll.json', 'responseHex'),
    ...vectorSeeds('control.json', 'frameHex', 'beacon'),
  ];
}

function compactStringSeeds(): Uint8Array[] {
  const didKey = didKeyFromEd25519(new Uint8Array(32).fill(9));
  return ['', 'relay.set', '0b7c6a52-8f1e-4c55-9a0e-2f1f4f0e8b11', 'deadbeef', 'q2sN8mD1xC4zT0bW5yVh3A', didKey].map(
    (s) => {
      const w = new ByteWriter();
      writeCompactString(w, s);
      return w.finish();
    },
  );
}

const lora: FuzzDecoder[] = [
  {
    name: 'lora.header',
    module: 'protocol/lora-frame.ts',
    setup: () => target({ inputs: byteInputs(loraFrameSeeds(), 600), decode: (b: Uint8Array) => decodeLoraHeader(b) }),
  },
  {
    name: 'lora.open',
    module: 'protocol/lora-frame.ts',
    setup() {
      const session = vectorSessions().controlPlane;
      return target({
        inputs: byteInputs(loraFrameSeeds(), 600),
        decode(b: Uint8Array) {
          const expect = b.length > 1 && b[1]! & 0x80 ? 'downlink' : 'uplink';
          return openLoraFrame(b, session, { expect });
        },
      });
    },
  },
  {
    name: 'lora.receive',
    module: 'protocol/lora-frame.ts + lora-replay.ts + lora-reassembly.ts + payload decoders',
    setup() {
      // The whole receive pipeline under a flood: header, open, replay window, reassembly, payload decoders.
      const { device, controlPlane } = vectorSessions();
      const clock = new FakeClock();
      const windows = { uplink: createReplayWindow(), downlink: createReplayWindow() };
      const reassembler = createLoraReassembler({ clock, maxMessages: 4, maxBytes: 4096 });
      const payloadDecoders: Partial<Record<LoraFrameType, (p: Uint8Array) => unknown>> = {
        telemetry: decodeTelemetry,
        'telemetry.ack': decodeTelemetryAck,
        'tool.call': decodeToolCall,
        'tool.result': decodeToolResult,
        heartbeat: decodeHeartbeat,
        control: decodeControl,
      };
      return target({
        inputs: byteInputs(loraFrameSeeds(), 600),
        decode(b: Uint8Array) {
          clock.advance(1000);
          const { header } = decodeLoraHeader(b);
          if (header.type === 'beacon') return decodeBeacon(b);
          if (header.type === 'enroll.request') return checkEnrollRequest(b);
          if (header.type === 'enroll.response') return header;
          const session = header.direction === 'uplink' ? controlPlane : device;
          const opened = openLoraFrame(b, session, { expect: header.direction });
          windows[header.direction].accept(header.seq);
          const r = reassembler.add(opened);
          return r.status === 'complete' ? payloadDecoders[r.message.type]!(r.message.payload) : r;
        },
        expect: { codes: ['LORA_REPLAY'] },
        after() {
          const s = reassembler.stats();
          assert.ok(s.pendingBytes <= 4096 && s.pendingMessages <= 4, 'reassembly stays within its limits');
        },
      });
    },
  },
  {
    name: 'lora.cbor',
    module: 'protocol/lora-cbor.ts',
    setup() {
      const seeds = [
        ...vectorSeeds('cbor.json', 'cborHex'),
        encodeCbor({ valve: 2, openPercent: 37.5, seconds: 30, tags: ['a', null, true, -1.5e-7] }),
      ];
      return target({
        inputs: byteInputs(seeds, 128),
        decode: canonicalBytesOracle(decodeCbor, encodeCbor, 'CBOR item'),
      });
    },
  },
  {
    name: 'lora.compact-string',
    module: 'protocol/lora-wire.ts',
    setup: () =>
      target({
        inputs: byteInputs(compactStringSeeds(), 64),
        decode(b: Uint8Array) {
          const r = new ByteReader(b);
          const s = readCompactString(r, 's');
          const w = new ByteWriter();
          writeCompactString(w, s);
          assert.equal(toHex(w.finish()), toHex(r.since(0)), 'a decoded compact string re-encodes to the same bytes');
        },
      }),
  },
  {
    name: 'lora.telemetry',
    module: 'protocol/lora-telemetry.ts',
    setup: () =>
      target({
        inputs: byteInputs(vectorSeeds('telemetry.json', 'payloadHex'), 256),
        decode: canonicalBytesOracle(decodeTelemetry, encodeTelemetry, 'telemetry payload'),
      }),
  },
  {
    name: 'lora.telemetry-ack',
    module: 'protocol/lora-telemetry.ts',
    setup: () =>
      target({
        inputs: byteInputs(vectorSeeds('telemetry-ack.json', 'payloadHex'), 64),
        decode: canonicalBytesOracle(decodeTelemetryAck, encodeTelemetryAck, 'ack'),
      }),
  },
  {
    name: 'lora.tool-call',
    module: 'protocol/lora-tool.ts',
    setup: () =>
      target({
        inputs: byteInputs(vectorSeeds('tool.json', 'payloadHex', 'tool.call'), 300),
        decode: canonicalBytesOracle(decodeToolCall, encodeToolCall, 'tool.call'),
      }),
  },
  {
    name: 'lora.tool-result',
    module: 'protocol/lora-tool.ts',
    setup: () =>
      target({
        inputs: byteInputs(vectorSeeds('tool.json', 'payloadHex', 'tool.result'), 64),
        decode: canonicalBytesOracle(decodeToolResult, encodeToolResult, 'tool.result'),
      }),
  },
  {
    name: 'lora.heartbeat',
    module: 'protocol/lora-control.ts',
    setup: () =>
      target({
        inputs: byteInputs(vectorSeeds('control.json', 'payloadHex', 'heartbeat'), 32),
        decode: canonicalBytesOracle(decodeHeartbeat, encodeHeartbeat, 'heartbeat'),
      }),
  },
  {
    name: 'lora.control',
    module: 'protocol/lora-control.ts',
    setup: () =>
      target({
        inputs: byteInputs(vectorSeeds('control.json', 'payloadHex', 'control'), 300),
        decode: canonicalBytesOracle(decodeControl, encodeControl, 'control payload'),
      }),
  },
  {
    name: 'lora.beacon',
    module: 'protocol/lora-control.ts',
    setup: () =>
      target({
        inputs: byteInputs(vectorSeeds('control.json', 'frameHex', 'beacon'), 300),
        decode: canonicalBytesOracle((b) => decodeBeacon(b), encodeBeacon, 'beacon'),
      }),
  },
  {
    name: 'lora.enroll-request',
    module: 'protocol/lora-enroll.ts',
    setup() {
      const ev = loadVector<VectorFile<{ token: string; requestHex: string }>>('enroll.json').vectors[0]!;
      return target({
        inputs: byteInputs([fromHex(ev.requestHex)], 256),
        decode: (b: Uint8Array) => openEnrollRequest(b, () => ev.token),
      });
    },
  },
  {
    name: 'lora.enroll-response',
    module: 'protocol/lora-enroll.ts',
    setup() {
      const ev = loadVector<VectorFile<{ token: string; requestHex: string }>>('enroll.json').vectors[0]!;
      const request = fromHex(ev.requestHex);
      return target({
        inputs: byteInputs(vectorSeeds('enroll.json', 'responseHex'), 128),
        decode: (b: Uint8Array) => openEnrollResponse(b, { request, token: ev.token }),
      });
    },
  },
];

// ---------------------------------------------------------------------------------------------
// store: values that arrive from outside (ack ranges from the wire, audit exports from files)

const KEY = new Uint8Array(32).fill(7);

const store: FuzzDecoder[] = [
  {
    name: 'store.ack-ranges',
    module: 'store/outbox.ts',
    setup() {
      const dir = mkdtempSync(join(tmpdir(), 'outpost-fuzz-outbox-'));
      const db = openDatabase(join(dir, 'o.db'), { migrations: [OUTBOX_MIGRATIONS] });
      const outbox = createOutbox(db, { key: KEY });
      outbox.append([1, 2, 3].map(() => ({ stream: 'telemetry', payload: new Uint8Array(1) })));
      outbox.lease(10, 100, 60_000);
      const seeds = [[{ stream: 'telemetry', from: 1, to: 2 }], [{ stream: 'a', from: 0, to: 0 }], []];
      return target({
        inputs: jsonTextInputs(seeds),
        decode: (text: string) => outbox.nack(parseJson(text, 1 << 20) as unknown as SeqRange[]),
        dispose() {
          db.close();
          rmSync(dir, { recursive: true, force: true });
        },
      });
    },
  },
  {
    name: 'store.audit-export',
    module: 'store/audit.ts',
    setup() {
      const dir = mkdtempSync(join(tmpdir(), 'outpost-fuzz-audit-'));
      const db = openDatabase(join(dir, 'a.db'), { migrations: [AUDIT_MIGRATIONS], clock: new FakeClock() });
      const macKey = new Uint8Array(32).fill(3);
      const identity = ed25519KeyPair(new Uint8Array(32).fill(5));
      const signer = {
        keyId: 'did:key:test',
        sign: (ctx: string, msg: Uint8Array) => signEd25519(identity.seed, ctx, msg),
      };
      const audit = createAuditLog(db, { macKey, signer, checkpointEvery: 2 });
      for (let i = 1; i <= 4; i++) {
        audit.append({
          kind: 'tool.call',
          actor: `did:key:operator${i % 3}`,
          subject: 'relay.set',
          decision: i % 2 === 0 ? 'allow' : 'deny',
          reason: i % 2 === 0 ? 'OK' : 'QUORUM_MISSING',
          details: { args_sha256: `h${i}`, n: i },
        });
      }
      const seeds = [...audit.exportJsonLines()].map((l) => JSON.parse(l) as unknown);
      return target({
        inputs: jsonTextInputs(seeds),
        decode(text: string) {
          const { entries, checkpoints } = parseAuditExport([text]);
          return verifyAuditChain(entries, checkpoints, { macKey, publicKey: identity.publicKey });
        },
        dispose() {
          db.close();
          rmSync(dir, { recursive: true, force: true });
        },
      });
    },
  },
];

// ---------------------------------------------------------------------------------------------
// agent: its config file (TOML, hand-edited on the device) and its local API requests (any local process)

const API_LIMITS = { maxBodyBytes: 64 * 1024 };
const API_BODY_SEEDS = [
  { tool: 'greenhouse.fan.set', args: { speed_pct: 40 }, call_id: 'c0ffee00c0ffee00', token: 'a.b.c' },
  { call_id: 'c0ffee00c0ffee00', token: 'a.b.c', quorum: 'q' },
  { records: [{ stream: 'greenhouse.air.temperature', value: 21.5, ts_ms: 1767225600000 }] },
  {
    records: [
      { stream: 'door.events', value: 'open', quality: ['estimated'] },
      { stream: 'door.events', value: true },
    ],
  },
];

const agent: FuzzDecoder[] = [
  {
    name: 'agent.config',
    module: 'agent/config.ts',
    setup() {
      const seeds = ['agent.toml', 'agent.minimal.toml'].map(
        (f) => new Uint8Array(readFileSync(join(ROOT, 'examples', f))),
      );
      return target({
        inputs: byteInputs(seeds, 2048),
        decode: (bytes: Uint8Array) => parseConfig(Buffer.from(bytes).toString('utf8')),
      });
    },
  },
  {
    name: 'agent.api.body',
    module: 'agent/local-api/requests.ts',
    setup() {
      const posts = ROUTES.filter((r) => r.method === 'POST').map((r) => r.path);
      type Input = [string, string];
      return target<Input>({
        inputs: fc.tuple(fc.constantFrom(...posts), jsonTextInputs(API_BODY_SEEDS)),
        decode: ([path, body]) => decodeApiRequest('POST', path, body, API_LIMITS),
      });
    },
  },
  {
    name: 'agent.api.target',
    module: 'agent/local-api/requests.ts',
    setup() {
      type Input = [string, string, string];
      return target<Input>({
        inputs: fc.tuple(
          fc.constantFrom('GET', 'POST', 'PUT', 'HEAD', ''),
          fc.oneof(
            fc.string({ maxLength: 80 }).map((s) => `/v1/telemetry?${s}`),
            fc.string({ maxLength: 80 }).map((s) => `/${s}`),
            fc.constantFrom(...ROUTES.map((r) => r.path)),
          ),
          fc.constantFrom('', '{}'),
        ),
        decode: ([m, t, b]) => decodeApiRequest(m, t, b, API_LIMITS),
      });
    },
  },
];

/** Every registered decoder, in a stable order. */
export const DECODERS: readonly FuzzDecoder[] = [
  ...radio,
  ...meshtastic,
  ...basics,
  ...capabilities,
  ...credentials,
  ...wire,
  ...lora,
  ...store,
  ...agent,
];
