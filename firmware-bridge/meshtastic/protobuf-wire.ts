// Protocol Buffers wire format (protobuf.dev "Encoding"): a bounds-checked reader that skips unknown
// fields by the wire rules, and a writer. Only what the Meshtastic subset needs; pure, no allocation games.

import { MeshtasticError } from './errors.ts';

export const WIRE_VARINT = 0;
export const WIRE_I64 = 1;
export const WIRE_LEN = 2;
export const WIRE_SGROUP = 3;
export const WIRE_EGROUP = 4;
export const WIRE_I32 = 5;

/** Largest field number protobuf allows (2^29 − 1). */
const MAX_FIELD_NUMBER = 0x1fffffff;
/** Deepest group nesting the skipper follows before giving up (protobuf's own default recursion limit). */
const MAX_GROUP_DEPTH = 100;

const utf8Decoder = new TextDecoder('utf-8', { fatal: false });
const utf8Encoder = new TextEncoder();

function truncated(what: string, at: number): MeshtasticError {
  return new MeshtasticError('MT_PB_TRUNCATED', `protobuf ${what} runs past the end of the message`, {
    details: { offset: at },
  });
}

/** Reads one message's bytes. Every method throws MeshtasticError on malformed input, never anything else. */
export class WireReader {
  readonly #buf: Uint8Array;
  #pos = 0;

  constructor(bytes: Uint8Array) {
    this.#buf = bytes;
  }

  get done(): boolean {
    return this.#pos >= this.#buf.length;
  }

  /** Reads the next tag; returns field number and wire type. */
  tag(): { field: number; wireType: number } {
    const at = this.#pos;
    const v = this.#varint64();
    const wireType = Number(v & 7n);
    const field = v >> 3n;
    if (field === 0n || field > BigInt(MAX_FIELD_NUMBER)) {
      throw new MeshtasticError('MT_PB_BAD_TAG', `protobuf field number ${field} is out of range`, {
        details: { offset: at },
      });
    }
    if (wireType === 6 || wireType === 7) {
      throw new MeshtasticError('MT_PB_BAD_WIRE_TYPE', `protobuf wire type ${wireType} does not exist`, {
        details: { offset: at },
      });
    }
    return { field: Number(field), wireType };
  }

  /** Varint as uint32 (protobuf truncates wider values to their low 32 bits). */
  uint32(): number {
    return Number(this.#varint64() & 0xffffffffn);
  }

  /** Varint as int32 (low 32 bits, two's complement). */
  int32(): number {
    return Number(BigInt.asIntN(32, this.#varint64()));
  }

  /** Varint as uint64. */
  uint64(): bigint {
    return this.#varint64();
  }

  bool(): boolean {
    return this.#varint64() !== 0n;
  }

  fixed32(): number {
    return this.#view(4).getUint32(0, true);
  }

  sfixed32(): number {
    return this.#view(4).getInt32(0, true);
  }

  float(): number {
    return this.#view(4).getFloat32(0, true);
  }

  /** A length-delimited field's bytes (a copy, safe to keep). */
  bytes(): Uint8Array {
    return this.#len().slice();
  }

  /** A length-delimited field as UTF-8; invalid sequences become U+FFFD (the firmware may cut names mid-character). */
  string(): string {
    return utf8Decoder.decode(this.#len());
  }

  /** A length-delimited field as a sub-reader over the same bytes (for embedded messages). */
  message(): WireReader {
    return new WireReader(this.#len());
  }

  /** Skips one field of `wireType` whose tag was just read (groups are followed to their end tag). */
  skip(wireType: number, field: number, depth = 0): void {
    switch (wireType) {
      case WIRE_VARINT:
        this.#varint64();
        return;
      case WIRE_I64:
        this.#take(8);
        return;
      case WIRE_LEN:
        this.#len();
        return;
      case WIRE_I32:
        this.#take(4);
        return;
      case WIRE_SGROUP: {
        if (depth >= MAX_GROUP_DEPTH) {
          throw new MeshtasticError('MT_PB_TOO_DEEP', `protobuf groups nested deeper than ${MAX_GROUP_DEPTH}`);
        }
        for (;;) {
          if (this.done) throw truncated('group', this.#pos);
          const t = this.tag();
          if (t.wireType === WIRE_EGROUP) {
            if (t.field !== field) {
              throw new MeshtasticError('MT_PB_BAD_WIRE_TYPE', `protobuf group ${field} closed by end tag ${t.field}`);
            }
            return;
          }
          this.skip(t.wireType, t.field, depth + 1);
        }
      }
      default:
        throw new MeshtasticError('MT_PB_BAD_WIRE_TYPE', `protobuf end-group tag ${field} without a start`, {
          details: { offset: this.#pos },
        });
    }
  }

  #varint64(): bigint {
    let result = 0n;
    for (let i = 0; i < 10; i++) {
      if (this.#pos >= this.#buf.length) throw truncated('varint', this.#pos);
      const b = this.#buf[this.#pos++]!;
      if (i === 9 && b > 1) {
        throw new MeshtasticError('MT_PB_BAD_VARINT', 'protobuf varint overflows 64 bits', {
          details: { offset: this.#pos - 1 },
        });
      }
      result |= BigInt(b & 0x7f) << BigInt(7 * i);
      if ((b & 0x80) === 0) return result;
    }
    throw new MeshtasticError('MT_PB_BAD_VARINT', 'protobuf varint longer than 10 bytes', {
      details: { offset: this.#pos },
    });
  }

  #len(): Uint8Array {
    const at = this.#pos;
    const n = this.#varint64();
    if (n > BigInt(this.#buf.length - this.#pos)) throw truncated('length-delimited field', at);
    return this.#take(Number(n));
  }

  #take(n: number): Uint8Array {
    if (this.#pos + n > this.#buf.length) throw truncated('fixed-width field', this.#pos);
    const out = this.#buf.subarray(this.#pos, this.#pos + n);
    this.#pos += n;
    return out;
  }

  #view(n: number): DataView {
    const b = this.#take(n);
    return new DataView(b.buffer, b.byteOffset, n);
  }
}

/** Throws MT_PB_WIRE_TYPE_MISMATCH when a known field arrives with another wire type (corrupt or foreign data). */
export function expectWireType(actual: number, expected: number, field: number, message: string): void {
  if (actual !== expected) {
    throw new MeshtasticError(
      'MT_PB_WIRE_TYPE_MISMATCH',
      `${message} field ${field} has wire type ${actual}, expected ${expected}`,
      { details: { message, field } },
    );
  }
}

function invalidValue(what: string, value: unknown): MeshtasticError {
  return new MeshtasticError('MT_PB_INVALID_VALUE', `cannot encode ${what} = ${String(value)}`, {
    details: { field: what },
  });
}

/** Appends fields to a growing buffer. Setters skip proto3 default values; `force` writes them (oneof members). */
export class WireWriter {
  #buf = new Uint8Array(64);
  #len = 0;

  finish(): Uint8Array {
    return this.#buf.slice(0, this.#len);
  }

  uint32(field: number, value: number, force = false): this {
    if (!Number.isInteger(value) || value < 0 || value > 0xffffffff) throw invalidValue(`uint32 field ${field}`, value);
    if (value === 0 && !force) return this;
    this.#tag(field, WIRE_VARINT);
    this.#varint(BigInt(value));
    return this;
  }

  int32(field: number, value: number, force = false): this {
    if (!Number.isInteger(value) || value < -0x80000000 || value > 0x7fffffff) {
      throw invalidValue(`int32 field ${field}`, value);
    }
    if (value === 0 && !force) return this;
    this.#tag(field, WIRE_VARINT);
    // Negative int32 values are sign-extended to 64 bits: always 10 bytes on the wire.
    this.#varint(BigInt.asUintN(64, BigInt(value)));
    return this;
  }

  uint64(field: number, value: bigint, force = false): this {
    if (value < 0n || value > 0xffffffffffffffffn) throw invalidValue(`uint64 field ${field}`, value);
    if (value === 0n && !force) return this;
    this.#tag(field, WIRE_VARINT);
    this.#varint(value);
    return this;
  }

  bool(field: number, value: boolean, force = false): this {
    if (!value && !force) return this;
    this.#tag(field, WIRE_VARINT);
    this.#byte(value ? 1 : 0);
    return this;
  }

  fixed32(field: number, value: number, force = false): this {
    if (!Number.isInteger(value) || value < 0 || value > 0xffffffff)
      throw invalidValue(`fixed32 field ${field}`, value);
    if (value === 0 && !force) return this;
    this.#tag(field, WIRE_I32);
    const b = this.#reserve(4);
    new DataView(b.buffer, b.byteOffset, 4).setUint32(0, value, true);
    return this;
  }

  float(field: number, value: number, force = false): this {
    if (typeof value !== 'number') throw invalidValue(`float field ${field}`, value);
    // proto3 omits +0 only; -0 and NaN are not defaults and are written.
    if (Object.is(value, 0) && !force) return this;
    this.#tag(field, WIRE_I32);
    const b = this.#reserve(4);
    new DataView(b.buffer, b.byteOffset, 4).setFloat32(0, value, true);
    return this;
  }

  bytes(field: number, value: Uint8Array, force = false): this {
    if (value.length === 0 && !force) return this;
    this.#tag(field, WIRE_LEN);
    this.#varint(BigInt(value.length));
    this.#reserve(value.length).set(value);
    return this;
  }

  string(field: number, value: string, force = false): this {
    return this.bytes(field, utf8Encoder.encode(value), force);
  }

  /** An embedded message, always written when given (message presence is explicit in proto3). */
  message(field: number, encoded: Uint8Array | undefined): this {
    if (encoded === undefined) return this;
    return this.bytes(field, encoded, true);
  }

  /** A packed repeated uint32 field (the proto3 default encoding for repeated scalars). */
  packedUint32(field: number, values: readonly number[]): this {
    if (values.length === 0) return this;
    const inner = new WireWriter();
    for (const v of values) {
      if (!Number.isInteger(v) || v < 0 || v > 0xffffffff) throw invalidValue(`repeated uint32 field ${field}`, v);
      inner.#varint(BigInt(v));
    }
    return this.bytes(field, inner.finish(), true);
  }

  #tag(field: number, wireType: number): void {
    this.#varint(BigInt(field * 8 + wireType));
  }

  #varint(v: bigint): void {
    let x = v;
    while (x >= 0x80n) {
      this.#byte(Number(x & 0x7fn) | 0x80);
      x >>= 7n;
    }
    this.#byte(Number(x));
  }

  #byte(b: number): void {
    this.#reserve(1)[0] = b;
  }

  #reserve(n: number): Uint8Array {
    if (this.#len + n > this.#buf.length) {
      const next = new Uint8Array(Math.max(this.#buf.length * 2, this.#len + n));
      next.set(this.#buf.subarray(0, this.#len));
      this.#buf = next;
    }
    const out = this.#buf.subarray(this.#len, this.#len + n);
    this.#len += n;
    return out;
  }
}
