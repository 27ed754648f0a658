// The WSS envelope of subprotocol `aethermesh.v2`: one strict schema per message type, a total decoder
// that rejects unknown types and fields, and device signatures relays cannot forge (docs/protocol/envelope.md).

import { createHash, randomBytes } from 'node:crypto';
import { z } from 'zod';
import { fromBase64Url, toBase64Url } from './bytes.ts';
import { canonicalBytes, canonicalize, parseJson } from './canonical-json.ts';
import { didKeyFromEd25519, ed25519FromDidKey } from './did-key.ts';
import { ProtocolError, type ProtocolErrorCode } from './errors.ts';
import { base64UrlBytes, DeviceId, isDeviceId, SafeUint, TenantId, ToolName } from './identifiers.ts';
import { JwkSet, Kid } from './jwks.ts';
import { LORA_RELAY_BODIES } from './lora-relay.ts';
import { MAX_QUORUM_TOKEN_BYTES, QuorumPolicy } from './quorum.ts';
import { ed25519KeyPair, signEd25519, verifyEd25519 } from './signing.ts';
import { TelemetryUnit } from './telemetry.ts';
import { MAX_TOKEN_BYTES } from './tokens.ts';

/** The WebSocket subprotocol (RFC 6455 §1.9) both ends must select. */
export const WSS_SUBPROTOCOL = 'aethermesh.v2';
/** `v` of every envelope of this subprotocol. */
export const ENVELOPE_VERSION = 2;
/** Context label of envelope signatures (envelope.md §4). */
export const ENVELOPE_SIGNATURE_CONTEXT = 'outpost/envelope/v1';
/** Default largest envelope, in UTF-8 bytes; set the WebSocket maxPayload to match. */
export const DEFAULT_MAX_ENVELOPE_BYTES = 1_048_576;
export const MAX_BATCH_UNITS = 64;
export const MAX_ACK_RANGES = 256;
export const MAX_MESSAGE_LENGTH = 1024;

/** Codes an `error` envelope may carry (envelope.md §8): decoder codes, then session codes. */
export const WIRE_ERROR_CODES = [
  'ENVELOPE_TOO_LARGE',
  'ENVELOPE_MALFORMED',
  'ENVELOPE_BAD_VERSION',
  'ENVELOPE_UNKNOWN_TYPE',
  'ENVELOPE_UNKNOWN_FIELD',
  'ENVELOPE_SIGNATURE_REQUIRED',
  'ENVELOPE_UNEXPECTED_SIGNATURE',
  'ENVELOPE_BAD_SIGNATURE',
  'ENVELOPE_WRONG_TENANT',
  'ENVELOPE_WRONG_SOURCE',
  'HANDSHAKE_REQUIRED',
  'HANDSHAKE_FAILED',
  'HANDSHAKE_TIMEOUT',
  'UNAUTHENTICATED',
  'TOKEN_EXPIRED',
  'FORBIDDEN',
  'SEQ_VIOLATION',
  'RATE_LIMITED',
  'UNKNOWN_CALL',
  'SESSION_REPLACED',
  'SHUTTING_DOWN',
  'INTERNAL',
] as const;
export type WireErrorCode = (typeof WIRE_ERROR_CODES)[number];

// ---------------------------------------------------------------------------------------------
// Field schemas (envelope.md §3)

/** Envelope, call and session ids: 16..64 base64url characters (128 random bits recommended). */
export const MessageId = z.string().regex(/^[A-Za-z0-9_-]{16,64}$/, 'bad id');
/** A control-plane node: `cp:<name>`. */
export const ControlPlaneId = z.string().regex(/^cp:[a-z0-9][a-z0-9._-]{0,62}$/, 'bad control-plane id');
/** Who sends or receives: a device or gateway (did:key) or a control-plane node. */
export const EndpointId = z.union([DeviceId, ControlPlaneId]);

/** manifest.md §8: `sha256:` and the lowercase hex SHA-256 of the manifest's canonical bytes. */
const ManifestHash = z.string().regex(/^sha256:[0-9a-f]{64}$/, 'bad manifest hash');

/** manifestHash of manifest.md §8 over a manifest not yet decoded (any JSON object). */
function manifestHashOf(manifest: Record<string, unknown>): string {
  return `sha256:${createHash('sha256').update(canonicalBytes(manifest)).digest('hex')}`;
}
const TokenText = z
  .string()
  .max(MAX_TOKEN_BYTES)
  .regex(/^[A-Za-z0-9_.-]+$/, 'bad token text');
// Free-form JSON (manifests, arguments, results), typed loosely so typed values (a CapabilityManifest) fit;
// checkStructure's canonical round trip refuses anything JSON cannot carry.
const JsonObject = z.record(z.string(), z.unknown());
const JsonValue = z.unknown().refine((v) => v !== undefined, 'a JSON value is required');
const Text = z.string().max(MAX_MESSAGE_LENGTH);

// ---------------------------------------------------------------------------------------------
// Bodies, one per type (envelope.md §6)

const BODIES = {
  'hello.challenge': z.strictObject({ nonce: base64UrlBytes(32) }),
  hello: z.strictObject({
    token: TokenText,
    device: DeviceId,
    agentVersion: z.string().regex(/^[0-9A-Za-z.+_-]{1,64}$/),
    manifestHash: ManifestHash,
    resume: z.strictObject({ lastAckedSeq: SafeUint.nullable() }),
    challenge: base64UrlBytes(32),
  }),
  'hello.ack': z.strictObject({
    sessionId: MessageId,
    heartbeatMs: z.int().min(1000).max(300_000),
    resume: z.strictObject({ ackedThroughSeq: SafeUint.nullable() }),
  }),
  'manifest.announce': z.strictObject({ manifest: JsonObject, manifestHash: ManifestHash }),
  'manifest.ack': z.strictObject({ manifestHash: ManifestHash, status: z.enum(['accepted', 'pending_approval']) }),
  'tool.call': z.strictObject({
    callId: MessageId,
    tool: ToolName,
    args: JsonObject,
    token: TokenText,
    quorum: z
      .string()
      .max(Math.ceil((MAX_QUORUM_TOKEN_BYTES * 4) / 3))
      .regex(/^[A-Za-z0-9_-]+$/)
      .optional(),
    deadlineMs: SafeUint,
  }),
  'tool.result': z.discriminatedUnion('ok', [
    z.strictObject({ callId: MessageId, ok: z.literal(true), result: JsonValue, durationMs: SafeUint }),
    z.strictObject({
      callId: MessageId,
      ok: z.literal(false),
      error: z.strictObject({ code: z.string().regex(/^[A-Z][A-Z0-9_]{0,63}$/), message: Text }),
      durationMs: SafeUint,
    }),
  ]),
  'telemetry.batch': z.strictObject({ units: z.array(TelemetryUnit).min(1).max(MAX_BATCH_UNITS) }),
  'telemetry.ack': z.strictObject({
    ranges: z
      .array(
        z
          .strictObject({ device: DeviceId, fromSeq: SafeUint, toSeq: SafeUint })
          .refine((r) => r.fromSeq <= r.toSeq, 'fromSeq must not exceed toSeq'),
      )
      .min(1)
      .max(MAX_ACK_RANGES),
  }),
  'token.refresh': z.strictObject({ token: TokenText }),
  'token.refreshed': z.strictObject({ token: TokenText, jwks: JwkSet.optional() }),
  revoke: z.discriminatedUnion('kind', [
    z.strictObject({ kind: z.literal('token'), jti: z.string().regex(/^[A-Za-z0-9_-]{16,64}$/), untilMs: SafeUint }),
    z.strictObject({ kind: z.literal('key'), kid: Kid }),
    z.strictObject({ kind: z.literal('device'), device: DeviceId }),
  ]),
  'policy.update': z.strictObject({ policy: QuorumPolicy }),
  error: z.strictObject({ code: z.enum(WIRE_ERROR_CODES), message: Text, inReplyTo: MessageId.nullable() }),
  ping: z.strictObject({}),
  pong: z.strictObject({ inReplyTo: MessageId }),
  // Gateway relay of LoRa frames (lora-relay.md).
  ...LORA_RELAY_BODIES,
} as const;

export type EnvelopeType = keyof typeof BODIES;
export const ENVELOPE_TYPES = Object.keys(BODIES) as EnvelopeType[];

const HEADER = {
  v: z.literal(ENVELOPE_VERSION),
  id: MessageId,
  tid: TenantId,
  /** Sender's wall clock, ms since the Unix epoch. */
  ts: SafeUint,
  /** Per (connection, src) counter; see envelope.md §5.2. */
  seq: SafeUint,
  src: EndpointId,
  dst: EndpointId,
  sig: base64UrlBytes(64).optional(),
};

function variant<T extends EnvelopeType>(type: T) {
  return z.strictObject({ ...HEADER, type: z.literal(type), body: BODIES[type] });
}

export const Envelope = z.discriminatedUnion('type', [
  // The challenge goes out before the peer has said who it is: src is the control plane, dst is '*'.
  z.strictObject({
    ...HEADER,
    type: z.literal('hello.challenge'),
    src: ControlPlaneId,
    dst: z.literal('*'),
    sig: z.undefined().optional(),
    body: BODIES['hello.challenge'],
  }),
  z.strictObject({ ...HEADER, type: z.literal('hello'), src: DeviceId, body: BODIES.hello }),
  variant('hello.ack'),
  variant('manifest.announce'),
  variant('manifest.ack'),
  variant('tool.call'),
  variant('tool.result'),
  variant('telemetry.batch'),
  variant('telemetry.ack'),
  variant('token.refresh'),
  variant('token.refreshed'),
  variant('revoke'),
  variant('policy.update'),
  variant('error'),
  variant('ping'),
  variant('pong'),
  variant('lora.uplink'),
  variant('lora.ack'),
  variant('lora.downlink'),
  variant('lora.downlink.cancel'),
  variant('lora.downlink.report'),
  variant('lora.devices'),
  variant('lora.health'),
]);
export type Envelope = z.infer<typeof Envelope>;
export type EnvelopeOf<T extends EnvelopeType> = Extract<Envelope, { type: T }>;
export type BodyOf<T extends EnvelopeType> = EnvelopeOf<T>['body'];
/** An envelope before signing. */
export type UnsignedEnvelope<T extends EnvelopeType = EnvelopeType> = Omit<EnvelopeOf<T>, 'sig'>;

// ---------------------------------------------------------------------------------------------
// Decoding (envelope.md §7)

function fail(code: ProtocolErrorCode, message: string, details: Record<string, unknown> = {}, cause?: unknown) {
  return new ProtocolError(code, message, { details, ...(cause === undefined ? {} : { cause }) });
}

/** Validates an envelope value: schema, signature presence, cross-field rules. No signature check. */
function checkStructure(value: unknown): Envelope {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw fail('ENVELOPE_MALFORMED', 'envelope must be a JSON object');
  }
  const obj = value as Record<string, unknown>;
  if (obj.v !== ENVELOPE_VERSION) throw fail('ENVELOPE_BAD_VERSION', `envelope v must be ${ENVELOPE_VERSION}`);
  if (typeof obj.type !== 'string') throw fail('ENVELOPE_MALFORMED', 'envelope type must be a string');
  if (!Object.hasOwn(BODIES, obj.type)) {
    throw fail('ENVELOPE_UNKNOWN_TYPE', 'unknown envelope type', { type: obj.type.slice(0, 64) });
  }
  const r = Envelope.safeParse(value);
  if (!r.success) {
    const unknown = r.error.issues.find((i) => i.code === 'unrecognized_keys');
    if (unknown) {
      throw fail('ENVELOPE_UNKNOWN_FIELD', `unknown field at ${unknown.path.join('.') || 'top level'}`, {
        path: unknown.path.join('.'),
        keys: unknown.keys.slice(0, 8).map((k) => k.slice(0, 64)),
      });
    }
    const issue = r.error.issues[0];
    throw fail('ENVELOPE_MALFORMED', `${obj.type}: ${issue?.message ?? 'invalid'} at ${issue?.path.join('.')}`, {
      path: issue?.path.join('.'),
    });
  }
  const env = r.data;
  // Validation must not have changed the value (e.g. a "__proto__" member); signatures cover exactly it.
  let same: boolean;
  try {
    same = canonicalize(env) === canonicalize(value);
  } catch (cause) {
    throw fail('ENVELOPE_MALFORMED', 'envelope holds a value JSON cannot carry canonically', {}, cause);
  }
  if (!same) throw fail('ENVELOPE_MALFORMED', 'envelope holds members that cannot be carried');
  const signed = isDeviceId(env.src);
  if (signed && env.sig === undefined) throw fail('ENVELOPE_SIGNATURE_REQUIRED', 'did:key sources must sign');
  if (!signed && env.sig !== undefined) throw fail('ENVELOPE_UNEXPECTED_SIGNATURE', 'only did:key sources sign');
  if (env.type === 'hello' && env.body.device !== env.src) {
    throw fail('ENVELOPE_WRONG_SOURCE', 'hello must come from the device it names');
  }
  if (env.type === 'policy.update' && env.body.policy.tid !== env.tid) {
    throw fail('ENVELOPE_WRONG_TENANT', 'policy is for another tenant than its envelope');
  }
  if (env.type === 'manifest.announce' && manifestHashOf(env.body.manifest) !== env.body.manifestHash) {
    throw fail('ENVELOPE_MALFORMED', 'manifestHash does not match the manifest');
  }
  return env;
}

/** The bytes an envelope signature covers: the canonical envelope without `sig`. */
export function envelopeSigningBytes(envelope: UnsignedEnvelope | Envelope): Uint8Array {
  const { sig: _sig, ...unsigned } = envelope as Envelope;
  return canonicalBytes(unsigned);
}

/**
 * Checks the signature rule of envelope.md §4: an envelope from a did:key carries a valid signature by
 * that key; others carry none. Throws ENVELOPE_SIGNATURE_REQUIRED, ENVELOPE_UNEXPECTED_SIGNATURE or
 * ENVELOPE_BAD_SIGNATURE.
 */
export function verifyEnvelope(envelope: Envelope): void {
  if (!isDeviceId(envelope.src)) {
    if (envelope.sig !== undefined) throw fail('ENVELOPE_UNEXPECTED_SIGNATURE', 'only did:key sources sign');
    return;
  }
  if (envelope.sig === undefined) throw fail('ENVELOPE_SIGNATURE_REQUIRED', 'did:key sources must sign');
  let ok: boolean;
  try {
    ok = verifyEd25519(
      ed25519FromDidKey(envelope.src),
      ENVELOPE_SIGNATURE_CONTEXT,
      envelopeSigningBytes(envelope),
      fromBase64Url(envelope.sig),
    );
  } catch {
    ok = false; // an unusable key or signature encoding cannot verify
  }
  if (!ok) throw fail('ENVELOPE_BAD_SIGNATURE', 'envelope signature does not verify', { src: envelope.src });
}

export interface DecodeEnvelopeOptions {
  /** Largest accepted text, UTF-8 bytes (default 1 MiB). */
  readonly maxBytes?: number;
  /** The tenant of this connection; envelopes for any other are refused. */
  readonly tid?: string;
}

/**
 * Decodes one text frame: size, JSON, version, type, strict schema, tenant, signature. Returns the typed
 * envelope or throws ProtocolError with an ENVELOPE_* code (envelope.md §9); never anything else.
 */
export function decodeEnvelope(text: string, options: DecodeEnvelopeOptions = {}): Envelope {
  const maxBytes = options.maxBytes ?? DEFAULT_MAX_ENVELOPE_BYTES;
  let value: unknown;
  try {
    value = parseJson(text, maxBytes);
  } catch (cause) {
    if (cause instanceof ProtocolError && cause.code === 'JSON_TOO_LARGE') {
      throw fail('ENVELOPE_TOO_LARGE', `envelope exceeds ${maxBytes} bytes`, { maxBytes }, cause);
    }
    throw fail('ENVELOPE_MALFORMED', 'envelope is not JSON', {}, cause);
  }
  const env = checkStructure(value);
  if (options.tid !== undefined && env.tid !== options.tid) {
    throw fail('ENVELOPE_WRONG_TENANT', 'envelope is for another tenant');
  }
  verifyEnvelope(env);
  return env;
}

/** The wire text of an envelope (validated first, same codes as decodeEnvelope): RFC 8785 canonical JSON. */
export function encodeEnvelope(envelope: Envelope): string {
  return canonicalize(checkStructure(envelope));
}

/**
 * Signs an envelope with the 32-byte Ed25519 seed of its source. Throws ENVELOPE_WRONG_SOURCE when
 * `src` is not that key's did:key, and the decoder's codes for an invalid envelope.
 */
export function signEnvelope<T extends EnvelopeType>(envelope: UnsignedEnvelope<T>, seed: Uint8Array): EnvelopeOf<T> {
  const did = didKeyFromEd25519(ed25519KeyPair(seed).publicKey);
  if (envelope.src !== did) throw fail('ENVELOPE_WRONG_SOURCE', 'src is not the signing key');
  const sig = toBase64Url(signEd25519(seed, ENVELOPE_SIGNATURE_CONTEXT, envelopeSigningBytes(envelope)));
  return checkStructure({ ...envelope, sig }) as EnvelopeOf<T>;
}

/** A fresh random id for envelopes, calls and sessions (128 bits, base64url). */
export function newMessageId(): string {
  return toBase64Url(randomBytes(16));
}
