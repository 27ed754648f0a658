// Typed errors of the gateway: one class, a string union of stable codes grouped by concern.
// The CLI maps them to exit codes (cli/exit.ts); the daemon logs them with their code.

import { OutpostError } from '../protocol/errors.ts';

export type GatewayErrorCode =
  // configuration and identity (config.ts, identity.ts)
  | 'CONFIG_INVALID'
  | 'CONFIG_NOT_FOUND'
  | 'GATEWAY_NOT_ENROLLED'
  // stored records and queues (frame-record.ts, uplink-queue.ts, downlink-queue.ts)
  | 'RECORD_MALFORMED'
  | 'DOWNLINK_INVALID'
  // upstream session (upstream.ts)
  | 'UPSTREAM_HANDSHAKE_FAILED'
  | 'UPSTREAM_PROTOCOL'
  | 'UPSTREAM_CLOSED'
  // the running daemon and its local API (gateway.ts, local-api.ts)
  | 'GATEWAY_CLOSED'
  | 'DAEMON_DOWN'
  | 'API_BAD_REQUEST';

/** Something the gateway refused or could not do. `code` is stable. */
export class GatewayError extends OutpostError<GatewayErrorCode> {
  constructor(
    code: GatewayErrorCode,
    message: string,
    options: { cause?: unknown; details?: Record<string, unknown> } = {},
  ) {
    super(code, message, options);
    this.name = 'GatewayError';
  }
}
