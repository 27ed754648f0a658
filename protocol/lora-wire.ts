// Byte-level building blocks of the LoRa payload encodings (docs/protocol/lora-frames.md §4): a growable writer,
// a bounds-checked reader that throws typed errors, canonical LEB128 varints, zigzag, and compact strings.

import { fromBase64Url, fromHex, fromUtf8, toBase64Url, toHex, utf8 } from './bytes.ts';
import { didKeyFromEd25519, ed25519FromDidKey } from './did-key.ts';
import { ProtocolError } from './errors.ts';

/** Largest integer a varint may carry: 2^53 − 1 (so every value is an exact JavaScript number). */
export const VARINT_MAX = Number.MAX_SAFE_INTEGER;
/** Signed integers travel in −ZIGZAG_MAX .. ZIGZAG_MAX − 1, so that their zigzag form stays ≤ VARINT_MAX. */
export const ZIGZAG_MAX = 2 ** 52;
/** Longest varint: ceil(53 / 7) bytes. */
const VARINT_MAX_BYTES = 8;

function malformed(message: string, offset: number): ProtocolError {
  return new ProtocolError('LORA_PAYLOAD_MALFORMED', message, { details: { offset } });
}

/** Number of bytes `value` takes as a varint. */
export function varintSize(value: number): number {
  let n = 1;
  let v = value;
  while (v >= 0x80) {
    v = Math.floor(v / 128);
    n++;
  }
  return n;
}

/** Zigzag maps signed to unsigned: 0 → 0, −1 → 1, 1 → 2, −2 → 3 … */
export function zigzag(n: number): number {
  return n >= 0 ? n * 2 : -n * 2 - 1;
}

export function unzigzag(z: number): number {
  return z % 2 === 0 ? z / 2 : -(z + 1) / 2;
}

/** Appends bytes; `finish()` returns exactly what was written. */
export class ByteWriter {
  #buf = new Uint8Array(64);
  #len = 0;

  get length(): number {
    return this.#len;
  }

  #room(n: number): void {
    if (this.#len + n <= this.#buf.length) return;
    const next = new Uint8Array(Math.max(this.#buf.length * 2, this.#len + n));
    next.set(this.#buf.subarray(0, this.#len));
    this.#buf = next;
  }

  u8(v: number): this {
    this.#room(1);
    this.#buf[this.#len++] = v & 0xff;
    return this;
  }

  u32(v: number): this {
    this.#room(4);
    new DataView(this.#buf.buffer).setUint32(this.#len, v);
    this.#len += 4;
    return this;
  }

  bytes(b: Uint8Array): this {
    this.#room(b.length);
    this.#buf.set(b, this.#len);
    this.#len += b.length;
    return this;
  }

  /** Unsigned LEB128, shortest form. Throws LORA_VALUE_UNSUPPORTED outside 0..VARINT_MAX. */
  varint(value: number): this {
    if (!Number.isSafeInteger(value) || value < 0) {
      throw new ProtocolError('LORA_VALUE_UNSUPPORTED', `varint must be an integer in 0..2^53-1, got ${value}`);
    }
    let v = value;
    while (v >= 0x80) {
      this.u8((v % 128) | 0x80);
      v = Math.floor(v / 128);
    }
    return this.u8(v);
  }

  /** Signed integer as zigzag varint, −ZIGZAG_MAX ≤ value < ZIGZAG_MAX. */
  svarint(value: number): this {
    if (!Number.isSafeInteger(value) || value < -ZIGZAG_MAX || value >= ZIGZAG_MAX) {
      throw new ProtocolError('LORA_VALUE_UNSUPPORTED', `signed varint out of range: ${value}`);
    }
    return this.varint(zigzag(value));
  }

  f32(v: number): this {
    this.#room(4);
    new DataView(this.#buf.buffer).setFloat32(this.#len, v);
    this.#len += 4;
    return this;
  }

  f64(v: number): this {
    this.#room(8);
    new DataView(this.#buf.buffer).setFloat64(this.#len, v);
    this.#len += 8;
    return this;
  }

  finish(): Uint8Array {
    return this.#buf.slice(0, this.#len);
  }
}

/** Reads from a byte array; every overrun or malformed field throws LORA_PAYLOAD_MALFORMED with the offset. */
export class ByteReader {
  readonly #bytes: Uint8Array;
  #pos: number;

  constructor(bytes: Uint8Array, offset = 0) {
    this.#bytes = bytes;
    this.#pos = offset;
  }

  get offset(): number {
    return this.#pos;
  }

  get remaining(): number {
    return this.#bytes.length - this.#pos;
  }

  u8(): number {
    if (this.#pos >= this.#bytes.length) throw malformed('truncated: expected 1 more byte', this.#pos);
    return this.#bytes[this.#pos++]!;
  }

  /** The next byte without consuming it. */
  peek(): number {
    if (this.#pos >= this.#bytes.length) throw malformed('truncated: expected 1 more byte', this.#pos);
    return this.#bytes[this.#pos]!;
  }

  /** The bytes consumed since offset `start` (a view). */
  since(start: number): Uint8Array {
    return this.#bytes.subarray(start, this.#pos);
  }

  u32(): number {
    const b = this.bytes(4);
    return new DataView(b.buffer, b.byteOffset, 4).getUint32(0);
  }

  /** The next `n` bytes (a view, not a copy). */
  bytes(n: number): Uint8Array {
    if (!Number.isSafeInteger(n) || n < 0 || n > this.remaining) {
      throw malformed(`truncated: expected ${n} bytes, ${this.remaining} left`, this.#pos);
    }
    const out = this.#bytes.subarray(this.#pos, this.#pos + n);
    this.#pos += n;
    return out;
  }

  /** Everything not yet read. */
  rest(): Uint8Array {
    return this.bytes(this.remaining);
  }

  /** Canonical unsigned LEB128: at most 8 bytes, ≤ 2^53 − 1, no redundant trailing zero group. */
  varint(): number {
    const start = this.#pos;
    let value = 0;
    let scale = 1;
    for (let i = 0; i < VARINT_MAX_BYTES; i++) {
      const b = this.u8();
      value += (b & 0x7f) * scale;
      if ((b & 0x80) === 0) {
        if (i > 0 && b === 0) {
          throw new ProtocolError('LORA_NON_CANONICAL', 'varint has a redundant trailing zero group', {
            details: { offset: start },
          });
        }
        if (value > VARINT_MAX) throw malformed('varint exceeds 2^53-1', start);
        return value;
      }
      scale *= 128;
    }
    throw malformed('varint longer than 8 bytes', start);
  }

  /** A zigzag varint: −ZIGZAG_MAX ≤ value < ZIGZAG_MAX by construction (its varint is ≤ 2^53 − 1). */
  svarint(): number {
    const start = this.#pos;
    const v = unzigzag(this.varint());
    if (Math.abs(v) > ZIGZAG_MAX) throw malformed('signed varint out of range', start);
    return v;
  }

  f32(): number {
    const b = this.bytes(4);
    return new DataView(b.buffer, b.byteOffset, 4).getFloat32(0);
  }

  f64(): number {
    const b = this.bytes(8);
    return new DataView(b.buffer, b.byteOffset, 8).getFloat64(0);
  }

  /** Throws LORA_PAYLOAD_MALFORMED unless every byte was consumed. */
  end(what: string): void {
    if (this.remaining !== 0) throw malformed(`${this.remaining} trailing bytes after ${what}`, this.#pos);
  }
}

// --- Compact strings (§4.2): a string that is really bytes in a textual form travels as those bytes. ---

const CSTR_UTF8 = 0;
const CSTR_BASE64URL = 1;
const CSTR_HEX = 2;
const CSTR_UUID = 3;
const CSTR_DID_KEY = 4;

/** Longest string (in encoded bytes) a compact string may carry. */
export const CSTR_MAX_BYTES = 1024;

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const LOWER_HEX = /^(?:[0-9a-f]{2})+$/;
const BASE64URL = /^[A-Za-z0-9_-]+$/;
/** UTF-8 cannot carry a lone surrogate (TextEncoder would silently substitute U+FFFD). */
export const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

function isCanonicalDidKey(s: string): boolean {
  if (!s.startsWith('did:key:z') || s.length > 128) return false;
  try {
    return didKeyFromEd25519(ed25519FromDidKey(s)) === s;
  } catch {
    return false; // any parse failure just means "not this form"; the string then travels as UTF-8 or another form
  }
}

function isCanonicalBase64Url(s: string): boolean {
  if (!BASE64URL.test(s) || s.length % 4 === 1) return false;
  try {
    return toBase64Url(fromBase64Url(s)) === s;
  } catch {
    return false; // stray low bits in the last character: not canonical, so the string travels as UTF-8
  }
}

/** The compact form a string takes: the first of uuid, did:key, hex, base64url that matches exactly, else UTF-8. */
function cstrForm(s: string): number {
  if (UUID.test(s)) return CSTR_UUID;
  if (isCanonicalDidKey(s)) return CSTR_DID_KEY;
  if (LOWER_HEX.test(s)) return CSTR_HEX;
  if (isCanonicalBase64Url(s)) return CSTR_BASE64URL;
  return CSTR_UTF8;
}

/** Writes a compact string: form byte, then 16 B (uuid), 32 B (did:key) or varint length + bytes. */
export function writeCompactString(w: ByteWriter, s: string): void {
  if (typeof s !== 'string') throw new ProtocolError('LORA_VALUE_UNSUPPORTED', 'compact string must be a string');
  const form = cstrForm(s);
  w.u8(form);
  let body: Uint8Array;
  switch (form) {
    case CSTR_UUID:
      w.bytes(fromHex(s.replaceAll('-', '')));
      return;
    case CSTR_DID_KEY:
      w.bytes(ed25519FromDidKey(s));
      return;
    case CSTR_HEX:
      body = fromHex(s);
      break;
    case CSTR_BASE64URL:
      body = fromBase64Url(s);
      break;
    default:
      if (LONE_SURROGATE.test(s)) throw new ProtocolError('LORA_VALUE_UNSUPPORTED', 'string holds a lone surrogate');
      body = utf8(s);
  }
  if (body.length > CSTR_MAX_BYTES) throw new ProtocolError('LORA_VALUE_UNSUPPORTED', 'compact string too long');
  w.varint(body.length).bytes(body);
}

/** Reads a compact string; rejects a form the encoder would not have chosen (LORA_NON_CANONICAL). */
export function readCompactString(r: ByteReader, what: string): string {
  const start = r.offset;
  const form = r.u8();
  let s: string;
  switch (form) {
    case CSTR_UUID: {
      const h = toHex(r.bytes(16));
      s = `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
      break;
    }
    case CSTR_DID_KEY:
      s = didKeyFromEd25519(r.bytes(32));
      break;
    case CSTR_HEX:
    case CSTR_BASE64URL:
    case CSTR_UTF8: {
      const n = r.varint();
      if (n > CSTR_MAX_BYTES) throw malformed(`${what}: compact string longer than ${CSTR_MAX_BYTES} bytes`, start);
      const body = r.bytes(n);
      if (form === CSTR_HEX) s = toHex(body);
      else if (form === CSTR_BASE64URL) s = toBase64Url(body);
      else {
        try {
          s = fromUtf8(body, what);
        } catch (cause) {
          throw new ProtocolError('LORA_PAYLOAD_MALFORMED', `${what} is not valid UTF-8`, { cause });
        }
      }
      break;
    }
    default:
      throw malformed(`${what}: unknown compact string form ${form}`, start);
  }
  if (cstrForm(s) !== form) {
    throw new ProtocolError('LORA_NON_CANONICAL', `${what}: compact string not in its canonical form`, {
      details: { offset: start },
    });
  }
  return s;
}
