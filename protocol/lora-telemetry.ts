// Telemetry over LoRa (docs/protocol/lora-frames.md §4.4–4.5): many readings per frame with delta-coded seqs and
// timestamps and typed values; a packer that fills frames in the caller's priority order; acks by seq range.

import { fromUtf8, utf8 } from './bytes.ts';
import { ProtocolError } from './errors.ts';
import { LORA_OVERHEAD_BYTES } from './lora-frame.ts';
import { ByteReader, ByteWriter, LONE_SURROGATE } from './lora-wire.ts';

/** A reading's value as it travels: JSON scalars, or raw bytes. */
export type LoraTelemetryValue = null | boolean | number | string | Uint8Array;

/** Quality flags, in the order that gives their bit in the mask (§4.4.3); absent means a good, direct reading. */
export const LORA_QUALITY_FLAGS = [
  'estimated',
  'clipped',
  'stale',
  'sensor_fault',
  'calibrating',
  'substituted',
] as const;
export type LoraQualityFlag = (typeof LORA_QUALITY_FLAGS)[number];

/** One reading (§4.4.1): the mapping from a telemetry record is documented there. */
export interface LoraTelemetryRecord {
  /** The device's record sequence number (outbox seq), 0..2^52−1. */
  readonly seq: number;
  /** Index of the stream in the manifest's `streams` array, 0..65535. */
  readonly stream: number;
  /** Milliseconds since the Unix epoch, 0..2^52−1. */
  readonly ts: number;
  readonly value: LoraTelemetryValue;
  /** 1..6 distinct flags; decoded in LORA_QUALITY_FLAGS order. Absent for a good, direct reading. */
  readonly quality?: readonly LoraQualityFlag[];
}

export const TELEMETRY_SEQ_MAX = 2 ** 52 - 1;
export const TELEMETRY_TS_MAX = 2 ** 52 - 1;
export const TELEMETRY_STREAM_MAX = 0xffff;
/** Longest string or byte value, in bytes (a larger one cannot fit any frame anyway). */
export const TELEMETRY_VALUE_MAX_BYTES = 480;
/** Integers and decimal mantissas stay within ±(2^51 − 1), so the difference of two always fits a zigzag varint. */
export const TELEMETRY_MANTISSA_MAX = 2 ** 51 - 1;

// Value type codes: the high nibble of a record's header byte (§4.4.3).
const V_NULL = 0;
const V_FALSE = 1;
const V_TRUE = 2;
const V_INT = 3;
const V_DEC1 = 4; // 4..9: decimal with 1..6 fraction digits
const V_F32 = 10;
const V_F64 = 11;
const V_TEXT = 12;
const V_BYTES = 13;
const POW10 = [1, 10, 100, 1_000, 10_000, 100_000, 1_000_000];

const R_SEQ_STEP = 0x08;
const R_SAME_STREAM = 0x04;
const R_SAME_DELTA = 0x02;
const R_QUALITY = 0x01;
const F_TS_SECONDS = 0x01;

function unsupported(message: string, details: Record<string, unknown> = {}): ProtocolError {
  return new ProtocolError('LORA_VALUE_UNSUPPORTED', message, { details });
}

function malformed(message: string, offset: number): ProtocolError {
  return new ProtocolError('LORA_PAYLOAD_MALFORMED', `telemetry: ${message}`, { details: { offset } });
}

function varintLength(n: number): number {
  let len = 1;
  for (let v = n; v >= 0x80; v = Math.floor(v / 128)) len++;
  return len;
}

function isMantissaType(type: number): boolean {
  return type >= V_INT && type < V_DEC1 + 6;
}

/** A value's type code, its context-free encoding, and for int/decimal types the integer mantissa. */
interface ValueForm {
  readonly type: number;
  readonly bytes: Uint8Array;
  readonly mantissa?: number;
}

/** The form of a number: int; else the shortest of decimal, f32, f64 (ties: lowest type code) (§4.4.3). */
function numberForm(v: number): { type: number; mantissa?: number } {
  if (!Number.isFinite(v)) throw unsupported(`telemetry value ${v} is not finite (send null instead)`);
  if (Number.isInteger(v) && Math.abs(v) <= TELEMETRY_MANTISSA_MAX && !Object.is(v, -0)) {
    return { type: V_INT, mantissa: v };
  }
  let best: { type: number; size: number; mantissa?: number } =
    Math.fround(v) === v ? { type: V_F32, size: 4 } : { type: V_F64, size: 8 };
  // −0 has no decimal form (a zero mantissa decodes as +0), so it travels as f32.
  for (let s = 1; s <= 6 && v !== 0; s++) {
    const m = Math.round(v * POW10[s]!);
    if (Math.abs(m) <= TELEMETRY_MANTISSA_MAX && Object.is(m / POW10[s]!, v)) {
      const size = varintLength(m >= 0 ? m * 2 : -m * 2 - 1);
      if (size <= best.size) best = { type: V_DEC1 + s - 1, size, mantissa: m };
      break; // a larger scale only makes the mantissa longer
    }
  }
  return best;
}

function valueForm(v: LoraTelemetryValue): ValueForm {
  const w = new ByteWriter();
  if (v === null) return { type: V_NULL, bytes: w.finish() };
  if (v === false) return { type: V_FALSE, bytes: w.finish() };
  if (v === true) return { type: V_TRUE, bytes: w.finish() };
  if (typeof v === 'number') {
    const form = numberForm(v);
    if (form.mantissa !== undefined) w.svarint(form.mantissa);
    else if (form.type === V_F32) w.f32(v);
    else w.f64(v);
    return { type: form.type, bytes: w.finish(), ...(form.mantissa !== undefined ? { mantissa: form.mantissa } : {}) };
  }
  if (typeof v === 'string') {
    if (LONE_SURROGATE.test(v)) throw unsupported('telemetry string holds a lone surrogate');
    const b = utf8(v);
    if (b.length > TELEMETRY_VALUE_MAX_BYTES) throw unsupported('telemetry string too long');
    return { type: V_TEXT, bytes: w.varint(b.length).bytes(b).finish() };
  }
  if (v instanceof Uint8Array) {
    if (v.length > TELEMETRY_VALUE_MAX_BYTES) throw unsupported('telemetry byte value too long');
    return { type: V_BYTES, bytes: w.varint(v.length).bytes(v).finish() };
  }
  throw unsupported(`telemetry value of type ${typeof v} cannot be sent`);
}

function isTooLong(v: LoraTelemetryValue): boolean {
  if (v instanceof Uint8Array) return v.length > TELEMETRY_VALUE_MAX_BYTES;
  return typeof v === 'string' && !LONE_SURROGATE.test(v) && utf8(v).length > TELEMETRY_VALUE_MAX_BYTES;
}

/**
 * Reads a value of `type`. `prevMantissa` is set when the mantissa travels as a difference from the previous
 * record's (same stream, same int/decimal type, §4.4.3).
 */
function readValue(
  r: ByteReader,
  type: number,
  start: number,
  prevMantissa: number | undefined,
): { value: LoraTelemetryValue; mantissa?: number } {
  if (isMantissaType(type)) {
    const m = (prevMantissa ?? 0) + r.svarint();
    if (Math.abs(m) > TELEMETRY_MANTISSA_MAX) throw malformed('mantissa out of range', start);
    return { value: type === V_INT ? m : m / POW10[type - V_DEC1 + 1]!, mantissa: m };
  }
  switch (type) {
    case V_NULL:
      return { value: null };
    case V_FALSE:
      return { value: false };
    case V_TRUE:
      return { value: true };
    case V_F32:
      return { value: r.f32() };
    case V_F64:
      return { value: r.f64() };
    case V_TEXT:
    case V_BYTES: {
      const n = r.varint();
      if (n > TELEMETRY_VALUE_MAX_BYTES) throw malformed('value too long', start);
      const b = r.bytes(n);
      if (type === V_BYTES) return { value: b.slice() };
      try {
        return { value: fromUtf8(b, 'telemetry string') };
      } catch (cause) {
        throw new ProtocolError('LORA_PAYLOAD_MALFORMED', 'telemetry string is not UTF-8', { cause });
      }
    }
    default:
      throw malformed(`unknown value type ${type}`, start);
  }
}

function checkRecord(rec: LoraTelemetryRecord, index: number): void {
  const bad = (what: string) => unsupported(`record ${index}: ${what}`, { index });
  if (rec === null || typeof rec !== 'object') throw bad('not an object');
  if (!Number.isSafeInteger(rec.seq) || rec.seq < 0 || rec.seq > TELEMETRY_SEQ_MAX) throw bad('seq out of range');
  if (!Number.isSafeInteger(rec.stream) || rec.stream < 0 || rec.stream > TELEMETRY_STREAM_MAX) {
    throw bad('stream index out of range');
  }
  if (!Number.isSafeInteger(rec.ts) || rec.ts < 0 || rec.ts > TELEMETRY_TS_MAX) throw bad('ts out of range');
  if (rec.quality !== undefined) qualityMask(rec.quality, bad);
}

/** Bit i set ⇔ LORA_QUALITY_FLAGS[i] present; 0 when absent. */
function qualityMask(quality: readonly LoraQualityFlag[] | undefined, bad: (what: string) => Error): number {
  if (quality === undefined) return 0;
  if (!Array.isArray(quality) || quality.length === 0) throw bad('quality must list 1..6 flags');
  let mask = 0;
  for (const q of quality) {
    const bit = LORA_QUALITY_FLAGS.indexOf(q);
    if (bit < 0) throw bad(`unknown quality flag ${String(q)}`);
    if (mask & (1 << bit)) throw bad(`duplicate quality flag ${q}`);
    mask |= 1 << bit;
  }
  return mask;
}

/** A record with its value already encoded (the value's bytes do not depend on its neighbours). */
interface Prepared {
  readonly rec: LoraTelemetryRecord;
  readonly form: ValueForm;
  readonly quality: number;
}

function prepare(rec: LoraTelemetryRecord, index: number): Prepared {
  checkRecord(rec, index);
  return { rec, form: valueForm(rec.value), quality: qualityMask(rec.quality, (w) => unsupported(w, { index })) };
}

/** Canonical order inside a payload (§4.4.2): by stream, then seq; (stream, seq) pairs are unique. */
function compareRecords(a: LoraTelemetryRecord, b: LoraTelemetryRecord): number {
  return a.stream - b.stream || a.seq - b.seq;
}

/** What the record encoder writes to: a ByteWriter, or a counter when only the size matters. */
interface Sink {
  u8(v: number): unknown;
  varint(v: number): unknown;
  svarint(v: number): unknown;
  bytes(b: Uint8Array): unknown;
}

class SizeCounter implements Sink {
  size = 0;
  u8(): void {
    this.size++;
  }
  varint(v: number): void {
    this.size += varintLength(v);
  }
  svarint(v: number): void {
    this.size += varintLength(v >= 0 ? v * 2 : -v * 2 - 1);
  }
  bytes(b: Uint8Array): void {
    this.size += b.length;
  }
}

/**
 * Writes the payload for records already in canonical order (§4.4.2). `unit` is 1000 when every timestamp is a whole
 * second (they then travel in seconds), else 1. Delta state starts at seq0 − 1 with step 1, ts0 with delta 0.
 */
function writeRecords(out: Sink, sorted: readonly Prepared[], unit: number): void {
  const first = sorted[0]!.rec;
  out.u8(unit === 1000 ? F_TS_SECONDS : 0);
  out.varint(first.seq);
  out.varint(first.ts / unit);
  let prevSeq = first.seq - 1;
  let step = 1;
  let prevTs = first.ts / unit;
  let delta = 0;
  let stream = -1;
  let prev: ValueForm | undefined;
  for (const p of sorted) {
    const ts = p.rec.ts / unit;
    const dSeq = p.rec.seq - prevSeq;
    const dTs = ts - prevTs;
    let head = p.form.type << 4;
    if (dSeq === step) head |= R_SEQ_STEP;
    if (p.rec.stream === stream) head |= R_SAME_STREAM;
    if (dTs === delta) head |= R_SAME_DELTA;
    if (p.quality !== 0) head |= R_QUALITY;
    out.u8(head);
    if (dSeq !== step) out.svarint(dSeq);
    if (p.rec.stream !== stream) out.varint(p.rec.stream);
    if (dTs !== delta) out.svarint(dTs);
    if (p.quality !== 0) out.u8(p.quality);
    if (p.rec.stream === stream && p.form.mantissa !== undefined && prev?.type === p.form.type) {
      out.svarint(p.form.mantissa - prev.mantissa!);
    } else out.bytes(p.form.bytes);
    prev = p.form;
    prevSeq = p.rec.seq;
    step = dSeq;
    prevTs = ts;
    delta = dTs;
    stream = p.rec.stream;
  }
}

function unitOf(sorted: readonly Prepared[]): number {
  return sorted.every((p) => p.rec.ts % 1000 === 0) ? 1000 : 1;
}

function sortedUnique(prepared: Prepared[]): Prepared[] {
  const sorted = prepared.sort((a, b) => compareRecords(a.rec, b.rec));
  for (let i = 1; i < sorted.length; i++) {
    if (compareRecords(sorted[i - 1]!.rec, sorted[i]!.rec) === 0) {
      throw unsupported('two records share a stream and seq', {
        stream: sorted[i]!.rec.stream,
        seq: sorted[i]!.rec.seq,
      });
    }
  }
  return sorted;
}

/**
 * Encodes a TELEMETRY payload (§4.4). Records are written in canonical order (stream, then seq), so
 * decodeTelemetry returns them in that order. Throws LORA_VALUE_UNSUPPORTED for an empty list, a duplicate
 * (stream, seq), or a record outside the documented ranges (non-finite numbers, over-long strings…).
 */
export function encodeTelemetry(records: readonly LoraTelemetryRecord[]): Uint8Array {
  if (!Array.isArray(records) || records.length === 0) throw unsupported('a telemetry payload needs ≥ 1 record');
  const sorted = sortedUnique(records.map(prepare));
  const w = new ByteWriter();
  writeRecords(w, sorted, unitOf(sorted));
  return w.finish();
}

/** Decodes a TELEMETRY payload. Throws LORA_PAYLOAD_MALFORMED, or LORA_NON_CANONICAL for a valid but non-canonical form. */
export function decodeTelemetry(payload: Uint8Array): LoraTelemetryRecord[] {
  const r = new ByteReader(payload);
  const flags = r.u8();
  if (flags & ~F_TS_SECONDS) throw malformed('reserved flag bits set', 0);
  const unit = flags & F_TS_SECONDS ? 1000 : 1;
  const seq0 = r.varint();
  const ts0 = r.varint();
  if (seq0 > TELEMETRY_SEQ_MAX || ts0 * unit > TELEMETRY_TS_MAX) throw malformed('base seq or ts out of range', 1);
  let prevSeq = seq0 - 1;
  let step = 1;
  let prevTs = ts0;
  let delta = 0;
  let stream = -1;
  let prevType = -1;
  let prevMantissa: number | undefined;
  const out: LoraTelemetryRecord[] = [];
  if (r.remaining === 0) throw malformed('no records', r.offset);
  while (r.remaining > 0) {
    const start = r.offset;
    const head = r.u8();
    if (!(head & R_SEQ_STEP)) {
      const d = r.svarint();
      if (d === step) throw new ProtocolError('LORA_NON_CANONICAL', 'telemetry: repeated seq step spelled out');
      step = d;
    }
    if (head & R_SAME_STREAM) {
      if (stream < 0) throw malformed('first record cannot repeat a stream', start);
    } else {
      const s = r.varint();
      if (s === stream) throw new ProtocolError('LORA_NON_CANONICAL', 'telemetry: repeated stream spelled out');
      stream = s;
    }
    if (!(head & R_SAME_DELTA)) {
      const d = r.svarint();
      if (d === delta) throw new ProtocolError('LORA_NON_CANONICAL', 'telemetry: repeated ts delta spelled out');
      delta = d;
    }
    const seq = prevSeq + step;
    let quality: LoraQualityFlag[] | undefined;
    if (head & R_QUALITY) {
      const mask = r.u8();
      if (mask === 0 || mask >= 1 << LORA_QUALITY_FLAGS.length) throw malformed('bad quality mask', start);
      quality = LORA_QUALITY_FLAGS.filter((_, bit) => mask & (1 << bit));
    }
    const ts = prevTs + delta;
    if (seq < 0 || seq > TELEMETRY_SEQ_MAX) throw malformed('seq out of range', start);
    if (ts < 0 || ts * unit > TELEMETRY_TS_MAX) throw malformed('ts out of range', start);
    if (stream > TELEMETRY_STREAM_MAX) throw malformed('stream index out of range', start);
    const valueStart = r.offset;
    const type = head >>> 4;
    const isDelta = (head & R_SAME_STREAM) !== 0 && isMantissaType(type) && type === prevType;
    const { value, mantissa } = readValue(r, type, start, isDelta ? prevMantissa : undefined);
    const canonical = valueForm(value);
    if (
      canonical.type !== type ||
      (mantissa !== undefined ? canonical.mantissa !== mantissa : !sameBytes(canonical.bytes, r.since(valueStart)))
    ) {
      throw new ProtocolError('LORA_NON_CANONICAL', 'telemetry: value not in its canonical form', {
        details: { offset: start },
      });
    }
    prevType = type;
    prevMantissa = mantissa;
    const rec: LoraTelemetryRecord = { seq, stream, ts: ts * unit, value, ...(quality ? { quality } : {}) };
    const prev = out[out.length - 1];
    if (prev !== undefined && compareRecords(prev, rec) >= 0) {
      throw new ProtocolError('LORA_NON_CANONICAL', 'telemetry: records not in (stream, seq) order', {
        details: { offset: start },
      });
    }
    out.push(rec);
    prevSeq = seq;
    prevTs = ts;
  }
  if (out[0]!.seq !== seq0 || out[0]!.ts !== ts0 * unit) {
    throw new ProtocolError('LORA_NON_CANONICAL', 'telemetry: base does not equal the first record');
  }
  if (unit === 1 && out.every((rec) => rec.ts % 1000 === 0)) {
    throw new ProtocolError('LORA_NON_CANONICAL', 'telemetry: whole-second timestamps must travel in seconds');
  }
  return out;
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

/** Size of the canonical payload for records already in canonical order. */
function payloadSize(sorted: readonly Prepared[]): number {
  const c = new SizeCounter();
  writeRecords(c, sorted, unitOf(sorted));
  return c.size;
}

/** Scanning for records that still fit stops after this many misfits in one frame. */
const MAX_MISFITS_PER_FRAME = 64;

export interface TelemetryPack {
  /** TELEMETRY payloads, each sealing to ≤ maxFrameBytes, with the records each holds (in payload order). */
  readonly frames: { readonly payload: Uint8Array; readonly records: readonly LoraTelemetryRecord[] }[];
  /** Records not packed because maxFrames was reached, in the caller's order. */
  readonly leftover: LoraTelemetryRecord[];
  /** Records that cannot fit even an empty frame (a string or byte value too long), in the caller's order. */
  readonly oversize: LoraTelemetryRecord[];
}

/**
 * Packs records, highest priority first as given, into TELEMETRY payloads that seal to ≤ maxFrameBytes (§4.4.4).
 * Each frame takes records in the caller's order; one that does not fit is skipped for this frame (a later, smaller
 * one may fill the gap) and comes first in the next. A record repeating a (stream, seq) already in a frame waits for
 * the next frame. Throws LORA_VALUE_UNSUPPORTED for an invalid record.
 */
export function packTelemetry(
  records: readonly LoraTelemetryRecord[],
  maxFrameBytes: number,
  options: { readonly maxFrames?: number } = {},
): TelemetryPack {
  const budget = maxFrameBytes - LORA_OVERHEAD_BYTES;
  if (!Number.isInteger(maxFrameBytes) || budget < 4) throw unsupported(`maxFrameBytes ${maxFrameBytes} is too small`);
  const maxFrames = options.maxFrames ?? Number.POSITIVE_INFINITY;
  const frames: { payload: Uint8Array; records: LoraTelemetryRecord[] }[] = [];
  const oversize: LoraTelemetryRecord[] = [];
  let remaining: Prepared[] = [];
  records.forEach((rec, i) => {
    if (isTooLong(rec?.value)) {
      checkRecord(rec, i);
      oversize.push(rec);
    } else remaining.push(prepare(rec, i));
  });
  const position = new Map(records.map((rec, i) => [rec, i]));
  while (remaining.length > 0 && frames.length < maxFrames) {
    const frame: Prepared[] = [];
    let size = 0;
    const next: Prepared[] = [];
    let misfits = 0;
    for (const p of remaining) {
      if (size >= budget || misfits >= MAX_MISFITS_PER_FRAME) {
        next.push(p);
        continue;
      }
      // Insert at its canonical position; undo if it does not fit or duplicates a (stream, seq).
      let at = frame.length;
      while (at > 0 && compareRecords(frame[at - 1]!.rec, p.rec) > 0) at--;
      if (at > 0 && compareRecords(frame[at - 1]!.rec, p.rec) === 0) {
        next.push(p);
        misfits++;
        continue;
      }
      frame.splice(at, 0, p);
      const trial = payloadSize(frame);
      if (trial <= budget) {
        size = trial;
        continue;
      }
      frame.splice(at, 1);
      if (frame.length === 0) oversize.push(p.rec);
      else {
        next.push(p);
        misfits++;
      }
    }
    remaining = next;
    if (frame.length > 0) {
      const w = new ByteWriter();
      writeRecords(w, frame, unitOf(frame));
      frames.push({ payload: w.finish(), records: frame.map((p) => p.rec) });
    }
  }
  oversize.sort((a, b) => position.get(a)! - position.get(b)!);
  return { frames, leftover: remaining.map((p) => p.rec), oversize };
}

// --- TELEMETRY_ACK (§4.5) ---

/** An inclusive range of record seqs. */
export interface SeqRange {
  readonly from: number;
  readonly to: number;
}

export interface LoraTelemetryAck {
  /** Acknowledged record seqs: sorted, disjoint, non-adjacent after encoding (the encoder normalises). */
  readonly ranges: readonly SeqRange[];
  /** The control plane's wall clock, seconds since the Unix epoch, when it sent the ack (§4.5, §10.4). */
  readonly timeS?: number;
}

const A_HAS_TIME = 0x01;

/** Sorts and merges overlapping or adjacent ranges. Throws LORA_VALUE_UNSUPPORTED for a bad range. */
export function normalizeSeqRanges(ranges: readonly SeqRange[]): SeqRange[] {
  for (const r of ranges) {
    if (
      !Number.isSafeInteger(r?.from) ||
      !Number.isSafeInteger(r?.to) ||
      r.from < 0 ||
      r.from > r.to ||
      r.to > TELEMETRY_SEQ_MAX
    ) {
      throw unsupported(`bad seq range ${JSON.stringify(r)}`);
    }
  }
  const sorted = [...ranges].sort((a, b) => a.from - b.from);
  const out: { from: number; to: number }[] = [];
  for (const r of sorted) {
    const last = out[out.length - 1];
    if (last !== undefined && r.from <= last.to + 1) last.to = Math.max(last.to, r.to);
    else out.push({ from: r.from, to: r.to });
  }
  return out;
}

/** Encodes a TELEMETRY_ACK payload; ranges are normalised first. */
export function encodeTelemetryAck(ack: LoraTelemetryAck): Uint8Array {
  const ranges = normalizeSeqRanges(ack.ranges);
  const w = new ByteWriter();
  w.u8(ack.timeS === undefined ? 0 : A_HAS_TIME);
  if (ack.timeS !== undefined) w.varint(ack.timeS);
  w.varint(ranges.length);
  let prevTo = -2;
  for (const r of ranges) {
    w.varint(r.from - prevTo - 2);
    w.varint(r.to - r.from);
    prevTo = r.to;
  }
  return w.finish();
}

/** Decodes a TELEMETRY_ACK payload. Throws LORA_PAYLOAD_MALFORMED. */
export function decodeTelemetryAck(payload: Uint8Array): LoraTelemetryAck {
  const r = new ByteReader(payload);
  const flags = r.u8();
  if (flags & ~A_HAS_TIME) throw malformed('ack: reserved flag bits set', 0);
  const timeS = flags & A_HAS_TIME ? r.varint() : undefined;
  const n = r.varint();
  if (n * 2 > r.remaining) throw malformed('ack: more ranges than bytes', r.offset);
  const ranges: SeqRange[] = [];
  let prevTo = -2;
  for (let i = 0; i < n; i++) {
    const at = r.offset;
    const from = prevTo + 2 + r.varint();
    const to = from + r.varint();
    if (to > TELEMETRY_SEQ_MAX) throw malformed('ack: seq out of range', at);
    ranges.push({ from, to });
    prevTo = to;
  }
  r.end('telemetry ack');
  return timeS === undefined ? { ranges } : { ranges, timeS };
}
