// CapabilityManifest (docs/protocol/manifest.md): what a device announces — identity, tools with their schemas,
// safety classes, limits and undo, telemetry streams, radios. Strict zod schemas with derived types, the decoder
// (typed value or a ProtocolError locating every problem), the manifest hash, and pure helpers the safety gate uses.

import { createHash } from 'node:crypto';
import { z } from 'zod';
import { canonicalBytes, type JsonValue, MAX_JSON_DEPTH } from './canonical-json.ts';
import { ed25519FromDidKey } from './did-key.ts';
import { ProtocolError } from './errors.ts';
import { formatJsonPointer, type JsonPath, parseJsonPointer, resolveJsonPointer } from './json-pointer.ts';
import {
  type JsonSchema,
  JsonSchemaNode,
  PlainJsonValue,
  PROPERTY_NAME,
  ToolInputSchema,
  ToolOutputSchema,
  validateJson,
} from './json-schema.ts';
import { type JsonSourceMap, parseJsonWithPositions } from './json-source-map.ts';

/** The only manifest version this code reads and writes (`manifestVersion`). */
export const MANIFEST_VERSION = 1;
/** Largest manifest text accepted, in UTF-8 bytes. */
export const MAX_MANIFEST_BYTES = 256 * 1024;
export const MAX_TOOLS = 128;
export const MAX_STREAMS = 128;
export const MAX_RADIOS = 4;
export const MAX_INTERLOCKS = 8;
const DAY_MS = 86_400_000;

/** Tool and stream names: lowercase dotted words, at least two (`valve.open`, `soil.moisture`), ≤ 64 characters. */
export const DOTTED_NAME = /^[a-z][a-z0-9_]*(?:\.[a-z][a-z0-9_]*)+$/;
/** A device's short label: a DNS-label-like word without dots, 1..32 characters; the MCP gateway's name prefix. */
export const DEVICE_LABEL = /^[a-z0-9](?:[a-z0-9-]{0,30}[a-z0-9])?$/;

const dottedName = (what: string) =>
  z.string().max(64).regex(DOTTED_NAME, `${what} names are lowercase dotted words like "valve.open"`);
export const ToolName = dottedName('tool');
const text = (max: number) =>
  z
    .string()
    .min(1)
    .max(max)
    .regex(/^[^\p{Cc}]*$/u, 'control characters are not allowed');

const isDidKey = (s: string): boolean => {
  try {
    ed25519FromDidKey(s);
    return true;
  } catch {
    return false; // the refinement's message says what is wrong
  }
};

export const SafetyClass = z.enum(['read_only', 'reversible', 'physical_actuation']);
export type SafetyClass = z.infer<typeof SafetyClass>;

export const RateLimit = z.strictObject({
  /** At most this many calls… */
  maxCalls: z.int().min(1).max(10_000),
  /** …in any window of this many milliseconds. */
  perMs: z.int().min(1).max(DAY_MS),
});
export type RateLimit = z.infer<typeof RateLimit>;

export const Interlock = z.discriminatedUnion('kind', [
  /** At least `ms` between the starts of two allowed calls of this tool (monotonic clock). */
  z.strictObject({ kind: z.literal('min_interval'), ms: z.int().min(1).max(DAY_MS) }),
  /** Calls only while the local hour h (UTC + utcOffsetMinutes) is in [fromHour, toHour), wrapping past midnight. */
  z.strictObject({
    kind: z.literal('allowed_hours'),
    fromHour: z.int().min(0).max(23),
    toHour: z.int().min(0).max(23),
    utcOffsetMinutes: z.int().min(-720).max(840),
  }),
  /** No call of this tool within windowMs after a call of any tool listed started, and the reverse. */
  z.strictObject({
    kind: z.literal('mutually_exclusive'),
    tools: z.array(ToolName).min(1).max(16),
    windowMs: z.int().min(1).max(DAY_MS),
  }),
]);
export type Interlock = z.infer<typeof Interlock>;

/** Where an undo argument comes from: a required property of the original call's args or result, or a constant. */
export const ArgSource = z.union([
  z.strictObject({ from: z.enum(['args', 'result']), pointer: z.string().min(1).max(256) }),
  z.strictObject({ const: PlainJsonValue }),
]);
export type ArgSource = z.infer<typeof ArgSource>;

export const UndoSpec = z.strictObject({
  /** The tool that undoes this one (may be the tool itself, e.g. `fan.set` back to the previous speed). */
  tool: ToolName,
  /** The undo call's arguments, by name. */
  args: z.record(z.string().regex(PROPERTY_NAME, 'argument names are identifiers'), ArgSource),
});
export type UndoSpec = z.infer<typeof UndoSpec>;

export const ToolSpec = z.strictObject({
  name: ToolName,
  title: text(64).optional(),
  description: text(1024),
  inputSchema: ToolInputSchema,
  outputSchema: ToolOutputSchema.optional(),
  safety_class: SafetyClass,
  /** The device aborts a call that has not finished after this long. */
  timeoutMs: z.int().min(1).max(600_000),
  rateLimit: RateLimit.optional(),
  interlocks: z.array(Interlock).max(MAX_INTERLOCKS).optional(),
  /** Required iff safety_class is 'reversible'. */
  undo: UndoSpec.optional(),
});
export type ToolSpec = z.infer<typeof ToolSpec>;

export const StreamSpec = z.strictObject({
  name: dottedName('stream'),
  description: text(256).optional(),
  /** Unit of the values, e.g. "Cel", "%", "kPa", "dBm" (UCUM codes recommended); absent for unitless values. */
  unit: text(16).optional(),
  type: z.enum(['number', 'integer', 'boolean', 'string']),
  /** How often the device samples; absent for an event stream (a value is recorded when something happens). */
  samplePeriodMs: z.int().min(100).max(DAY_MS).optional(),
  /** After this long an undelivered reading is worthless and may be dropped. At least samplePeriodMs. */
  ttlMs: z
    .int()
    .min(1)
    .max(30 * DAY_MS),
  /** 0 (least important) .. 7 (most important): a full outbox drops the lowest priority first. */
  priority: z.int().min(0).max(7),
});
export type StreamSpec = z.infer<typeof StreamSpec>;

/** Regulatory regions and their band edges in Hz (the radio's frequency must lie inside). */
export const REGION_BANDS_HZ = Object.freeze({
  EU868: [863_000_000, 870_000_000],
  EU433: [433_050_000, 434_790_000],
  US915: [902_000_000, 928_000_000],
  AU915: [915_000_000, 928_000_000],
  AS923: [915_000_000, 928_000_000],
  KR920: [920_900_000, 923_300_000],
  IN865: [865_000_000, 867_000_000],
} as const);
const Region = z.enum(Object.keys(REGION_BANDS_HZ) as [keyof typeof REGION_BANDS_HZ]);
const RadioRole = z.enum(['uplink', 'gateway']);

export const RadioSpec = z.discriminatedUnion('kind', [
  z.strictObject({
    kind: z.literal('rnode'),
    /** uplink: the device sends its own traffic over this radio; gateway: it relays other devices' frames. */
    role: RadioRole,
    region: Region,
    frequencyHz: z.int().min(137_000_000).max(1_020_000_000),
    bandwidthHz: z.literal([62_500, 125_000, 250_000, 500_000]),
    spreadingFactor: z.int().min(7).max(12),
    codingRate: z.int().min(5).max(8),
    txPowerDbm: z.int().min(0).max(22),
  }),
  z.strictObject({
    kind: z.literal('meshtastic'),
    role: RadioRole,
    region: Region,
    modemPreset: z
      .enum([
        'LONG_FAST',
        'LONG_SLOW',
        'LONG_MODERATE',
        'MEDIUM_SLOW',
        'MEDIUM_FAST',
        'SHORT_SLOW',
        'SHORT_FAST',
        'SHORT_TURBO',
      ])
      .optional(),
    channelIndex: z.int().min(0).max(7).optional(),
  }),
]);
export type RadioSpec = z.infer<typeof RadioSpec>;

export const DeviceInfo = z.strictObject({
  /** The device's Ed25519 did:key: its identity. */
  id: z
    .string()
    .regex(/^did:key:z6Mk[1-9A-HJ-NP-Za-km-z]{44}$/, {
      message: 'must be an Ed25519 did:key (did:key:z6Mk…)',
      abort: true,
    })
    .refine(isDidKey, 'must be an Ed25519 did:key (did:key:z6Mk…)'),
  /** Short label, unique within a tenant; the MCP gateway names tools `<name>.<tool>`. */
  name: z
    .string()
    .regex(DEVICE_LABEL, 'device names are lowercase letters, digits and inner hyphens, 1..32 characters'),
  model: text(64).optional(),
  labels: z
    .record(z.string().regex(/^[a-z][a-z0-9_.-]{0,62}$/, 'label keys are lowercase words'), text(64))
    .refine((l) => Object.keys(l).length <= 16, 'at most 16 labels')
    .optional(),
  agentVersion: z
    .string()
    .max(64)
    .regex(/^\d+\.\d+\.\d+(?:[-+][0-9A-Za-z.-]+)?$/, 'a semantic version like 1.2.3'),
});
export type DeviceInfo = z.infer<typeof DeviceInfo>;

export const CapabilityManifest = z
  .strictObject({
    manifestVersion: z.literal(MANIFEST_VERSION),
    device: DeviceInfo,
    tools: z.array(ToolSpec).max(MAX_TOOLS),
    streams: z.array(StreamSpec).max(MAX_STREAMS).optional(),
    radios: z.array(RadioSpec).max(MAX_RADIOS).optional(),
  })
  .superRefine((m, ctx) => {
    for (const issue of crossFieldIssues(m as CapabilityManifest)) {
      ctx.addIssue({ code: 'custom', path: [...issue.path], message: issue.message });
    }
  });
export type CapabilityManifest = z.infer<typeof CapabilityManifest>;

interface Issue {
  path: JsonPath;
  message: string;
}

/** The schema node a pointer names by property names only, if every step is a required property of an object. */
function requiredPathSchema(schema: JsonSchema, pointer: string): { node?: JsonSchema; problem?: string } {
  let tokens: string[];
  try {
    tokens = parseJsonPointer(pointer);
  } catch (e) {
    return { problem: (e as Error).message };
  }
  if (tokens.length === 0) return { problem: 'the pointer must name a property, not the whole document' };
  let node: JsonSchema = schema;
  for (const t of tokens) {
    if (node.type !== 'object') return { problem: `"${t}" is not inside an object` };
    if (!node.properties || !Object.hasOwn(node.properties, t)) return { problem: `no property "${t}"` };
    if (!node.required?.includes(t)) return { problem: `property "${t}" is not required, so it may be absent` };
    node = node.properties[t]!;
  }
  return { node };
}

function compatible(source: JsonSchema, target: JsonSchema): boolean {
  return source.type === target.type || (source.type === 'integer' && target.type === 'number');
}

function crossFieldIssues(m: CapabilityManifest): Issue[] {
  const issues: Issue[] = [];
  const byName = new Map<string, ToolSpec>();
  m.tools.forEach((t, i) => {
    if (byName.has(t.name)) issues.push({ path: ['tools', i, 'name'], message: `tool "${t.name}" is declared twice` });
    else byName.set(t.name, t);
  });
  const streams = new Set<string>();
  m.streams?.forEach((s, i) => {
    if (streams.has(s.name))
      issues.push({ path: ['streams', i, 'name'], message: `stream "${s.name}" is declared twice` });
    streams.add(s.name);
    if (s.samplePeriodMs !== undefined && s.ttlMs < s.samplePeriodMs) {
      issues.push({ path: ['streams', i, 'ttlMs'], message: 'ttlMs must be at least samplePeriodMs' });
    }
  });
  m.radios?.forEach((r, i) => {
    if (r.kind === 'rnode') {
      const [lo, hi] = REGION_BANDS_HZ[r.region];
      if (r.frequencyHz < lo || r.frequencyHz > hi) {
        issues.push({
          path: ['radios', i, 'frequencyHz'],
          message: `${r.frequencyHz} Hz is outside ${r.region} (${lo}..${hi} Hz)`,
        });
      }
    }
  });
  m.tools.forEach((t, i) => {
    const at = (...rest: (string | number)[]): (string | number)[] => ['tools', i, ...rest];
    t.interlocks?.forEach((il, j) => {
      if (il.kind === 'allowed_hours' && il.fromHour === il.toHour) {
        issues.push({ path: at('interlocks', j, 'toHour'), message: 'fromHour and toHour must differ' });
      }
      if (il.kind === 'mutually_exclusive') {
        const seen = new Set<string>();
        il.tools.forEach((name, k) => {
          if (name === t.name)
            issues.push({ path: at('interlocks', j, 'tools', k), message: 'a tool cannot exclude itself' });
          else if (!byName.has(name))
            issues.push({ path: at('interlocks', j, 'tools', k), message: `no tool "${name}" is declared` });
          if (seen.has(name))
            issues.push({ path: at('interlocks', j, 'tools', k), message: `"${name}" is listed twice` });
          seen.add(name);
        });
      }
    });
    if (t.safety_class === 'reversible' && !t.undo) {
      issues.push({ path: at('undo'), message: 'a reversible tool must declare how to undo it' });
    }
    if (t.safety_class !== 'reversible' && t.undo) {
      issues.push({ path: at('undo'), message: `only reversible tools declare undo (this one is ${t.safety_class})` });
    }
    if (!t.undo) return;
    const target = byName.get(t.undo.tool);
    if (!target) {
      issues.push({ path: at('undo', 'tool'), message: `no tool "${t.undo.tool}" is declared` });
      return;
    }
    if (target.safety_class !== 'reversible') {
      issues.push({
        path: at('undo', 'tool'),
        message: `the undo tool "${target.name}" is ${target.safety_class}; it must be reversible`,
      });
    }
    const targetProps = target.inputSchema.properties ?? {};
    for (const [name, src] of Object.entries(t.undo.args)) {
      const argPath = at('undo', 'args', name);
      if (!Object.hasOwn(targetProps, name)) {
        issues.push({ path: argPath, message: `"${target.name}" takes no argument "${name}"` });
        continue;
      }
      const want = targetProps[name]!;
      if ('const' in src) {
        const r = validateJson(want, src.const);
        if (!r.valid)
          issues.push({ path: [...argPath, 'const'], message: `constant does not fit: ${r.errors[0]!.message}` });
        continue;
      }
      const from = src.from === 'args' ? t.inputSchema : t.outputSchema;
      if (!from) {
        issues.push({
          path: [...argPath, 'from'],
          message: `"${t.name}" declares no outputSchema to take a result from`,
        });
        continue;
      }
      const { node, problem } = requiredPathSchema(from, src.pointer);
      if (problem)
        issues.push({ path: [...argPath, 'pointer'], message: `${src.from} pointer ${src.pointer}: ${problem}` });
      else if (node && !compatible(node, want)) {
        issues.push({
          path: [...argPath, 'pointer'],
          message: `${src.pointer} is a ${node.type}, "${name}" needs a ${want.type}`,
        });
      }
    }
    for (const name of target.inputSchema.required ?? []) {
      if (!Object.hasOwn(t.undo.args, name)) {
        issues.push({ path: at('undo', 'args'), message: `"${target.name}" requires argument "${name}"` });
      }
    }
  });
  return issues;
}

/** One problem in a manifest: JSON Pointer, message, and its line:column when decoded from text. */
export interface ManifestIssue {
  readonly path: string;
  readonly message: string;
  readonly line?: number;
  readonly column?: number;
}

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/**
 * Problems zod cannot see or would hide: own "__proto__" members (zod drops them from records) and lone surrogates
 * (the manifest could not be hashed). Stops at MAX_JSON_DEPTH; deeper values fail elsewhere.
 */
function preflight(v: unknown, path: (string | number)[], out: Issue[]): void {
  if (path.length > MAX_JSON_DEPTH || out.length >= 16) return;
  if (typeof v === 'string') {
    if (LONE_SURROGATE.test(v)) out.push({ path, message: 'text holds a lone UTF-16 surrogate' });
  } else if (Array.isArray(v)) {
    for (let i = 0; i < v.length; i++) preflight(v[i], [...path, i], out);
  } else if (v !== null && typeof v === 'object') {
    for (const k of Object.keys(v)) {
      if (k === '__proto__') out.push({ path: [...path, k], message: 'a member named "__proto__" is not allowed' });
      else if (LONE_SURROGATE.test(k))
        out.push({ path: [...path, k], message: 'member name holds a lone UTF-16 surrogate' });
      else preflight((v as Record<string, unknown>)[k], [...path, k], out);
    }
  }
}

type FlatIssue = { code: string; path: JsonPath; message: string; keys: string[] };

/**
 * zod reports a value that fits no member of a union as one issue holding each member's issues. Report instead the
 * issues of the member that came closest (fewest issues), so the message says what to fix.
 */
function flattenUnions(issues: readonly z.core.$ZodIssue[], prefix: JsonPath): FlatIssue[] {
  const out: FlatIssue[] = [];
  for (const i of issues) {
    const path = [...prefix, ...(i.path as JsonPath)];
    if (i.code === 'invalid_union' && i.errors.length > 0) {
      const closest = i.errors.reduce((a, b) => (b.length < a.length ? b : a));
      out.push(...flattenUnions(closest, path));
    } else {
      out.push({ code: i.code, path, message: i.message, keys: i.code === 'unrecognized_keys' ? i.keys : [] });
    }
  }
  return out;
}

/** True when `path` names a member absent from an object that is present. */
function isMissingMember(doc: unknown, path: JsonPath): boolean {
  if (path.length === 0 || typeof path[path.length - 1] !== 'string') return false;
  const parent = resolveJsonPointer(doc, formatJsonPointer(path.slice(0, -1)));
  return (
    parent !== null &&
    typeof parent === 'object' &&
    !Array.isArray(parent) &&
    !Object.hasOwn(parent, path[path.length - 1] as string)
  );
}

/**
 * Decodes a manifest from JSON text (positions are reported) or from a parsed value. Returns the typed manifest, or
 * throws: JSON_TOO_LARGE / JSON_MALFORMED / JSON_DUPLICATE_MEMBER / CANON_TOO_DEEP for bad text,
 * MANIFEST_VERSION_UNSUPPORTED for another integer `manifestVersion`, and MANIFEST_INVALID with
 * `details.issues: ManifestIssue[]` for everything else.
 */
export function decodeManifest(input: string | unknown): CapabilityManifest {
  let source: JsonSourceMap | undefined;
  let value: unknown = input;
  if (typeof input === 'string') {
    source = parseJsonWithPositions(input, { maxBytes: MAX_MANIFEST_BYTES });
    value = source.value;
  }
  const version = (value as { manifestVersion?: unknown } | null)?.manifestVersion;
  if (Number.isSafeInteger(version) && version !== MANIFEST_VERSION) {
    throw new ProtocolError(
      'MANIFEST_VERSION_UNSUPPORTED',
      `manifestVersion ${version} is not supported (this build reads ${MANIFEST_VERSION})`,
      { details: { manifestVersion: version, supported: [MANIFEST_VERSION] } },
    );
  }
  const raw: Issue[] = [];
  preflight(value, [], raw);
  if (raw.length === 0) {
    const r = CapabilityManifest.safeParse(value);
    if (r.success) {
      // A parsed value has no byte size of its own: bound it as the text would be bounded.
      const size = canonicalBytes(r.data).length;
      if (size > MAX_MANIFEST_BYTES) {
        throw new ProtocolError(
          'JSON_TOO_LARGE',
          `manifest is ${size} bytes in canonical form; at most ${MAX_MANIFEST_BYTES}`,
          {
            details: { maxBytes: MAX_MANIFEST_BYTES },
          },
        );
      }
      return r.data;
    }
    for (const i of flattenUnions(r.error.issues, [])) {
      if (i.code === 'unrecognized_keys') {
        for (const k of i.keys) raw.push({ path: [...i.path, k], message: `unknown member "${k}"` });
      } else if ((i.code === 'invalid_type' || i.code === 'invalid_value') && isMissingMember(value, i.path)) {
        raw.push({ path: i.path, message: `required member "${String(i.path[i.path.length - 1])}" is missing` });
      } else {
        raw.push({ path: i.path, message: i.message });
      }
    }
  }
  const issues: ManifestIssue[] = raw.map((i) => {
    const path = formatJsonPointer(i.path);
    if (!source) return { path, message: i.message };
    const { position } = source.locate(i.path, 'key');
    return { path, message: i.message, line: position.line, column: position.column };
  });
  const first = issues[0]!;
  throw new ProtocolError(
    'MANIFEST_INVALID',
    `manifest is invalid (${issues.length} problem${issues.length === 1 ? '' : 's'}; first: ${first.path || '/'}: ${first.message})`,
    { details: { issues } },
  );
}

/** 'sha256:' + lowercase hex of SHA-256 over the manifest's canonical bytes (RFC 8785). */
export function manifestHash(m: CapabilityManifest): string {
  return `sha256:${createHash('sha256').update(canonicalBytes(m)).digest('hex')}`;
}

/** The JSON Schema (2020-12) of the manifest, generated from the zod source (docs/protocol/manifest.schema.json). */
export function manifestJsonSchema(): Record<string, unknown> {
  // A registry of our own rather than .meta(), which would write to zod's global registry at import time.
  const metadata = z.registry<Record<string, unknown>>();
  metadata.add(CapabilityManifest, {
    $id: 'urn:outpost:capability-manifest:v1',
    title: 'Outpost CapabilityManifest, version 1',
    description:
      'What a device announces: identity, tools, telemetry streams and radios (docs/protocol/manifest.md). Generated from protocol/manifest.ts; the cross-field rules of manifest.md §6 and the pattern rules of §5 are checked by decodeManifest, not by this schema.',
  });
  metadata.add(JsonSchemaNode, { id: 'ToolSchemaNode' });
  return z.toJSONSchema(CapabilityManifest, { target: 'draft-2020-12', io: 'input', metadata }) as Record<
    string,
    unknown
  >;
}

/**
 * The call that undoes a completed call of `tool` with `args` that returned `result`. Throws UNDO_UNRESOLVED when the
 * tool has no undo or a source is missing (possible only if args/result were not validated against their schemas).
 */
export function planUndo(
  tool: ToolSpec,
  args: unknown,
  result: unknown,
): { tool: string; args: Record<string, JsonValue> } {
  if (!tool.undo) throw new ProtocolError('UNDO_UNRESOLVED', `tool ${tool.name} declares no undo`);
  const out: Record<string, JsonValue> = {};
  for (const [name, src] of Object.entries(tool.undo.args)) {
    const v = 'const' in src ? src.const : resolveJsonPointer(src.from === 'args' ? args : result, src.pointer);
    if (v === undefined) {
      throw new ProtocolError(
        'UNDO_UNRESOLVED',
        `undo argument "${name}" of ${tool.name}: nothing at ${'from' in src ? `${src.from}${src.pointer}` : 'const'}`,
        {
          details: { tool: tool.name, argument: name },
        },
      );
    }
    Object.defineProperty(out, name, {
      value: structuredClone(v),
      enumerable: true,
      writable: true,
      configurable: true,
    });
  }
  return { tool: tool.undo.tool, args: out };
}

/** True when `wallMs` (Unix epoch ms) falls in the interlock's allowed hours, [fromHour, toHour) local time, wrapping. */
export function isWithinAllowedHours(
  interlock: Extract<Interlock, { kind: 'allowed_hours' }>,
  wallMs: number,
): boolean {
  const minuteOfDay = (((Math.floor(wallMs / 60_000) + interlock.utcOffsetMinutes) % 1440) + 1440) % 1440;
  const hour = Math.floor(minuteOfDay / 60);
  const { fromHour, toHour } = interlock;
  return fromHour < toHour ? hour >= fromHour && hour < toHour : hour >= fromHour || hour < toHour;
}
