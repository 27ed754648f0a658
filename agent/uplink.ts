// The seam to upstream: an Uplink carries leased outbox units to a receiver and reports what it
// acknowledged. The WSS and LoRa links implement it; an agent without one is off-grid and keeps queueing.
// The pump (uplink-pump.ts) owns leasing, acking and releasing, so every uplink gets that part right.

import type { CapabilityManifest } from '../protocol/manifest.ts';
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
  /** Optional: receives the agent's identity, manifest and gate once they exist, before start(). */
  bind?(binding: UplinkBinding): void;
  /** Optional: a JSON view of the link for status (state, peer, last error …). */
  detail?(): Readonly<Record<string, unknown>>;
}

/** What the daemon hands a link that talks to a control plane. */
export interface UplinkBinding {
  readonly identity: { readonly did: string; readonly seed: Uint8Array };
  readonly manifest: CapabilityManifest;
  readonly manifestHash: string;
  /** Runs an upstream call through the agent's safety gate; rejects with OutpostError (GATE_DENIED, TOOL_*, …). */
  callTool(call: { tool: string; args: Record<string, unknown>; token: string; quorum?: string }): Promise<{
    readonly result: unknown;
  }>;
  /** Signs a checkpoint of the agent's audit chain now (store/audit.ts), for the control plane to anchor. */
  auditCheckpoint?(): { readonly body: object; readonly signature: Uint8Array } | undefined;
}
