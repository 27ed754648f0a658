// Deterministic CBOR (RFC 8949 §4.2.1 core deterministic encoding) for the JSON data model: how tool arguments
// and results travel over LoRa (docs/protocol/lora-frames.md §4.3). The decoder accepts only the deterministic form.

import { fromUtf8, utf8 } from './bytes.ts';
import type { JsonValue } from './canonical-json.ts';
import { ProtocolError } from './errors.ts';
import { ByteReader, ByteWriter, LONE_SURROGATE } from './lora-wire.ts';

/** Arrays and maps nested deeper than this are refused both ways. */
export const CBOR_MAX_DEPTH = 16;

const MT_UINT = 0;
const MT_NINT = 1;
const MT_TEXT = 3;
const MT_ARRAY = 4;
const MT_MAP = 5;
const MT_SIMPLE = 7;

function unsupported(message: string): ProtocolError {
  return new ProtocolError('LORA_VALUE_UNSUPPORTED', message);
}

function nonCanonical(message: string, offset: number): ProtocolError {
  return new ProtocolError('LORA_NON_CANONICAL', `CBOR: ${message}`, { details: { offset } });
}

function writeHead(w: ByteWriter, major: number, n: number): void {
  const mt = major << 5;
  if (n < 24) w.u8(mt | n);
  else if (n < 0x100) w.u8(mt | 24).u8(n);
  else if (n < 0x10000)
    w.u8(mt | 25)
      .u8(n >>> 8)
      .u8(n);
  else if (n < 0x1_0000_0000) w.u8(mt | 26).u32(n);
  else
    w.u8(mt | 27)
      .u32(Math.floor(n / 0x1_0000_0000))
      .u32(n >>> 0);
}

/** IEEE 754 binary16 bits of `v` when v is exactly representable as one, else undefined. */
export function float16Bits(v: number): number | undefined {
  if (Math.fround(v) !== v) return undefined;
  const dv = new DataView(new ArrayBuffer(4));
  dv.setFloat32(0, v);
  const bits = dv.getUint32(0);
  const sign = bits >>> 31;
  const exp = (bits >>> 23) & 0xff;
  const mant = bits & 0x7f_ffff;
  if (exp === 0) return mant === 0 ? sign << 15 : undefined; // ±0; float32 subnormals are below binary16's range
  if (exp === 0xff) return undefined; // NaN and infinities never reach here (JSON has none)
  const e = exp - 127;
  if (e > 15) return undefined;
  if (e >= -14) return (mant & 0x1fff) === 0 ? (sign << 15) | ((e + 15) << 10) | (mant >>> 13) : undefined;
  if (e < -24) return undefined;
  // binary16 subnormal: value = m × 2^-24 with m = significand × 2^(e+1).
  const shift = -(e + 1);
  const full = mant | 0x80_0000;
  return (full & ((1 << shift) - 1)) === 0 ? (sign << 15) | (full >>> shift) : undefined;
}

function float16Value(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >>> 10) & 0x1f;
  const mant = h & 0x3ff;
  if (exp === 0) return sign * mant * 2 ** -24;
  if (exp === 31) return mant === 0 ? sign * Number.POSITIVE_INFINITY : Number.NaN;
  return sign * (1024 + mant) * 2 ** (exp - 25);
}

function writeNumber(w: ByteWriter, v: number): void {
  if (!Number.isFinite(v)) throw unsupported(`CBOR: cannot encode ${v} (JSON numbers are finite)`);
  if (Number.isSafeInteger(v) && !Object.is(v, -0)) {
    if (v >= 0) writeHead(w, MT_UINT, v);
    else writeHead(w, MT_NINT, -1 - v);
    return;
  }
  const half = float16Bits(v);
  if (half !== undefined)
    w.u8(0xf9)
      .u8(half >>> 8)
      .u8(half);
  else if (Math.fround(v) === v) w.u8(0xfa).f32(v);
  else w.u8(0xfb).f64(v);
}

function writeText(w: ByteWriter, s: string): void {
  if (LONE_SURROGATE.test(s)) throw unsupported('CBOR: string holds a lone surrogate');
  const b = utf8(s);
  writeHead(w, MT_TEXT, b.length);
  w.bytes(b);
}

function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return a[i]! - b[i]!;
  return a.length - b.length;
}

function writeValue(w: ByteWriter, v: unknown, depth: number): void {
  if (v === null) {
    w.u8(0xf6);
    return;
  }
  switch (typeof v) {
    case 'boolean':
      w.u8(v ? 0xf5 : 0xf4);
      return;
    case 'number':
      writeNumber(w, v);
      return;
    case 'string':
      writeText(w, v);
      return;
    case 'object': {
      if (depth >= CBOR_MAX_DEPTH) throw unsupported(`CBOR: nesting exceeds ${CBOR_MAX_DEPTH}`);
      if (Array.isArray(v)) {
        writeHead(w, MT_ARRAY, v.length);
        for (let i = 0; i < v.length; i++) writeValue(w, v[i], depth + 1);
        return;
      }
      const proto = Object.getPrototypeOf(v);
      if (proto !== Object.prototype && proto !== null) throw unsupported('CBOR: only plain objects are JSON objects');
      // §4.2.1: map keys sorted by the bytewise order of their deterministic encodings.
      const entries = Object.keys(v).map((k) => {
        const kw = new ByteWriter();
        writeText(kw, k);
        return { key: kw.finish(), value: (v as Record<string, unknown>)[k] };
      });
      entries.sort((a, b) => compareBytes(a.key, b.key));
      writeHead(w, MT_MAP, entries.length);
      for (const e of entries) {
        w.bytes(e.key);
        writeValue(w, e.value, depth + 1);
      }
      return;
    }
    default:
      throw unsupported(`CBOR: cannot encode a ${typeof v}`);
  }
}

/** Deterministic CBOR of a JSON value. Throws LORA_VALUE_UNSUPPORTED for non-JSON values (NaN, undefined, classes). */
export function encodeCbor(value: JsonValue): Uint8Array {
  const w = new ByteWriter();
  writeValue(w, value, 0);
  return w.finish();
}

/** Appends the deterministic CBOR of `value` to `w`. */
export function writeCbor(w: ByteWriter, value: JsonValue): void {
  writeValue(w, value, 0);
}

function readArgument(r: ByteReader, info: number, start: number): number {
  if (info < 24) return info;
  let n: number;
  let min: number;
  if (info === 24) {
    n = r.u8();
    min = 24;
  } else if (info === 25) {
    n = (r.u8() << 8) | r.u8();
    min = 0x100;
  } else if (info === 26) {
    n = r.u32();
    min = 0x1_0000;
  } else if (info === 27) {
    const hi = r.u32();
    const lo = r.u32();
    if (hi > 0x1f_ffff) throw unsupported('CBOR: integer beyond 2^53-1');
    n = hi * 0x1_0000_0000 + lo;
    min = 0x1_0000_0000;
  } else {
    throw new ProtocolError('LORA_PAYLOAD_MALFORMED', `CBOR: indefinite or reserved length (${info})`, {
      details: { offset: start },
    });
  }
  if (n < min) throw nonCanonical('argument not in its shortest form', start);
  return n;
}

function readValue(r: ByteReader, depth: number): JsonValue {
  const start = r.offset;
  const head = r.u8();
  const major = head >>> 5;
  const info = head & 0x1f;
  switch (major) {
    case MT_UINT:
    case MT_NINT: {
      const n = readArgument(r, info, start);
      const v = major === MT_UINT ? n : -1 - n;
      if (!Number.isSafeInteger(v)) throw unsupported('CBOR: integer beyond the safe range');
      return v;
    }
    case MT_TEXT: {
      const n = readArgument(r, info, start);
      const b = r.bytes(n);
      try {
        return fromUtf8(b, 'CBOR text');
      } catch (cause) {
        throw new ProtocolError('LORA_PAYLOAD_MALFORMED', 'CBOR text is not UTF-8', { cause });
      }
    }
    case MT_ARRAY: {
      const n = readArgument(r, info, start);
      if (depth >= CBOR_MAX_DEPTH) throw unsupported(`CBOR: nesting exceeds ${CBOR_MAX_DEPTH}`);
      if (n > r.remaining) throw new ProtocolError('LORA_PAYLOAD_MALFORMED', 'CBOR: array longer than the input');
      const out: JsonValue[] = [];
      for (let i = 0; i < n; i++) out.push(readValue(r, depth + 1));
      return out;
    }
    case MT_MAP: {
      const n = readArgument(r, info, start);
      if (depth >= CBOR_MAX_DEPTH) throw unsupported(`CBOR: nesting exceeds ${CBOR_MAX_DEPTH}`);
      if (n * 2 > r.remaining) throw new ProtocolError('LORA_PAYLOAD_MALFORMED', 'CBOR: map longer than the input');
      const out: { [key: string]: JsonValue } = {};
      let previousKey: Uint8Array | undefined;
      for (let i = 0; i < n; i++) {
        const keyStart = r.offset;
        if (r.peek() >>> 5 !== MT_TEXT) throw unsupported('CBOR: map keys must be text');
        const key = readValue(r, depth + 1) as string;
        const keyBytes = r.since(keyStart);
        if (previousKey !== undefined && compareBytes(previousKey, keyBytes) >= 0) {
          throw nonCanonical('map keys out of order or duplicated', keyStart);
        }
        previousKey = keyBytes;
        // defineProperty keeps "__proto__" an ordinary own key instead of replacing the prototype.
        Object.defineProperty(out, key, {
          value: readValue(r, depth + 1),
          enumerable: true,
          writable: true,
          configurable: true,
        });
      }
      return out;
    }
    case MT_SIMPLE: {
      if (info === 20) return false;
      if (info === 21) return true;
      if (info === 22) return null;
      let v: number;
      if (info === 25) v = float16Value((r.u8() << 8) | r.u8());
      else if (info === 26) v = r.f32();
      else if (info === 27) v = r.f64();
      else throw unsupported(`CBOR: simple value ${info} is not JSON`);
      if (!Number.isFinite(v)) throw unsupported('CBOR: NaN and infinities are not JSON numbers');
      const canonical = new ByteWriter();
      writeNumber(canonical, v);
      const expectedHead = canonical.finish()[0];
      if (expectedHead !== head) throw nonCanonical('number not in its shortest form', start);
      return v;
    }
    default:
      throw unsupported(`CBOR: major type ${major} is not JSON`);
  }
}

/** Decodes exactly one deterministic CBOR item spanning all of `bytes`. */
export function decodeCbor(bytes: Uint8Array): JsonValue {
  const r = new ByteReader(bytes);
  const v = readValue(r, 0);
  r.end('CBOR item');
  return v;
}

/** Reads one deterministic CBOR item from `r`. */
export function readCbor(r: ByteReader): JsonValue {
  return readValue(r, 0);
}
