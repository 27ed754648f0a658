// Tool calls over LoRa (docs/protocol/lora-frames.md §4.6–4.7): TOOL_CALL downlink with deterministic-CBOR arguments,
// the caller's runtime token and a quorum token in compact forms; TOOL_RESULT uplink.

import { fromBase64Url, fromUtf8, toBase64Url, utf8 } from './bytes.ts';
import type { JsonValue } from './canonical-json.ts';
import { ProtocolError } from './errors.ts';
import { readCbor, writeCbor } from './lora-cbor.ts';
import { ByteReader, ByteWriter, LONE_SURROGATE, readCompactString, writeCompactString } from './lora-wire.ts';

export const TOOL_NAME_MAX_BYTES = 64;
export const TOOL_INDEX_MAX = 0xffff;
export const QUORUM_MAX_APPROVALS = 16;
export const APPROVAL_SIGNATURE_BYTES = 64;
export const APPROVER_SHORT_ID_BYTES = 4;

/**
 * One approver's signature. The approver travels either as a 4-byte short id (first 4 bytes of SHA-256 of the
 * approver's Ed25519 public key, resolved by the device against its policy's approvers) or as the id string itself.
 */
export interface LoraApproval {
  readonly approver: { readonly shortId: Uint8Array } | { readonly id: string };
  /** Ed25519 signature, 64 bytes. */
  readonly signature: Uint8Array;
}

/**
 * The fields of a quorum token that are not implied by the call (§4.6.2): tid and device come from the session, tool
 * from the call, argsHash is recomputed by the device from the arguments, v is 1.
 */
export interface LoraQuorum {
  /** The approval request's id as the token spells it (base64url of 16 bytes travels as those 16 bytes). */
  readonly requestId: string;
  readonly nonce: string;
  /** The token's expiry, ms since the Unix epoch. */
  readonly expMs: number;
  readonly approvals: readonly LoraApproval[];
}

export interface LoraToolCall {
  /** The call's id as the control plane names it everywhere (1..64 characters); the device deduplicates on it. */
  readonly callId: string;
  /** The tool by its index in the manifest's `tools` array, or by name. */
  readonly tool: { readonly index: number } | { readonly name: string };
  /** ms since the Unix epoch after which the device must not start the call. */
  readonly deadlineMs?: number;
  /** The caller's runtime token, a JWS compact serialization (tokens.md §3.1). */
  readonly token?: string;
  readonly quorum?: LoraQuorum;
  readonly args: JsonValue;
}

export type LoraToolStatus = 'ok' | 'error' | 'denied';

export interface LoraToolResult {
  readonly callId: string;
  /** ok: the tool ran, value is its output; error: it failed; denied: the safety gate refused it. */
  readonly status: LoraToolStatus;
  /** Time the device spent on the call. */
  readonly durationMs: number;
  /** ok: the tool's output; otherwise the error, conventionally { code, message }. */
  readonly value: JsonValue;
}

export const CALL_ID_MAX_LENGTH = 64;
/** Longest JWS segment (decoded) a token may have; a token of EdDSA JWS size is a few hundred bytes. */
export const JWS_SEGMENT_MAX_BYTES = 4096;

const C_TOOL_BY_NAME = 0x01;
const C_HAS_DEADLINE = 0x02;
const C_HAS_QUORUM = 0x04;
const C_HAS_TOKEN = 0x08;
const APPROVER_SHORT = 0;
const APPROVER_ID = 1;
const STATUS_CODES: readonly LoraToolStatus[] = ['ok', 'error', 'denied'];

function unsupported(message: string): ProtocolError {
  return new ProtocolError('LORA_VALUE_UNSUPPORTED', message);
}

function malformed(message: string, offset: number): ProtocolError {
  return new ProtocolError('LORA_PAYLOAD_MALFORMED', message, { details: { offset } });
}

function writeCallId(w: ByteWriter, callId: string): void {
  if (typeof callId !== 'string' || callId.length < 1 || callId.length > CALL_ID_MAX_LENGTH) {
    throw unsupported(`callId must be 1..${CALL_ID_MAX_LENGTH} characters`);
  }
  writeCompactString(w, callId);
}

function readCallId(r: ByteReader): string {
  const at = r.offset;
  const callId = readCompactString(r, 'callId');
  if (callId.length < 1 || callId.length > CALL_ID_MAX_LENGTH) throw malformed('callId length out of range', at);
  return callId;
}

/** The three base64url segments of a JWS compact serialization travel decoded (§4.6.3). */
function writeJws(w: ByteWriter, token: string): void {
  const parts = typeof token === 'string' ? token.split('.') : [];
  if (parts.length !== 3) throw unsupported('token must be a JWS compact serialization');
  for (const part of parts) {
    let b: Uint8Array;
    try {
      b = fromBase64Url(part, 'JWS segment');
    } catch (cause) {
      throw new ProtocolError('LORA_VALUE_UNSUPPORTED', 'token segment is not canonical base64url', { cause });
    }
    if (b.length < 1 || b.length > JWS_SEGMENT_MAX_BYTES) throw unsupported('token segment length out of range');
    w.varint(b.length).bytes(b);
  }
}

function readJws(r: ByteReader): string {
  const parts: string[] = [];
  for (let i = 0; i < 3; i++) {
    const at = r.offset;
    const n = r.varint();
    if (n < 1 || n > JWS_SEGMENT_MAX_BYTES) throw malformed('token segment length out of range', at);
    parts.push(toBase64Url(r.bytes(n)));
  }
  return parts.join('.');
}

function writeToolName(w: ByteWriter, name: string): void {
  if (typeof name !== 'string' || LONE_SURROGATE.test(name))
    throw unsupported('tool name must be a well-formed string');
  const b = utf8(name);
  if (b.length < 1 || b.length > TOOL_NAME_MAX_BYTES)
    throw unsupported(`tool name must be 1..${TOOL_NAME_MAX_BYTES} bytes`);
  w.varint(b.length).bytes(b);
}

function writeQuorum(w: ByteWriter, q: LoraQuorum): void {
  writeCompactString(w, q.requestId);
  writeCompactString(w, q.nonce);
  w.varint(q.expMs);
  const n = q.approvals?.length;
  if (!Number.isInteger(n) || n < 1 || n > QUORUM_MAX_APPROVALS) {
    throw unsupported(`a quorum carries 1..${QUORUM_MAX_APPROVALS} approvals`);
  }
  w.u8(n);
  for (const a of q.approvals) {
    if ('shortId' in a.approver) {
      if (!(a.approver.shortId instanceof Uint8Array) || a.approver.shortId.length !== APPROVER_SHORT_ID_BYTES) {
        throw unsupported('approver short id must be 4 bytes');
      }
      w.u8(APPROVER_SHORT).bytes(a.approver.shortId);
    } else {
      w.u8(APPROVER_ID);
      writeCompactString(w, a.approver.id);
    }
    if (!(a.signature instanceof Uint8Array) || a.signature.length !== APPROVAL_SIGNATURE_BYTES) {
      throw unsupported('approval signature must be 64 bytes');
    }
    w.bytes(a.signature);
  }
}

function readQuorum(r: ByteReader): LoraQuorum {
  const requestId = readCompactString(r, 'quorum requestId');
  const nonce = readCompactString(r, 'quorum nonce');
  const expMs = r.varint();
  const n = r.u8();
  if (n < 1 || n > QUORUM_MAX_APPROVALS) throw malformed(`quorum with ${n} approvals`, r.offset - 1);
  const approvals: LoraApproval[] = [];
  for (let i = 0; i < n; i++) {
    const at = r.offset;
    const kind = r.u8();
    let approver: LoraApproval['approver'];
    if (kind === APPROVER_SHORT) approver = { shortId: r.bytes(APPROVER_SHORT_ID_BYTES).slice() };
    else if (kind === APPROVER_ID) approver = { id: readCompactString(r, 'approver id') };
    else throw malformed(`unknown approver form ${kind}`, at);
    approvals.push({ approver, signature: r.bytes(APPROVAL_SIGNATURE_BYTES).slice() });
  }
  return { requestId, nonce, expMs, approvals };
}

/** Encodes a TOOL_CALL payload. Throws LORA_VALUE_UNSUPPORTED for out-of-range fields or non-JSON arguments. */
export function encodeToolCall(call: LoraToolCall): Uint8Array {
  const w = new ByteWriter();
  writeCallId(w, call.callId);
  const byName = 'name' in call.tool;
  w.u8(
    (byName ? C_TOOL_BY_NAME : 0) |
      (call.deadlineMs !== undefined ? C_HAS_DEADLINE : 0) |
      (call.quorum !== undefined ? C_HAS_QUORUM : 0) |
      (call.token !== undefined ? C_HAS_TOKEN : 0),
  );
  if ('name' in call.tool) writeToolName(w, call.tool.name);
  else {
    const i = call.tool.index;
    if (!Number.isInteger(i) || i < 0 || i > TOOL_INDEX_MAX) throw unsupported('tool index must be 0..65535');
    w.varint(i);
  }
  if (call.deadlineMs !== undefined) w.varint(call.deadlineMs);
  if (call.token !== undefined) writeJws(w, call.token);
  if (call.quorum !== undefined) writeQuorum(w, call.quorum);
  writeCbor(w, call.args);
  return w.finish();
}

/** Decodes a TOOL_CALL payload. Throws LORA_PAYLOAD_MALFORMED, LORA_NON_CANONICAL, LORA_VALUE_UNSUPPORTED. */
export function decodeToolCall(payload: Uint8Array): LoraToolCall {
  const r = new ByteReader(payload);
  const callId = readCallId(r);
  const flagsAt = r.offset;
  const flags = r.u8();
  if (flags & ~(C_TOOL_BY_NAME | C_HAS_DEADLINE | C_HAS_QUORUM | C_HAS_TOKEN)) {
    throw malformed('tool.call: reserved flag bits set', flagsAt);
  }
  let tool: LoraToolCall['tool'];
  if (flags & C_TOOL_BY_NAME) {
    const at = r.offset;
    const n = r.varint();
    if (n < 1 || n > TOOL_NAME_MAX_BYTES) throw malformed('tool.call: tool name length out of range', at);
    try {
      tool = { name: fromUtf8(r.bytes(n), 'tool name') };
    } catch (cause) {
      if (cause instanceof ProtocolError && cause.code === 'BAD_ENCODING') {
        throw new ProtocolError('LORA_PAYLOAD_MALFORMED', 'tool.call: tool name is not UTF-8', { cause });
      }
      throw cause;
    }
  } else {
    const at = r.offset;
    const index = r.varint();
    if (index > TOOL_INDEX_MAX) throw malformed('tool.call: tool index out of range', at);
    tool = { index };
  }
  const deadlineMs = flags & C_HAS_DEADLINE ? r.varint() : undefined;
  const token = flags & C_HAS_TOKEN ? readJws(r) : undefined;
  const quorum = flags & C_HAS_QUORUM ? readQuorum(r) : undefined;
  const args = readCbor(r);
  r.end('tool.call arguments');
  return {
    callId,
    tool,
    ...(deadlineMs !== undefined ? { deadlineMs } : {}),
    ...(token !== undefined ? { token } : {}),
    ...(quorum !== undefined ? { quorum } : {}),
    args,
  };
}

/** Encodes a TOOL_RESULT payload. */
export function encodeToolResult(result: LoraToolResult): Uint8Array {
  const status = STATUS_CODES.indexOf(result.status);
  if (status < 0) throw unsupported(`unknown tool status ${String(result.status)}`);
  const w = new ByteWriter();
  writeCallId(w, result.callId);
  w.u8(status).varint(result.durationMs);
  writeCbor(w, result.value);
  return w.finish();
}

/** Decodes a TOOL_RESULT payload. Throws LORA_PAYLOAD_MALFORMED, LORA_NON_CANONICAL, LORA_VALUE_UNSUPPORTED. */
export function decodeToolResult(payload: Uint8Array): LoraToolResult {
  const r = new ByteReader(payload);
  const callId = readCallId(r);
  const at = r.offset;
  const status = STATUS_CODES[r.u8()];
  if (status === undefined) throw malformed('tool.result: unknown status', at);
  const durationMs = r.varint();
  const value = readCbor(r);
  r.end('tool.result value');
  return { callId, status, durationMs, value };
}
