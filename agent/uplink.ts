// The seam to upstream: an Uplink carries leased outbox units to a receiver and reports what it
// acknowledged. The WSS and LoRa links implement it; an agent without one is off-grid and keeps queueing.
// The pump (uplink-pump.ts) owns leasing, acking and releasing, so every uplink gets that part right.

import type { Lease, SeqRange } from '../store/outbox.ts';

export type UplinkState = 'disconnected' | 'connected';

export interface Uplink {
  /** A short name for logs and status (`wss`, `lora0`). */
  readonly name: string;
  state(): UplinkState;
  /** Calls `listener` on every state change; returns a function that removes it. */
  onStateChange(listener: (state: UplinkState) => void): () => void;
  /**
   * Sends the units of `lease` (payloads are encoded, signed telemetry units) and resolves with the seq
   * ranges the receiver acknowledged — possibly fewer than were sent. Rejects when the link fails; the
   * pump then returns the lease to the queue. Must not hold on to the lease after settling.
   */
  deliver(lease: Lease): Promise<readonly SeqRange[]>;
  start(): Promise<void>;
  stop(): Promise<void>;
}
