// The gateway's link state, computed from facts rather than pushed through a transition table: what the
// backhaul is doing, whether to forward, ping or reconnect, and how the radio side stands. Pure; the
// daemon gathers the facts, calls linkState() on every change and on a tick, and logs when it changes.

import type { RadioStatus } from '../firmware-bridge/radio.ts';

export interface LinkFacts {
  /** The gateway holds an enrollment: upstream URL, tenant and a runtime token. */
  readonly enrolled: boolean;
  /** The runtime token has not expired by the gateway's clock (or its expiry is unknown). */
  readonly tokenUsable: boolean;
  /** A WebSocket to the control plane is open. */
  readonly socketOpen: boolean;
  /** hello.ack arrived on that socket. */
  readonly sessionEstablished: boolean;
  /** Gateway ms since the last envelope arrived on the socket, or since it opened; null when closed. */
  readonly receiveSilenceMs: number | null;
  /** Gateway ms since the gateway last sent anything on the socket; null when closed. */
  readonly sendSilenceMs: number | null;
  /** Heartbeat interval in force: hello.ack's, else the configured one. */
  readonly heartbeatMs: number;
  /** Deadline for hello.ack after the socket opened. */
  readonly handshakeTimeoutMs: number;
  /** Every configured radio's driver status. */
  readonly radios: readonly { readonly name: string; readonly state: RadioStatus['state'] }[];
}

export type BackhaulState = 'unenrolled' | 'unauthorised' | 'down' | 'handshaking' | 'up' | 'stale';
export type RadioSide = 'none-configured' | 'down' | 'partial' | 'ready';
export type LinkSummary = 'ok' | 'degraded' | 'store-and-forward' | 'radio-down' | 'isolated' | 'unenrolled';

export interface LinkState {
  readonly backhaul: BackhaulState;
  /** Drain stored uplink upstream and accept downlink now. */
  readonly forward: boolean;
  /** Send a ping now: nothing was sent for a heartbeat interval. */
  readonly ping: boolean;
  /** Close the socket and reconnect with backoff: silent for 3 heartbeats, or the handshake is overdue. */
  readonly reconnect: boolean;
  /** Try to open a socket (when none is open). */
  readonly connect: boolean;
  readonly radios: RadioSide;
  /** At least one radio can transmit now. */
  readonly transmit: boolean;
  readonly summary: LinkSummary;
}

/** Silence after which a session is considered dead (envelope.md §5.5: 3 × heartbeat). */
export const DEAD_SESSION_HEARTBEATS = 3;

/** Computes the link state from `facts`. Pure and total. */
export function linkState(facts: LinkFacts): LinkState {
  const ready = facts.radios.filter((r) => r.state === 'ready').length;
  const radios: RadioSide =
    facts.radios.length === 0
      ? 'none-configured'
      : ready === 0
        ? 'down'
        : ready < facts.radios.length
          ? 'partial'
          : 'ready';
  const transmit = ready > 0;

  let backhaul: BackhaulState;
  let reconnect = false;
  if (!facts.enrolled) backhaul = 'unenrolled';
  else if (!facts.tokenUsable) {
    backhaul = 'unauthorised';
    reconnect = facts.socketOpen;
  } else if (!facts.socketOpen) backhaul = 'down';
  else if (!facts.sessionEstablished) {
    backhaul = 'handshaking';
    reconnect = (facts.receiveSilenceMs ?? 0) >= facts.handshakeTimeoutMs;
  } else if ((facts.receiveSilenceMs ?? 0) >= DEAD_SESSION_HEARTBEATS * facts.heartbeatMs) {
    backhaul = 'stale';
    reconnect = true;
  } else backhaul = 'up';

  const forward = backhaul === 'up';
  const ping = backhaul === 'up' && (facts.sendSilenceMs ?? 0) >= facts.heartbeatMs;
  const connect = facts.enrolled && facts.tokenUsable && !facts.socketOpen;

  let summary: LinkSummary;
  if (backhaul === 'unenrolled') summary = 'unenrolled';
  else if (forward && radios === 'ready') summary = 'ok';
  else if (forward && radios === 'partial') summary = 'degraded';
  else if (forward) summary = 'radio-down';
  else if (transmit) summary = 'store-and-forward';
  else summary = 'isolated';

  return { backhaul, forward, ping, reconnect, connect, radios, transmit, summary };
}
