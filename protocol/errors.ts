// Typed errors: every failure that crosses a boundary carries a stable, documented code.
// Each part defines its own code union and subclass; edges (HTTP, CLI exit codes, WSS
// error envelopes) map codes to their own vocabulary in one place each.

/** Base of every error Outpost throws on purpose. `code` is stable and documented. */
export class OutpostError<C extends string = string> extends Error {
  readonly code: C;
  /** Machine-readable context (never secrets): offsets, limits, field paths. */
  readonly details: Readonly<Record<string, unknown>>;

  constructor(code: C, message: string, options: { cause?: unknown; details?: Record<string, unknown> } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'OutpostError';
    this.code = code;
    this.details = Object.freeze({ ...(options.details ?? {}) });
  }

  /** A JSON-safe view for logs, `--json` output and error envelopes. */
  toJSON(): { name: string; code: C; message: string; details: Record<string, unknown> } {
    return { name: this.name, code: this.code, message: this.message, details: { ...this.details } };
  }
}

/** True when `e` is an OutpostError (optionally with one of `codes`). */
export function isOutpostError(e: unknown, ...codes: string[]): e is OutpostError {
  return e instanceof OutpostError && (codes.length === 0 || codes.includes(e.code));
}

/**
 * Codes of protocol/ decoders and verifiers. Each contract's codes are listed in its spec in
 * docs/protocol/ (section "Error codes"); keep each contract's block together.
 */
export type ProtocolErrorCode =
  // bytes and canonical JSON (docs/protocol/canonical-signing.md)
  | 'BAD_ENCODING'
  | 'CANON_UNSUPPORTED_VALUE'
  | 'CANON_NON_FINITE_NUMBER'
  | 'CANON_LONE_SURROGATE'
  | 'CANON_TOO_DEEP'
  | 'JSON_TOO_LARGE'
  | 'JSON_MALFORMED'
  // signatures and identities
  | 'SIG_BAD_CONTEXT'
  | 'SIG_BAD_KEY'
  | 'SIG_BAD_LENGTH'
  | 'SIG_INVALID'
  | 'DID_MALFORMED'
  | 'DID_UNSUPPORTED'
  // CapabilityManifest, tool-schema subset, JSON Pointer, manifest text positions (docs/protocol/manifest.md)
  | 'MANIFEST_INVALID'
  | 'MANIFEST_VERSION_UNSUPPORTED'
  | 'SCHEMA_UNSUPPORTED'
  | 'SCHEMA_VIOLATION'
  | 'UNDO_UNRESOLVED'
  | 'JSON_POINTER_MALFORMED'
  | 'JSON_DUPLICATE_MEMBER'
  // MCP projection (docs/protocol/mcp-projection.md)
  | 'MCP_NAME_INVALID'
  // runtime tokens, JWKS, scopes and roles (docs/protocol/tokens.md §9)
  | 'TENANT_DID_MALFORMED'
  | 'TOKEN_TOO_LARGE'
  | 'TOKEN_MALFORMED'
  | 'TOKEN_BAD_HEADER'
  | 'TOKEN_UNKNOWN_KEY'
  | 'TOKEN_KEY_RETIRED'
  | 'TOKEN_HYBRID_REQUIRED'
  | 'TOKEN_BAD_SIGNATURE'
  | 'TOKEN_BAD_CLAIMS'
  | 'TOKEN_WRONG_ISSUER'
  | 'TOKEN_WRONG_AUDIENCE'
  | 'TOKEN_WRONG_TENANT'
  | 'TOKEN_NOT_YET_VALID'
  | 'TOKEN_EXPIRED'
  | 'TOKEN_LIFETIME_TOO_LONG'
  | 'JWKS_MALFORMED'
  | 'JWKS_UNAVAILABLE'
  | 'JWKS_BAD_POLICY'
  | 'SCOPE_MALFORMED'
  // quorum tokens for physical actuation (docs/protocol/quorum.md §8)
  | 'QUORUM_MALFORMED'
  | 'QUORUM_POLICY_INVALID'
  | 'QUORUM_WRONG_TENANT'
  | 'QUORUM_WRONG_DEVICE'
  | 'QUORUM_WRONG_TOOL'
  | 'QUORUM_ARGS_MISMATCH'
  | 'QUORUM_EXPIRED'
  | 'QUORUM_EXPIRY_TOO_FAR'
  | 'QUORUM_DUPLICATE_APPROVER'
  | 'QUORUM_UNKNOWN_APPROVER'
  | 'QUORUM_BAD_SIGNATURE'
  | 'QUORUM_TOO_FEW'
  | 'QUORUM_POLICY_UNAUTHORIZED'
  | 'QUORUM_POLICY_STALE'
  // telemetry records and signed units (docs/protocol/telemetry.md §6)
  | 'TELEMETRY_TOO_LARGE'
  | 'TELEMETRY_MALFORMED'
  | 'TELEMETRY_SEQ_GAP'
  | 'TELEMETRY_WRONG_DEVICE'
  | 'TELEMETRY_BAD_SIGNATURE'
  // WSS envelope (docs/protocol/envelope.md §9)
  | 'ENVELOPE_TOO_LARGE'
  | 'ENVELOPE_MALFORMED'
  | 'ENVELOPE_BAD_VERSION'
  | 'ENVELOPE_UNKNOWN_TYPE'
  | 'ENVELOPE_UNKNOWN_FIELD'
  | 'ENVELOPE_SIGNATURE_REQUIRED'
  | 'ENVELOPE_UNEXPECTED_SIGNATURE'
  | 'ENVELOPE_BAD_SIGNATURE'
  | 'ENVELOPE_WRONG_TENANT'
  | 'ENVELOPE_WRONG_SOURCE'
  // LoRa frames (docs/protocol/lora-frames.md §9)
  | 'LORA_FRAME_TOO_SHORT'
  | 'LORA_FRAME_TOO_LONG'
  | 'LORA_BAD_VERSION'
  | 'LORA_BAD_TYPE'
  | 'LORA_BAD_FLAGS'
  | 'LORA_BAD_FRAGMENT'
  | 'LORA_WRONG_DIRECTION'
  | 'LORA_SHORT_ID_MISMATCH'
  | 'LORA_AUTH_FAILED'
  | 'LORA_REPLAY'
  | 'LORA_SEQ_TOO_OLD'
  | 'LORA_SEQ_OUT_OF_RANGE'
  | 'LORA_MESSAGE_TOO_LARGE'
  | 'LORA_PAYLOAD_MALFORMED'
  | 'LORA_NON_CANONICAL'
  | 'LORA_VALUE_UNSUPPORTED'
  | 'LORA_KEY_INVALID'
  | 'LORA_ENROLL_UNKNOWN_TOKEN'
  | 'LORA_ENROLL_INVALID';

/** A contract was violated by bytes from outside (or by a caller). Never thrown for internal bugs. */
export class ProtocolError extends OutpostError<ProtocolErrorCode> {
  constructor(
    code: ProtocolErrorCode,
    message: string,
    options: { cause?: unknown; details?: Record<string, unknown> } = {},
  ) {
    super(code, message, options);
    this.name = 'ProtocolError';
  }
}
