// The JSON Schema subset that tool input and output schemas may use (docs/protocol/manifest.md §5): a strict zod
// schema that accepts only that subset, and a pure validator that reports every violation with a JSON Pointer,
// bounded in depth, size and error count. The device's safety gate checks tool arguments with it.

import { z } from 'zod';
import { MAX_JSON_DEPTH } from './canonical-json.ts';
import { ProtocolError } from './errors.ts';
import { formatJsonPointer, type JsonPath } from './json-pointer.ts';
import { compileSafePattern, type SafePattern } from './safe-regex.ts';

/** Schema nodes may nest this deep (the root object is depth 0). */
export const MAX_SCHEMA_DEPTH = 8;
/** Most schema nodes in one tool schema. */
export const MAX_SCHEMA_NODES = 256;
/** Most properties one object schema may declare. */
export const MAX_SCHEMA_PROPERTIES = 64;
/** Most values one `enum` may list. */
export const MAX_ENUM_VALUES = 64;

export type JsonSchemaType = 'object' | 'array' | 'string' | 'number' | 'integer' | 'boolean' | 'null';

/** Values a schema may carry in `default` for objects and arrays: plain JSON. */
export type JsonSchemaValue = null | boolean | number | string | JsonSchemaValue[] | { [k: string]: JsonSchemaValue };

interface Annotations {
  title?: string;
  description?: string;
}
export interface ObjectSchema extends Annotations {
  type: 'object';
  properties?: Record<string, JsonSchema>;
  required?: string[];
  /** Absent means true (JSON Schema default). Input schemas must say false on every object. */
  additionalProperties?: boolean;
  default?: { [k: string]: JsonSchemaValue };
}
export interface ArraySchema extends Annotations {
  type: 'array';
  items: JsonSchema;
  minItems?: number;
  maxItems?: number;
  default?: JsonSchemaValue[];
}
export interface StringSchema extends Annotations {
  type: 'string';
  minLength?: number;
  maxLength?: number;
  pattern?: string;
  enum?: string[];
  const?: string;
  default?: string;
}
export interface NumberSchema extends Annotations {
  type: 'number' | 'integer';
  minimum?: number;
  maximum?: number;
  exclusiveMinimum?: number;
  exclusiveMaximum?: number;
  enum?: number[];
  const?: number;
  default?: number;
}
export interface BooleanSchema extends Annotations {
  type: 'boolean';
  enum?: boolean[];
  const?: boolean;
  default?: boolean;
}
export interface NullSchema extends Annotations {
  type: 'null';
}
export type JsonSchema = ObjectSchema | ArraySchema | StringSchema | NumberSchema | BooleanSchema | NullSchema;

/** Property names tool schemas may declare: identifiers, so no `__proto__` and nothing that needs quoting. */
export const PROPERTY_NAME = /^[A-Za-z][A-Za-z0-9_]{0,63}$/;

const count = z.int().min(0).max(1_000_000);
const annotations = {
  title: z.string().min(1).max(128).optional(),
  description: z.string().min(1).max(1024).optional(),
};

/** Where `v` first stops being plain JSON (a path and the reason), or undefined when it is plain JSON throughout. */
function nonJsonAt(
  v: unknown,
  path: (string | number)[] = [],
): { path: (string | number)[]; reason: string } | undefined {
  if (path.length > MAX_JSON_DEPTH) return { path, reason: `nested deeper than ${MAX_JSON_DEPTH}` };
  if (v === null || typeof v === 'boolean' || typeof v === 'string') return undefined;
  if (typeof v === 'number') return Number.isFinite(v) ? undefined : { path, reason: `${v} is not a JSON number` };
  if (Array.isArray(v)) {
    for (let i = 0; i < v.length; i++) {
      const bad = nonJsonAt(v[i], [...path, i]);
      if (bad) return bad;
    }
    return undefined;
  }
  if (typeof v !== 'object') return { path, reason: `a ${typeof v} is not JSON` };
  const proto = Object.getPrototypeOf(v);
  if (proto !== Object.prototype && proto !== null) return { path, reason: 'only plain objects are JSON' };
  for (const k of Object.keys(v)) {
    if (k === '__proto__') return { path: [...path, k], reason: 'a member named "__proto__" is not allowed' };
    const bad = nonJsonAt((v as Record<string, unknown>)[k], [...path, k]);
    if (bad) return bad;
  }
  return undefined;
}

const isPlainJson = (v: unknown): boolean => nonJsonAt(v) === undefined;

/**
 * Any plain JSON value, kept exactly as given. (z.json() would drop own "__proto__" members silently.)
 * Refuses undefined, non-finite numbers, non-plain objects, "__proto__" members and depth over MAX_JSON_DEPTH.
 */
export const PlainJsonValue = z
  .unknown()
  .refine(isPlainJson, 'must be a plain JSON value') as unknown as z.ZodType<JsonSchemaValue>;
const jsonValue = PlainJsonValue;

// Each node is a strict object per type, so a keyword that does not apply to the type (minLength on a number,
// items on an object) is an error instead of being silently ignored.
export const JsonSchema: z.ZodType<JsonSchema> = z.lazy(() => JsonSchemaNode);

const ObjectNode = z
  .strictObject({
    type: z.literal('object'),
    ...annotations,
    properties: z
      .record(z.string().regex(PROPERTY_NAME, 'property names are identifiers of 1..64 characters'), JsonSchema)
      .refine((p) => Object.keys(p).length <= MAX_SCHEMA_PROPERTIES, `at most ${MAX_SCHEMA_PROPERTIES} properties`)
      .optional(),
    required: z.array(z.string()).max(MAX_SCHEMA_PROPERTIES).optional(),
    additionalProperties: z.boolean().optional(),
    default: z.record(z.string(), jsonValue).optional(),
  })
  .superRefine((node, ctx) => {
    const seen = new Set<string>();
    node.required?.forEach((name, i) => {
      if (seen.has(name)) ctx.addIssue({ code: 'custom', path: ['required', i], message: `"${name}" is listed twice` });
      seen.add(name);
      if (!node.properties || !Object.hasOwn(node.properties, name)) {
        ctx.addIssue({ code: 'custom', path: ['required', i], message: `required property "${name}" is not declared` });
      }
    });
    checkDefault(node as JsonSchema, ctx);
  });

const ArrayNode = z
  .strictObject({
    type: z.literal('array'),
    ...annotations,
    items: JsonSchema,
    minItems: count.optional(),
    maxItems: count.optional(),
    default: z.array(jsonValue).optional(),
  })
  .superRefine((node, ctx) => {
    checkOrder(node.minItems, node.maxItems, 'minItems', 'maxItems', ctx);
    checkDefault(node as JsonSchema, ctx);
  });

const StringNode = z
  .strictObject({
    type: z.literal('string'),
    ...annotations,
    minLength: count.optional(),
    maxLength: count.optional(),
    pattern: z.string().optional(),
    enum: z.array(z.string()).min(1).max(MAX_ENUM_VALUES).optional(),
    const: z.string().optional(),
    default: z.string().optional(),
  })
  .superRefine((node, ctx) => {
    checkOrder(node.minLength, node.maxLength, 'minLength', 'maxLength', ctx);
    if (node.pattern !== undefined) {
      try {
        compileSafePattern(node.pattern);
      } catch (e) {
        ctx.addIssue({ code: 'custom', path: ['pattern'], message: (e as Error).message });
      }
    }
    checkEnumConstDefault(node as JsonSchema, ctx);
  });

const NumberNode = z
  .strictObject({
    type: z.enum(['number', 'integer']),
    ...annotations,
    minimum: z.number().optional(),
    maximum: z.number().optional(),
    exclusiveMinimum: z.number().optional(),
    exclusiveMaximum: z.number().optional(),
    enum: z.array(z.number()).min(1).max(MAX_ENUM_VALUES).optional(),
    const: z.number().optional(),
    default: z.number().optional(),
  })
  .superRefine((node, ctx) => {
    const low = Math.max(node.minimum ?? -Infinity, node.exclusiveMinimum ?? -Infinity);
    const high = Math.min(node.maximum ?? Infinity, node.exclusiveMaximum ?? Infinity);
    const strict = node.exclusiveMinimum !== undefined || node.exclusiveMaximum !== undefined;
    if (low > high || (strict && low === high)) {
      ctx.addIssue({ code: 'custom', path: [], message: 'the bounds leave no number that satisfies them' });
    }
    checkEnumConstDefault(node as JsonSchema, ctx);
  });

const BooleanNode = z
  .strictObject({
    type: z.literal('boolean'),
    ...annotations,
    enum: z.array(z.boolean()).min(1).max(2).optional(),
    const: z.boolean().optional(),
    default: z.boolean().optional(),
  })
  .superRefine((node, ctx) => checkEnumConstDefault(node as JsonSchema, ctx));

const NullNode = z.strictObject({ type: z.literal('null'), ...annotations });

/** The union behind JsonSchema (named `ToolSchemaNode` in generated JSON Schemas). */
export const JsonSchemaNode = z.discriminatedUnion('type', [
  ObjectNode,
  ArrayNode,
  StringNode,
  NumberNode,
  BooleanNode,
  NullNode,
]);

function checkOrder(
  min: number | undefined,
  max: number | undefined,
  minName: string,
  maxName: string,
  ctx: z.RefinementCtx,
): void {
  if (min !== undefined && max !== undefined && min > max) {
    ctx.addIssue({ code: 'custom', path: [minName], message: `${minName} ${min} is above ${maxName} ${max}` });
  }
}

function describeErrors(errors: readonly JsonSchemaError[]): string {
  return errors.map((e) => `${e.path || '(value)'}: ${e.message}`).join('; ');
}

function checkEnumConstDefault(node: JsonSchema, ctx: z.RefinementCtx): void {
  const { enum: values, const: constant, default: dflt, ...rest } = node as StringSchema;
  const bare = rest as JsonSchema;
  if (values !== undefined) {
    const seen = new Set<string>();
    values.forEach((v, i) => {
      const key = JSON.stringify(v);
      if (seen.has(key)) ctx.addIssue({ code: 'custom', path: ['enum', i], message: `${key} is listed twice` });
      seen.add(key);
      const r = validateJson(bare, v);
      if (!r.valid) ctx.addIssue({ code: 'custom', path: ['enum', i], message: describeErrors(r.errors) });
    });
  }
  if (constant !== undefined) {
    const r = validateJson(bare, constant);
    if (!r.valid) ctx.addIssue({ code: 'custom', path: ['const'], message: describeErrors(r.errors) });
  }
  if (dflt !== undefined) checkDefault(node, ctx);
}

function checkDefault(node: JsonSchema, ctx: z.RefinementCtx): void {
  const dflt = (node as { default?: unknown }).default;
  if (dflt === undefined) return;
  const r = validateJson(node, dflt);
  if (!r.valid) {
    ctx.addIssue({ code: 'custom', path: ['default'], message: `default does not fit: ${describeErrors(r.errors)}` });
  }
}

/** Where a tool schema is used: `input` schemas must close every object (`additionalProperties: false`). */
export type ToolSchemaRole = 'input' | 'output';

export interface SchemaIssue {
  readonly path: JsonPath;
  readonly message: string;
}

/**
 * Rules for a whole tool schema beyond each node's own: the root is an object (MCP requires it), the size and
 * depth limits, and for inputs every object node has `additionalProperties: false`. Returns the issues found.
 */
export function toolSchemaIssues(schema: JsonSchema, role: ToolSchemaRole): SchemaIssue[] {
  const issues: SchemaIssue[] = [];
  if (schema.type !== 'object') issues.push({ path: ['type'], message: 'a tool schema must be of type "object"' });
  let nodes = 0;
  const walk = (node: JsonSchema, path: (string | number)[], depth: number): void => {
    nodes++;
    if (depth > MAX_SCHEMA_DEPTH) {
      issues.push({ path, message: `schema nesting exceeds ${MAX_SCHEMA_DEPTH}` });
      return;
    }
    if (node.type === 'object') {
      if (role === 'input' && node.additionalProperties !== false) {
        issues.push({
          path: [...path, 'additionalProperties'],
          message: 'input schemas must set additionalProperties to false on every object',
        });
      }
      for (const [name, child] of Object.entries(node.properties ?? {})) {
        walk(child, [...path, 'properties', name], depth + 1);
      }
    } else if (node.type === 'array') {
      walk(node.items, [...path, 'items'], depth + 1);
    }
  };
  walk(schema, [], 0);
  if (nodes > MAX_SCHEMA_NODES)
    issues.push({ path: [], message: `schema has ${nodes} nodes, limit ${MAX_SCHEMA_NODES}` });
  return issues;
}

function toolSchema(role: ToolSchemaRole): z.ZodType<ObjectSchema> {
  return JsonSchema.superRefine((schema, ctx) => {
    for (const issue of toolSchemaIssues(schema, role)) {
      ctx.addIssue({ code: 'custom', path: [...issue.path], message: issue.message });
    }
  }) as unknown as z.ZodType<ObjectSchema>;
}

/** A tool's `inputSchema`: the subset, rooted at an object, every object closed. */
export const ToolInputSchema = toolSchema('input');
/** A tool's `outputSchema`: the subset, rooted at an object. */
export const ToolOutputSchema = toolSchema('output');

/**
 * Decodes an untrusted tool schema. Throws SCHEMA_UNSUPPORTED with `details.issues` ({ path, message }, paths as
 * JSON Pointers) when it uses anything outside the subset or breaks a rule.
 */
export function decodeToolSchema(value: unknown, role: ToolSchemaRole): ObjectSchema {
  const bad = nonJsonAt(value);
  if (bad) {
    throw new ProtocolError('SCHEMA_UNSUPPORTED', `${role} schema is not plain JSON: ${bad.reason}`, {
      details: { issues: [{ path: formatJsonPointer(bad.path), message: bad.reason }] },
    });
  }
  const r = (role === 'input' ? ToolInputSchema : ToolOutputSchema).safeParse(value);
  if (r.success) return r.data;
  const issues = r.error.issues.map((i) => ({ path: formatJsonPointer(i.path as JsonPath), message: i.message }));
  throw new ProtocolError('SCHEMA_UNSUPPORTED', `${role} schema is outside the supported subset`, {
    details: { issues },
  });
}

// ---- validation --------------------------------------------------------------------------------------------

export type JsonSchemaKeyword =
  | 'type'
  | 'enum'
  | 'const'
  | 'required'
  | 'additionalProperties'
  | 'minimum'
  | 'maximum'
  | 'exclusiveMinimum'
  | 'exclusiveMaximum'
  | 'minLength'
  | 'maxLength'
  | 'pattern'
  | 'minItems'
  | 'maxItems'
  | 'depth'
  | 'size';

/** One violation: where (JSON Pointer into the value), which keyword, and a message fit for a person or a model. */
export interface JsonSchemaError {
  readonly path: string;
  readonly keyword: JsonSchemaKeyword;
  readonly message: string;
}

export type JsonValidation = { readonly valid: true } | { readonly valid: false; readonly errors: JsonSchemaError[] };

export interface ValidateOptions {
  /** Stop after this many errors (default 16). */
  maxErrors?: number;
  /** Refuse values nested deeper than this (default MAX_JSON_DEPTH). */
  maxDepth?: number;
  /** Refuse values with more than this many nodes (default 100,000). */
  maxNodes?: number;
}

type ValueType = JsonSchemaType | 'non-JSON value';

function typeOf(v: unknown): ValueType {
  if (v === null) return 'null';
  switch (typeof v) {
    case 'boolean':
      return 'boolean';
    case 'string':
      return 'string';
    case 'number':
      return Number.isFinite(v) ? (Number.isInteger(v) ? 'integer' : 'number') : 'non-JSON value';
    case 'object': {
      if (Array.isArray(v)) return 'array';
      const proto = Object.getPrototypeOf(v);
      return proto === Object.prototype || proto === null ? 'object' : 'non-JSON value';
    }
    default:
      return 'non-JSON value';
  }
}

/** Deep equality of JSON values (member order does not matter). */
function jsonEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  if (Array.isArray(a)) {
    const bb = b as unknown[];
    return a.length === bb.length && a.every((x, i) => jsonEqual(x, bb[i]));
  }
  const ka = Object.keys(a);
  const kb = Object.keys(b);
  return (
    ka.length === kb.length &&
    ka.every(
      (k) => Object.hasOwn(b, k) && jsonEqual((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k]),
    )
  );
}

function codePointLength(s: string): number {
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length) {
      const d = s.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) i++;
    }
    n++;
  }
  return n;
}

const article = (t: string): string => (/^[aeiou]/.test(t) ? `an ${t}` : `a ${t}`);

const show = (v: unknown): string => {
  const s = JSON.stringify(v) ?? String(v);
  return s.length > 60 ? `${s.slice(0, 57)}...` : s;
};

/**
 * Checks `value` against `schema` (a schema of the subset). Pure and total: never throws for any `value`; bounded by
 * `options`. Errors are reported in document order with JSON Pointer paths (RFC 6901) into `value`.
 */
export function validateJson(schema: JsonSchema, value: unknown, options: ValidateOptions = {}): JsonValidation {
  const maxErrors = options.maxErrors ?? 16;
  const maxDepth = options.maxDepth ?? MAX_JSON_DEPTH;
  const maxNodes = options.maxNodes ?? 100_000;
  const errors: JsonSchemaError[] = [];
  const patterns = new Map<string, SafePattern>();
  let nodes = 0;
  let stopped = false;

  const report = (path: JsonPath, keyword: JsonSchemaKeyword, message: string): void => {
    if (errors.length < maxErrors) errors.push({ path: formatJsonPointer(path), keyword, message });
    if (errors.length >= maxErrors) stopped = true;
  };

  const check = (s: JsonSchema, v: unknown, path: (string | number)[], depth: number): void => {
    if (stopped) return;
    if (++nodes > maxNodes) {
      report(path, 'size', `value has more than ${maxNodes} nodes`);
      stopped = true;
      return;
    }
    if (depth > maxDepth) {
      report(path, 'depth', `value is nested deeper than ${maxDepth}`);
      return;
    }
    const t = typeOf(v);
    const fits = t === s.type || (s.type === 'number' && t === 'integer');
    if (!fits) {
      report(path, 'type', `expected ${article(s.type)}, got ${article(t === 'integer' ? 'number' : t)}`);
      return;
    }
    const withValues = s as { enum?: unknown[]; const?: unknown };
    if (withValues.enum !== undefined && !withValues.enum.some((e) => jsonEqual(e, v))) {
      report(path, 'enum', `must be one of ${withValues.enum.map(show).join(', ')}`);
    }
    if (withValues.const !== undefined && !jsonEqual(withValues.const, v)) {
      report(path, 'const', `must be ${show(withValues.const)}`);
    }
    switch (s.type) {
      case 'number':
      case 'integer': {
        const n = v as number;
        if (s.minimum !== undefined && n < s.minimum) report(path, 'minimum', `must be ≥ ${s.minimum}`);
        if (s.maximum !== undefined && n > s.maximum) report(path, 'maximum', `must be ≤ ${s.maximum}`);
        if (s.exclusiveMinimum !== undefined && n <= s.exclusiveMinimum) {
          report(path, 'exclusiveMinimum', `must be > ${s.exclusiveMinimum}`);
        }
        if (s.exclusiveMaximum !== undefined && n >= s.exclusiveMaximum) {
          report(path, 'exclusiveMaximum', `must be < ${s.exclusiveMaximum}`);
        }
        return;
      }
      case 'string': {
        const str = v as string;
        const len = s.minLength !== undefined || s.maxLength !== undefined ? codePointLength(str) : 0;
        if (s.minLength !== undefined && len < s.minLength)
          report(path, 'minLength', `must be at least ${s.minLength} characters`);
        const tooLong = s.maxLength !== undefined && len > s.maxLength;
        if (tooLong) report(path, 'maxLength', `must be at most ${s.maxLength} characters`);
        // Matching costs O(length × states): a string already over maxLength is never scanned.
        if (s.pattern !== undefined && !tooLong) {
          let p = patterns.get(s.pattern);
          if (!p) {
            try {
              p = compileSafePattern(s.pattern);
            } catch {
              // Only reachable with a schema that did not come through JsonSchema: fail closed.
              report(path, 'pattern', 'the schema pattern is outside the safe subset');
              return;
            }
            patterns.set(s.pattern, p);
          }
          if (!p.test(str)) report(path, 'pattern', `must match ${show(s.pattern)}`);
        }
        return;
      }
      case 'array': {
        const arr = v as unknown[];
        if (s.minItems !== undefined && arr.length < s.minItems)
          report(path, 'minItems', `must have at least ${s.minItems} items`);
        if (s.maxItems !== undefined && arr.length > s.maxItems)
          report(path, 'maxItems', `must have at most ${s.maxItems} items`);
        for (let i = 0; i < arr.length && !stopped; i++) check(s.items, arr[i], [...path, i], depth + 1);
        return;
      }
      case 'object': {
        const obj = v as Record<string, unknown>;
        const props = s.properties ?? {};
        for (const name of s.required ?? []) {
          if (!Object.hasOwn(obj, name)) report([...path, name], 'required', 'is required');
        }
        for (const key of Object.keys(obj)) {
          if (stopped) return;
          if (Object.hasOwn(props, key)) check(props[key]!, obj[key], [...path, key], depth + 1);
          else if (s.additionalProperties === false) report([...path, key], 'additionalProperties', 'is not allowed');
        }
        return;
      }
      default:
        return;
    }
  };

  check(schema, value, [], 0);
  return errors.length === 0 ? { valid: true } : { valid: false, errors };
}

/** validateJson, throwing SCHEMA_VIOLATION (details.errors) when `value` does not fit. `what` names it in the message. */
export function assertJsonValid(schema: JsonSchema, value: unknown, what: string, options?: ValidateOptions): void {
  const r = validateJson(schema, value, options);
  if (!r.valid) {
    throw new ProtocolError('SCHEMA_VIOLATION', `${what} does not fit its schema: ${describeErrors(r.errors)}`, {
      details: { errors: r.errors },
    });
  }
}
