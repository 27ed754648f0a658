// Errors to HTTP statuses, in one place for the local API and the MCP HTTP endpoint.

import { isOutpostError } from '../../protocol/errors.ts';

const BY_CODE: Readonly<Record<string, number>> = {
  REQUEST_MALFORMED: 400,
  TOOL_ARGS_INVALID: 400,
  INGEST_INVALID: 400,
  PERMISSION_DENIED: 403,
  GATE_DENIED: 403,
  ROUTE_NOT_FOUND: 404,
  TOOL_NOT_FOUND: 404,
  STREAM_NOT_FOUND: 404,
  CALL_NOT_FOUND: 404,
  METHOD_NOT_ALLOWED: 405,
  REQUEST_TIMEOUT: 408,
  UNDO_ALREADY_DONE: 409,
  UNDO_UNAVAILABLE: 409,
  REQUEST_TOO_LARGE: 413,
  UNSUPPORTED_MEDIA_TYPE: 415,
  TOOL_OUTPUT_INVALID: 502,
  TOOL_OUTPUT_TOO_LARGE: 502,
  TOOL_EXIT_NONZERO: 502,
  TOOL_SPAWN_FAILED: 502,
  TOOL_ABORTED: 503,
  SHUTTING_DOWN: 503,
  TOOL_TIMEOUT: 504,
  DISK_FULL: 507,
  STORE_DISK_FULL: 507,
  STORE_IO: 503,
  STORE_BUSY: 503,
};

export interface ErrorBody {
  readonly error: { readonly code: string; readonly message: string; readonly details: Record<string, unknown> };
}

/** The status and JSON body for `err`. Untyped errors are 500 with a generic message (details stay in the log). */
export function errorResponse(err: unknown): { status: number; body: ErrorBody } {
  if (isOutpostError(err)) {
    const status = BY_CODE[err.code] ?? (/^(CONFIG|TRUST)/.test(err.code) ? 500 : 422);
    return { status, body: { error: { code: err.code, message: err.message, details: { ...err.details } } } };
  }
  return {
    status: 500,
    body: { error: { code: 'INTERNAL', message: 'internal error (see the agent log)', details: {} } },
  };
}
