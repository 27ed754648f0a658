// RFC 8785 (JSON Canonicalization Scheme) serialisation, and bounded JSON parsing.
// Everything Outpost signs is signed over these bytes, so signer and verifier agree byte for byte.

import { ProtocolError } from './errors.ts';

export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };

/** Nesting deeper than this is refused, by both the serialiser and the parser. */
export const MAX_JSON_DEPTH = 64;

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

function serialiseString(s: string): string {
  if (LONE_SURROGATE.test(s)) throw new ProtocolError('CANON_LONE_SURROGATE', 'string holds a lone UTF-16 surrogate');
  // JSON.stringify escapes exactly what RFC 8785 §3.2.2.2 requires (", \, and U+0000..U+001F with
  // \b \t \n \f \r or lowercase \u00xx) and leaves everything else literal.
  return JSON.stringify(s);
}

function serialise(value: unknown, depth: number, out: string[]): void {
  if (depth > MAX_JSON_DEPTH) throw new ProtocolError('CANON_TOO_DEEP', `nesting exceeds ${MAX_JSON_DEPTH}`);
  if (value === null) {
    out.push('null');
    return;
  }
  switch (typeof value) {
    case 'boolean':
      out.push(value ? 'true' : 'false');
      return;
    case 'number':
      if (!Number.isFinite(value)) throw new ProtocolError('CANON_NON_FINITE_NUMBER', `cannot encode ${value}`);
      // ECMAScript Number::toString is the RFC 8785 §3.2.2.3 number form; -0 serialises as 0.
      out.push(Object.is(value, -0) ? '0' : String(value));
      return;
    case 'string':
      out.push(serialiseString(value));
      return;
    case 'object': {
      if (Array.isArray(value)) {
        out.push('[');
        // Index loop, not forEach: a hole in a sparse array is `undefined` and is refused, never skipped.
        for (let i = 0; i < value.length; i++) {
          if (i > 0) out.push(',');
          serialise(value[i], depth + 1, out);
        }
        out.push(']');
        return;
      }
      const proto = Object.getPrototypeOf(value);
      if (proto !== Object.prototype && proto !== null) {
        throw new ProtocolError('CANON_UNSUPPORTED_VALUE', `cannot encode a ${proto?.constructor?.name ?? 'object'}`);
      }
      // RFC 8785 §3.2.3: members sorted by the UTF-16 code units of their names (the default JS order).
      const keys = Object.keys(value)
        .filter((k) => (value as Record<string, unknown>)[k] !== undefined)
        .sort();
      out.push('{');
      keys.forEach((k, i) => {
        if (i > 0) out.push(',');
        out.push(serialiseString(k), ':');
        serialise((value as Record<string, unknown>)[k], depth + 1, out);
      });
      out.push('}');
      return;
    }
    default:
      throw new ProtocolError('CANON_UNSUPPORTED_VALUE', `cannot encode a value of type ${typeof value}`);
  }
}

/**
 * The RFC 8785 canonical form of `value` as a string. Object members whose value is `undefined`
 * are omitted (as JSON.stringify does). Throws ProtocolError for values JSON cannot represent.
 */
export function canonicalize(value: unknown): string {
  const out: string[] = [];
  serialise(value, 0, out);
  return out.join('');
}

const encoder = new TextEncoder();

/** UTF-8 bytes of `canonicalize(value)`. */
export function canonicalBytes(value: unknown): Uint8Array {
  return encoder.encode(canonicalize(value));
}

/** UTF-8 length of a JS string without encoding it (lone surrogates count as U+FFFD, 3 bytes, as encoders write). */
export function utf8ByteLength(text: string): number {
  let n = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 0x80) n += 1;
    else if (c < 0x800) n += 2;
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < text.length) {
      const d = text.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) {
        n += 4;
        i++;
      } else n += 3;
    } else n += 3;
  }
  return n;
}

function depthOf(value: unknown, depth: number): number {
  // Stop descending past the limit: JSON.parse builds values far deeper than the call stack allows.
  if (depth > MAX_JSON_DEPTH || value === null || typeof value !== 'object') return depth;
  let max = depth;
  for (const v of Array.isArray(value) ? value : Object.values(value)) {
    max = Math.max(max, depthOf(v, depth + 1));
    if (max > MAX_JSON_DEPTH) return max;
  }
  return max;
}

/**
 * Parses JSON text from outside with a size cap (in UTF-8 bytes) and a depth cap.
 * Throws JSON_TOO_LARGE, JSON_MALFORMED or CANON_TOO_DEEP; never anything untyped.
 */
export function parseJson(text: string, maxBytes: number): JsonValue {
  if (typeof text !== 'string') throw new ProtocolError('JSON_MALFORMED', 'JSON input must be text');
  // A JS string's UTF-8 length is at most 3 × its length; only measure exactly when it could matter.
  if (text.length * 3 > maxBytes && utf8ByteLength(text) > maxBytes) {
    throw new ProtocolError('JSON_TOO_LARGE', `JSON exceeds ${maxBytes} bytes`, { details: { maxBytes } });
  }
  let value: JsonValue;
  try {
    value = JSON.parse(text) as JsonValue;
  } catch (cause) {
    throw new ProtocolError('JSON_MALFORMED', `malformed JSON: ${(cause as Error).message}`, { cause });
  }
  if (depthOf(value, 0) > MAX_JSON_DEPTH)
    throw new ProtocolError('CANON_TOO_DEEP', `nesting exceeds ${MAX_JSON_DEPTH}`);
  return value;
}
