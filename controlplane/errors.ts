// Typed errors of the control plane, and their one mapping to HTTP statuses (docs/controlplane.md §Errors).
// Protocol errors from protocol/ keep their own codes; `httpStatusFor` maps those too.

import { OutpostError } from '../protocol/errors.ts';

export type ControlPlaneErrorCode =
  // requests
  | 'BAD_REQUEST'
  | 'BODY_TOO_LARGE'
  | 'UNSUPPORTED_MEDIA_TYPE'
  | 'NOT_FOUND'
  | 'METHOD_NOT_ALLOWED'
  // authentication and authorisation
  | 'UNAUTHENTICATED'
  | 'LOCKED_OUT'
  | 'RATE_LIMITED'
  | 'FORBIDDEN'
  | 'TOKEN_REVOKED'
  | 'CHALLENGE_INVALID'
  // tenants
  | 'TENANT_EXISTS'
  | 'TENANT_UNKNOWN'
  // enrollment
  | 'ENROLL_TOKEN_UNKNOWN'
  | 'ENROLL_TOKEN_USED'
  | 'ENROLL_TOKEN_EXPIRED'
  | 'PROOF_INVALID'
  | 'MANIFEST_REFUSED'
  | 'X25519_KEY_INVALID'
  | 'DEVICE_NAME_TAKEN'
  | 'DEVICE_REVOKED'
  | 'DEVICE_OTHER_TENANT'
  | 'DEVICE_UNKNOWN'
  // manifests and calls
  | 'NO_PENDING_MANIFEST'
  | 'MANIFEST_HASH_MISMATCH'
  | 'CAPABILITIES_PENDING'
  | 'ARGS_INVALID'
  | 'DEVICE_OFFLINE'
  | 'DEVICE_TIMEOUT'
  | 'DEVICE_BUSY'
  | 'SESSION_CLOSED'
  | 'TOOL_UNKNOWN'
  // approvals and policy
  | 'POLICY_MISSING'
  | 'POLICY_INVALID'
  | 'APPROVAL_UNKNOWN'
  | 'APPROVAL_EXPIRED'
  | 'APPROVAL_CLOSED'
  | 'APPROVAL_INVALID'
  | 'ANCHOR_CONFLICT'
  // keys, state, configuration
  | 'KEYS_UNAVAILABLE'
  | 'CONFIG_INVALID'
  | 'STATE_DIR_EXISTS'
  | 'STATE_DIR_MISSING'
  | 'UNREACHABLE'
  | 'INTERNAL';

/** A control-plane failure with a stable code; `details` never holds secrets. */
export class ControlPlaneError extends OutpostError<ControlPlaneErrorCode> {
  constructor(
    code: ControlPlaneErrorCode,
    message: string,
    options: { cause?: unknown; details?: Record<string, unknown> } = {},
  ) {
    super(code, message, options);
    this.name = 'ControlPlaneError';
  }
}

/** True when `e` is a ControlPlaneError (optionally with one of `codes`). */
export function isControlPlaneError(e: unknown, ...codes: ControlPlaneErrorCode[]): e is ControlPlaneError {
  return e instanceof ControlPlaneError && (codes.length === 0 || codes.includes(e.code));
}

const STATUS: Readonly<Record<ControlPlaneErrorCode, number>> = Object.freeze({
  BAD_REQUEST: 400,
  BODY_TOO_LARGE: 413,
  UNSUPPORTED_MEDIA_TYPE: 415,
  NOT_FOUND: 404,
  METHOD_NOT_ALLOWED: 405,
  UNAUTHENTICATED: 401,
  LOCKED_OUT: 429,
  RATE_LIMITED: 429,
  FORBIDDEN: 403,
  TOKEN_REVOKED: 401,
  CHALLENGE_INVALID: 401,
  TENANT_EXISTS: 409,
  TENANT_UNKNOWN: 404,
  ENROLL_TOKEN_UNKNOWN: 401,
  ENROLL_TOKEN_USED: 409,
  ENROLL_TOKEN_EXPIRED: 410,
  PROOF_INVALID: 401,
  MANIFEST_REFUSED: 422,
  X25519_KEY_INVALID: 422,
  DEVICE_NAME_TAKEN: 409,
  DEVICE_REVOKED: 403,
  DEVICE_OTHER_TENANT: 409,
  DEVICE_UNKNOWN: 404,
  NO_PENDING_MANIFEST: 409,
  MANIFEST_HASH_MISMATCH: 409,
  CAPABILITIES_PENDING: 409,
  ARGS_INVALID: 422,
  DEVICE_OFFLINE: 503,
  DEVICE_TIMEOUT: 504,
  DEVICE_BUSY: 429,
  SESSION_CLOSED: 503,
  TOOL_UNKNOWN: 404,
  POLICY_MISSING: 409,
  POLICY_INVALID: 422,
  APPROVAL_UNKNOWN: 404,
  APPROVAL_EXPIRED: 410,
  APPROVAL_CLOSED: 409,
  APPROVAL_INVALID: 422,
  ANCHOR_CONFLICT: 409,
  KEYS_UNAVAILABLE: 503,
  CONFIG_INVALID: 500,
  STATE_DIR_EXISTS: 500,
  STATE_DIR_MISSING: 500,
  UNREACHABLE: 502,
  INTERNAL: 500,
});

/**
 * The HTTP status of an error: control-plane codes by the table above; protocol codes (a token, a body, a manifest
 * that failed a protocol/ check) are 401 for token problems and 400 otherwise; anything else 500.
 */
export function httpStatusFor(e: unknown): number {
  if (e instanceof ControlPlaneError) return STATUS[e.code];
  if (e instanceof OutpostError) {
    if (e.code.startsWith('TOKEN_') || e.code.startsWith('JWKS_')) return 401;
    if (e.code.startsWith('STORE_')) return e.code === 'STORE_DISK_FULL' || e.code === 'STORE_BUSY' ? 503 : 500;
    return 400;
  }
  return 500;
}

/** The JSON error body every HTTP endpoint returns: `{ error: { code, message, details? } }`. */
export function errorBody(e: unknown): { error: { code: string; message: string; details?: Record<string, unknown> } } {
  if (e instanceof OutpostError) {
    const status = httpStatusFor(e);
    // Internal failures say nothing about their cause to the caller; the log has it.
    if (status >= 500 && !(e instanceof ControlPlaneError && status !== 500)) {
      return { error: { code: 'INTERNAL', message: 'internal error' } };
    }
    const details = Object.keys(e.details).length > 0 ? { details: { ...e.details } } : {};
    return { error: { code: e.code, message: e.message, ...details } };
  }
  return { error: { code: 'INTERNAL', message: 'internal error' } };
}
