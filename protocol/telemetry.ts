// Telemetry records and the signed unit a device creates at the source on ingest: consecutive records
// signed by the device key over their canonical bytes, verifiable by anyone holding the did:key
// (docs/protocol/telemetry.md).

import { z } from 'zod';
import { fromBase64Url, toBase64Url } from './bytes.ts';
import { canonicalBytes, canonicalize, parseJson } from './canonical-json.ts';
import { didKeyFromEd25519, ed25519FromDidKey } from './did-key.ts';
import { ProtocolError } from './errors.ts';
import { base64UrlBytes, DeviceId, MAX_TOOL_NAME_LENGTH, SafeUint, TOOL_NAME_PATTERN } from './identifiers.ts';
import type { StreamSpec } from './manifest.ts';
import { ed25519KeyPair, signEd25519, verifyEd25519 } from './signing.ts';

/** Context label of a unit signature (telemetry.md §4). */
export const TELEMETRY_UNIT_CONTEXT = 'outpost/telemetry-unit/v1';
export const TELEMETRY_UNIT_VERSION = 1;
/** Most records in one unit. */
export const MAX_UNIT_RECORDS = 256;
/** Largest unit, as canonical JSON bytes. */
export const MAX_UNIT_BYTES = 65_536;
/** Longest string value, in UTF-16 code units. */
export const MAX_STRING_VALUE_LENGTH = 256;

/** Quality flags (telemetry.md §2.2); absent means a good, direct reading. */
export const QUALITY_FLAGS = ['estimated', 'clipped', 'stale', 'sensor_fault', 'calibrating', 'substituted'] as const;
export type QualityFlag = (typeof QUALITY_FLAGS)[number];

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/** Stream names follow the manifest's telemetry stream names: lowercase dotted words (`soil.moisture`). */
export const StreamName = z.string().max(MAX_TOOL_NAME_LENGTH).regex(TOOL_NAME_PATTERN, 'bad stream name');

export const TelemetryValue = z.union([
  z.number(),
  z.boolean(),
  z
    .string()
    .max(MAX_STRING_VALUE_LENGTH)
    .refine((s) => !LONE_SURROGATE.test(s), 'string holds a lone surrogate'),
]);
export type TelemetryValue = z.infer<typeof TelemetryValue>;

export const TelemetryRecord = z.strictObject({
  /** Per-device sequence number: never repeats for a device, across streams and restarts. */
  seq: SafeUint,
  stream: StreamName,
  /** Sampling time, ms since the Unix epoch, by the device's clock. */
  ts: SafeUint,
  value: TelemetryValue,
  quality: z
    .array(z.enum(QUALITY_FLAGS))
    .min(1)
    .max(QUALITY_FLAGS.length)
    .refine((q) => new Set(q).size === q.length, 'duplicate quality flag')
    .optional(),
});
export type TelemetryRecord = z.infer<typeof TelemetryRecord>;

const consecutive = (records: readonly TelemetryRecord[]) =>
  records.every((r, i) => i === 0 || r.seq === records[0]!.seq + i);

export const TelemetryUnit = z
  .strictObject({
    v: z.literal(TELEMETRY_UNIT_VERSION),
    device: DeviceId,
    records: z.array(TelemetryRecord).min(1).max(MAX_UNIT_RECORDS),
    sig: base64UrlBytes(64),
  })
  .refine((u) => consecutive(u.records), { message: 'record seqs must be consecutive', path: ['records'] });
export type TelemetryUnit = z.infer<typeof TelemetryUnit>;

/** The bytes a unit's signature covers: the canonical unit without `sig`. */
export function telemetryUnitSigningBytes(unit: {
  readonly v: number;
  readonly device: string;
  readonly records: readonly TelemetryRecord[];
}): Uint8Array {
  return canonicalBytes({ v: unit.v, device: unit.device, records: unit.records });
}

/**
 * Creates a unit of `records` signed with the device's 32-byte Ed25519 seed. Throws TELEMETRY_SEQ_GAP
 * when seqs are not consecutive, TELEMETRY_MALFORMED for records outside the schema, TELEMETRY_TOO_LARGE.
 */
export function signTelemetryUnit(seed: Uint8Array, records: readonly TelemetryRecord[]): TelemetryUnit {
  const checked = z.array(TelemetryRecord).min(1).max(MAX_UNIT_RECORDS).safeParse(records);
  if (!checked.success) {
    const issue = checked.error.issues[0];
    throw new ProtocolError('TELEMETRY_MALFORMED', `telemetry records: ${issue?.message}`, {
      details: { path: issue?.path.join('.') },
    });
  }
  if (!consecutive(records)) throw new ProtocolError('TELEMETRY_SEQ_GAP', 'record seqs must be consecutive');
  const device = didKeyFromEd25519(ed25519KeyPair(seed).publicKey);
  const unsigned = { v: TELEMETRY_UNIT_VERSION, device, records: checked.data } as const;
  const sig = toBase64Url(signEd25519(seed, TELEMETRY_UNIT_CONTEXT, telemetryUnitSigningBytes(unsigned)));
  return parseTelemetryUnit({ ...unsigned, sig });
}

/**
 * Validates a parsed unit value: schema, consecutive seqs, size. Does not check the signature.
 * Throws TELEMETRY_MALFORMED, TELEMETRY_SEQ_GAP or TELEMETRY_TOO_LARGE.
 */
export function parseTelemetryUnit(value: unknown): TelemetryUnit {
  const r = TelemetryUnit.safeParse(value);
  if (!r.success) {
    const issue = r.error.issues[0];
    const gap = issue?.message === 'record seqs must be consecutive';
    throw new ProtocolError(gap ? 'TELEMETRY_SEQ_GAP' : 'TELEMETRY_MALFORMED', `telemetry unit: ${issue?.message}`, {
      details: { path: issue?.path.join('.') },
    });
  }
  if (canonicalBytes(r.data).length > MAX_UNIT_BYTES) {
    throw new ProtocolError('TELEMETRY_TOO_LARGE', `unit exceeds ${MAX_UNIT_BYTES} bytes`);
  }
  return r.data;
}

/** The unit's wire text: RFC 8785 canonical JSON. */
export function encodeTelemetryUnit(unit: TelemetryUnit): string {
  return canonicalize(parseTelemetryUnit(unit));
}

/** Decodes unit text (at most `maxBytes`). Throws TELEMETRY_TOO_LARGE, TELEMETRY_MALFORMED, TELEMETRY_SEQ_GAP. */
export function decodeTelemetryUnit(text: string, options: { maxBytes?: number } = {}): TelemetryUnit {
  let value: unknown;
  try {
    value = parseJson(text, options.maxBytes ?? MAX_UNIT_BYTES);
  } catch (cause) {
    const tooLarge = cause instanceof ProtocolError && cause.code === 'JSON_TOO_LARGE';
    throw new ProtocolError(tooLarge ? 'TELEMETRY_TOO_LARGE' : 'TELEMETRY_MALFORMED', 'telemetry unit is not JSON', {
      cause,
    });
  }
  return parseTelemetryUnit(value);
}

/**
 * Checks a unit's signature against the key its `device` names, and, when given, that it comes from
 * `expectedDevice`. Throws TELEMETRY_WRONG_DEVICE or TELEMETRY_BAD_SIGNATURE.
 */
export function verifyTelemetryUnit(unit: TelemetryUnit, expectedDevice?: string): void {
  if (expectedDevice !== undefined && unit.device !== expectedDevice) {
    throw new ProtocolError('TELEMETRY_WRONG_DEVICE', 'unit is from another device');
  }
  let ok: boolean;
  try {
    ok = verifyEd25519(
      ed25519FromDidKey(unit.device),
      TELEMETRY_UNIT_CONTEXT,
      telemetryUnitSigningBytes(unit),
      fromBase64Url(unit.sig),
    );
  } catch {
    ok = false; // an unparseable key or signature cannot verify
  }
  if (!ok) throw new ProtocolError('TELEMETRY_BAD_SIGNATURE', 'unit signature does not verify');
}

/**
 * True when `value` has the type the device's manifest declares for its stream (`StreamSpec.type`): receivers
 * check this after verifying the unit, since the unit itself does not carry the manifest.
 */
export function valueFitsStream(value: TelemetryValue, type: StreamSpec['type']): boolean {
  switch (type) {
    case 'number':
      return typeof value === 'number';
    case 'integer':
      return typeof value === 'number' && Number.isSafeInteger(value);
    case 'boolean':
      return typeof value === 'boolean';
    case 'string':
      return typeof value === 'string';
  }
}
