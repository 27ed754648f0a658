// The upstream link's state, computed from facts (never pushed through a transition table): enrollment, token,
// reachability, handshake and the last pong decide it. Pure and table-tested; the link logs, exports and shows it.

export interface LinkFacts {
  /** An enrollment record exists in the state directory. */
  readonly enrolled: boolean;
  /** The control plane said this device is revoked. */
  readonly revoked: boolean;
  /** The link was asked to stop. */
  readonly stopped: boolean;
  /** The runtime token's expiry, by the control plane's clock as far as the link knows it (ms), or null. */
  readonly tokenExpiresAtMs: number | null;
  /** The control plane's time now, as estimated from the last handshake (ms). */
  readonly nowMs: number;
  /** A WebSocket to the control plane is open. */
  readonly socketOpen: boolean;
  /** hello.ack was received on the open socket. */
  readonly handshakeDone: boolean;
  /** ms since anything was last received on the open socket (null when none is open). */
  readonly silentForMs: number | null;
  /** Heartbeat interval and pong timeout (ms). */
  readonly heartbeatMs: number;
  readonly timeoutMs: number;
  /** A reconnect is scheduled (the link waits out a backoff delay). */
  readonly backingOff: boolean;
}

export type LinkState =
  | 'not_enrolled'
  | 'revoked'
  | 'stopped'
  | 'token_expired'
  | 'backoff'
  | 'connecting'
  | 'handshaking'
  | 'online'
  | 'stale';

/** What the facts mean. `stale`: open and authenticated, but silent past one interval plus the pong timeout. */
export function computeLinkState(f: LinkFacts): LinkState {
  if (f.stopped) return 'stopped';
  if (!f.enrolled) return 'not_enrolled';
  if (f.revoked) return 'revoked';
  if (f.socketOpen && f.handshakeDone) {
    return f.silentForMs !== null && f.silentForMs > f.heartbeatMs + f.timeoutMs ? 'stale' : 'online';
  }
  if (f.socketOpen) return 'handshaking';
  if (f.tokenExpiresAtMs !== null && f.nowMs >= f.tokenExpiresAtMs) return 'token_expired';
  return f.backingOff ? 'backoff' : 'connecting';
}

/** The Uplink seam's two-valued view of a link state. */
export function isConnected(state: LinkState): boolean {
  return state === 'online';
}

/** When to refresh the runtime token: at 80 % of its lifetime, at the latest a minute before it expires. Pure. */
export function tokenRefreshAtMs(issuedAtMs: number, expiresAtMs: number): number {
  const lifetime = Math.max(0, expiresAtMs - issuedAtMs);
  return Math.min(issuedAtMs + Math.floor(lifetime * 0.8), expiresAtMs - 60_000);
}
