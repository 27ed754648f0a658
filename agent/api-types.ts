// The local API's response shapes: what actions return, what the client and the CLI read. JSON only.

import type { ToolSpec } from '../protocol/manifest.ts';
import type { GateReason } from './gate.ts';
import type { AgentStatus } from './status.ts';

export interface IdentityView {
  readonly did: string;
  /** Hex of the first 4 bytes of SHA-256(public key): the device's name on the radio. */
  readonly short_id: string;
  readonly public_key_b64url: string;
}

/** A manifest tool as the local API lists it: its manifest entry, and whether it runs in-process. */
export type ToolView = ToolSpec & { readonly kind: 'builtin' | 'exec' };

export interface ToolsView {
  readonly manifest_hash: string;
  readonly tools: readonly ToolView[];
}

export interface ToolCallResponse {
  readonly call_id: string;
  readonly tool: string;
  readonly safety_class: ToolSpec['safety_class'];
  readonly decision: { readonly reason: GateReason; readonly principal: string };
  readonly result: unknown;
  readonly duration_ms: number;
  /** True when `outpost tools undo CALL_ID` can reverse this call. */
  readonly undoable: boolean;
  /** Set on an undo: the call it reversed. */
  readonly undo_of?: string;
}

export interface IngestResponse {
  /** Outbox sequence numbers of the accepted records, in request order. Acknowledged = durable. */
  readonly seqs: readonly number[];
}

export interface TelemetryRecordView {
  readonly seq: number;
  readonly stream: string;
  readonly ts_ms: number;
  readonly value: unknown;
}

export interface TailResponse {
  readonly records: readonly TelemetryRecordView[];
  readonly last_seq: number;
}

export interface QueueStatsView {
  readonly depth: number;
  readonly bytes: number;
  readonly max_bytes: number;
  readonly max_records: number;
  readonly oldest_age_s: number | null;
  /** Units dropped since the queue was created, by reason (only reasons that happened). */
  readonly dropped: Readonly<Record<string, number>>;
  readonly by_stream: Readonly<Record<string, { readonly depth: number; readonly bytes: number }>>;
}

export interface StatusView {
  readonly version: string;
  readonly name: string;
  readonly did: string;
  readonly status: AgentStatus;
  readonly started_at_ms: number;
  readonly uptime_s: number;
  readonly manifest_hash: string;
  readonly manifest_changed_at_start: boolean;
  readonly tools: number;
  readonly streams: number;
  readonly trust: { readonly configured: boolean; readonly tenant_id?: string; readonly approvers?: number };
  readonly queue: QueueStatsView;
  readonly endpoints: {
    readonly socket: string;
    readonly mcp_http?: string;
    readonly metrics?: string;
  };
  readonly samplers: readonly {
    readonly stream: string;
    readonly kind: string;
    readonly samples: number;
    readonly errors: number;
    readonly last_error?: string;
  }[];
  /** The upstream link's own view (state computed from facts, peer, last error), when it has one. */
  readonly uplink?: Readonly<Record<string, unknown>>;
}

export interface AuditVerifyView {
  readonly ok: boolean;
  readonly entries: number;
  readonly checkpoints?: number;
  readonly head_seq?: number;
  readonly first_bad_seq?: number;
  readonly problem?: string;
  readonly message?: string;
}
