// Typed errors of the device agent. Codes are stable and listed in docs/agent.md; the local API maps them
// to HTTP statuses in one place (local-api/http-status.ts) and the CLI maps them to exit codes (cli/exit.ts).

import { OutpostError } from '../protocol/errors.ts';

export type AgentErrorCode =
  // configuration and trust bundle (files an operator writes)
  | 'CONFIG_NOT_FOUND'
  | 'CONFIG_SYNTAX'
  | 'CONFIG_INVALID'
  | 'CONFIG_TRUST_INVALID'
  // state directory, identity and storage
  | 'STATE_DIR_UNUSABLE'
  | 'ALREADY_RUNNING'
  | 'IDENTITY_UNUSABLE'
  | 'DISK_FULL'
  | 'IO_STORE_FAILED'
  // tools
  | 'TOOL_NOT_FOUND'
  | 'TOOL_ARGS_INVALID'
  | 'TOOL_SPAWN_FAILED'
  | 'TOOL_TIMEOUT'
  | 'TOOL_EXIT_NONZERO'
  | 'TOOL_OUTPUT_TOO_LARGE'
  | 'TOOL_OUTPUT_INVALID'
  | 'TOOL_ABORTED'
  | 'GATE_DENIED'
  | 'CALL_NOT_FOUND'
  | 'UNDO_UNAVAILABLE'
  | 'UNDO_ALREADY_DONE'
  // telemetry
  | 'STREAM_NOT_FOUND'
  | 'INGEST_INVALID'
  // local API requests
  | 'REQUEST_MALFORMED'
  | 'REQUEST_TOO_LARGE'
  | 'REQUEST_TIMEOUT'
  | 'ROUTE_NOT_FOUND'
  | 'METHOD_NOT_ALLOWED'
  | 'UNSUPPORTED_MEDIA_TYPE'
  // the CLI's view of the daemon
  | 'DAEMON_DOWN'
  | 'PERMISSION_DENIED'
  | 'DAEMON_BAD_RESPONSE'
  | 'SHUTTING_DOWN';

export class AgentError extends OutpostError<AgentErrorCode> {
  constructor(
    code: AgentErrorCode,
    message: string,
    options: { cause?: unknown; details?: Record<string, unknown> } = {},
  ) {
    super(code, message, options);
    this.name = 'AgentError';
  }
}
