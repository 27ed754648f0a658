// Everything the local API can ask of the daemon, in one place. Routes (local-api/requests.ts) only decode;
// this module does the work and returns plain JSON values; errors are mapped to HTTP once (http-status.ts).

import type { AuditLog } from '../store/audit.ts';
import type { Outbox, OutboxStats } from '../store/outbox.ts';
import type {
  AuditVerifyView,
  IdentityView,
  IngestResponse,
  QueueStatsView,
  StatusView,
  TailResponse,
  ToolCallResponse,
  ToolsView,
} from './api-types.ts';
import type { CallSource } from './gate.ts';
import type { ApiRequest } from './local-api/requests.ts';
import { StreamingBody } from './local-api/server.ts';
import type { BuiltAgentManifest } from './manifest-builder.ts';
import type { RecentTelemetry } from './recent-telemetry.ts';
import type { IngestInput, TelemetryIngest } from './telemetry-ingest.ts';
import type { ToolCalls } from './tool-calls.ts';

export interface ActionsDeps {
  readonly manifest: BuiltAgentManifest;
  readonly identity: IdentityView;
  readonly toolCalls: ToolCalls;
  readonly ingest: TelemetryIngest;
  readonly recent: RecentTelemetry;
  readonly outbox: Outbox;
  readonly audit: AuditLog;
  /** The identity's public key, to check audit checkpoint signatures. */
  readonly publicKey: Uint8Array;
  readonly queueLimits: { readonly maxBytes: number; readonly maxRecords: number };
  readonly status: () => StatusView;
  readonly onIngestRejected?: (code: string) => void;
}

export interface Actions {
  status(): StatusView;
  identity(): IdentityView;
  tools(): ToolsView;
  callTool(call: {
    tool: string;
    args: Record<string, unknown>;
    source: CallSource;
    callId?: string;
    token?: string;
    quorum?: string;
  }): Promise<ToolCallResponse>;
  undo(req: { callId: string; source: CallSource; token?: string; quorum?: string }): Promise<ToolCallResponse>;
  push(records: readonly IngestInput[]): Promise<IngestResponse>;
  tail(
    q: { stream?: string; limit: number; after?: number; wait_ms: number },
    signal: AbortSignal,
  ): Promise<TailResponse>;
  queueStats(): QueueStatsView;
  auditVerify(): AuditVerifyView;
  /** The local API's one handler: decoded request in, JSON value (or a stream) out. */
  handle(req: ApiRequest, signal: AbortSignal): Promise<unknown>;
}

/** Queue figures for people: outbox priority numbers turned back into the manifest's (7 = most important). */
export function queueStatsView(s: OutboxStats, limits: ActionsDeps['queueLimits']): QueueStatsView {
  const dropped: Record<string, number> = {};
  for (const [reason, n] of Object.entries(s.dropsByReason)) if (n > 0) dropped[reason] = n;
  const byStream: Record<string, { depth: number; bytes: number }> = {};
  for (const [stream, v] of Object.entries(s.streams)) byStream[stream] = { depth: v.items, bytes: v.bytes };
  return {
    depth: s.items,
    bytes: s.bytes,
    max_bytes: limits.maxBytes,
    max_records: limits.maxRecords,
    oldest_age_s: s.oldestAgeMs === null ? null : Math.round(s.oldestAgeMs / 1000),
    dropped,
    by_stream: byStream,
  };
}

function* lines(source: Iterable<string>): Generator<string> {
  for (const line of source) yield `${line}\n`;
}

export function createActions(d: ActionsDeps): Actions {
  const actions: Actions = {
    status: () => d.status(),
    identity: () => d.identity,
    tools: () => ({
      manifest_hash: d.manifest.hash,
      tools: [...d.manifest.tools.values()].map((t) => ({ ...t.spec, kind: t.kind })),
    }),
    callTool: (c) =>
      d.toolCalls.call({
        tool: c.tool,
        args: c.args,
        source: c.source,
        ...(c.callId ? { callId: c.callId } : {}),
        ...(c.token ? { token: c.token } : {}),
        ...(c.quorum ? { quorum: c.quorum } : {}),
      }),
    undo: (r) => d.toolCalls.undo(r),
    async push(records) {
      try {
        return { seqs: await d.ingest.ingest(records, 'api') };
      } catch (e) {
        d.onIngestRejected?.((e as { code?: string }).code ?? 'INTERNAL');
        throw e;
      }
    },
    async tail(q, signal) {
      const after = q.after ?? 0;
      if (q.wait_ms > 0) {
        await d.recent.waitFor({ ...(q.stream ? { stream: q.stream } : {}), after }, q.wait_ms, signal);
      }
      return {
        records: d.recent.read({
          ...(q.stream ? { stream: q.stream } : {}),
          limit: q.limit,
          ...(q.after !== undefined ? { after } : {}),
        }),
        last_seq: d.recent.lastSeq(),
      };
    },
    queueStats: () => queueStatsView(d.outbox.stats(), d.queueLimits),
    auditVerify() {
      const v = d.audit.verify({ publicKey: d.publicKey });
      return v.ok
        ? { ok: true, entries: v.entries, checkpoints: v.checkpoints, head_seq: v.headSeq }
        : { ok: false, entries: v.entries, first_bad_seq: v.firstBadSeq, problem: v.problem, message: v.message };
    },
    async handle(req, signal) {
      switch (req.kind) {
        case 'status':
          return actions.status();
        case 'identity':
          return actions.identity();
        case 'manifest':
          return { hash: d.manifest.hash, manifest: d.manifest.manifest };
        case 'tools.list':
          return actions.tools();
        case 'tools.call':
          return actions.callTool({
            tool: req.body.tool,
            args: req.body.args,
            source: req.body.via ?? 'local_api',
            ...(req.body.call_id ? { callId: req.body.call_id } : {}),
            ...(req.body.token ? { token: req.body.token } : {}),
            ...(req.body.quorum ? { quorum: req.body.quorum } : {}),
          });
        case 'tools.undo':
          return actions.undo({
            callId: req.body.call_id,
            source: 'local_api',
            ...(req.body.token ? { token: req.body.token } : {}),
            ...(req.body.quorum ? { quorum: req.body.quorum } : {}),
          });
        case 'telemetry.push':
          return actions.push(req.body.records);
        case 'telemetry.tail':
          return actions.tail(req.query, signal);
        case 'queue.stats':
          return actions.queueStats();
        case 'audit.verify':
          return actions.auditVerify();
        case 'audit.export':
          return new StreamingBody('application/x-ndjson', lines(d.audit.exportJsonLines()));
      }
    },
  };
  return actions;
}
