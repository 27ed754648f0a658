// The agent's Prometheus metrics: queue depth, bytes, age and drops (read from the outbox at scrape time),
// tool calls by tool/class/decision, sampler errors, telemetry records, process RSS.

import type { Clock } from '../protocol/clock.ts';
import type { MetricsRegistry } from '../protocol/metrics.ts';
import type { OutboxStats } from '../store/outbox.ts';
import type { GateDecision } from './gate.ts';

export interface AgentMetrics {
  toolDecided(tool: string, safetyClass: string, decision: GateDecision, source: string): void;
  toolFinished(tool: string, ok: boolean, durationMs: number, code: string): void;
  samplerError(stream: string): void;
  telemetryAppended(stream: string, records: number, source: string): void;
  ingestRejected(code: string): void;
  /** Reads the outbox's persisted counters into the counters; call before rendering. */
  refresh(): void;
}

export interface AgentMetricsSources {
  readonly outboxStats: () => OutboxStats;
  readonly maxBytes: number;
  readonly version: string;
  readonly manifestHash: () => string;
  readonly clock: Clock;
}

const DURATION_BUCKETS_S = [0.005, 0.025, 0.1, 0.5, 1, 2.5, 10, 30, 120];

export function createAgentMetrics(registry: MetricsRegistry, src: AgentMetricsSources): AgentMetrics {
  // One stats read per scrape, shared by the gauges below.
  let stats: OutboxStats | undefined;
  const readStats = () => {
    stats ??= src.outboxStats();
    return stats;
  };
  registry.gauge('outpost_agent_queue_items', 'Telemetry units waiting in the outbox.', [], (set) =>
    set({}, readStats().items),
  );
  registry.gauge('outpost_agent_queue_bytes', 'Payload bytes waiting in the outbox.', [], (set) =>
    set({}, readStats().bytes),
  );
  registry.gauge('outpost_agent_queue_max_bytes', 'Byte cap of the outbox.', [], (set) => set({}, src.maxBytes));
  registry.gauge(
    'outpost_agent_queue_leased_items',
    'Outbox units handed to the uplink and not yet acknowledged.',
    [],
    (set) => set({}, readStats().leasedItems),
  );
  registry.gauge(
    'outpost_agent_queue_oldest_age_seconds',
    'Age of the oldest waiting unit (store time, immune to clock jumps); 0 when empty.',
    [],
    (set) => set({}, (readStats().oldestAgeMs ?? 0) / 1000),
  );
  const dropped = registry.counter(
    'outpost_agent_queue_dropped_total',
    'Outbox units dropped, by reason (ttl, max_age, max_bytes, max_items, undecryptable).',
    ['reason'],
  );
  const calls = registry.counter(
    'outpost_agent_tool_calls_total',
    'Tool calls by tool, safety class, gate decision and reason code.',
    ['tool', 'safety_class', 'decision', 'reason', 'source'],
  );
  const duration = registry.histogram(
    'outpost_agent_tool_duration_seconds',
    'Run time of allowed tool calls.',
    DURATION_BUCKETS_S,
    ['tool'],
  );
  const failures = registry.counter('outpost_agent_tool_failures_total', 'Allowed calls that failed, by error code.', [
    'tool',
    'code',
  ]);
  const samplerErrors = registry.counter('outpost_agent_sampler_errors_total', 'Failed samples by stream.', ['stream']);
  const records = registry.counter(
    'outpost_agent_telemetry_records_total',
    'Telemetry records queued, by stream and source.',
    ['stream', 'source'],
  );
  const rejected = registry.counter(
    'outpost_agent_ingest_rejected_total',
    'Pushed telemetry batches refused, by code.',
    ['code'],
  );
  registry.gauge('process_resident_memory_bytes', 'Resident memory of the agent process.', [], (set) =>
    set({}, process.memoryUsage.rss()),
  );
  const startS = src.clock.nowMs() / 1000;
  registry.gauge('process_start_time_seconds', 'Start time of the agent process since the Unix epoch.', [], (set) =>
    set({}, startS),
  );
  const info = registry.gauge('outpost_agent_info', 'Constant 1, labelled with the version and manifest hash.', [
    'version',
    'manifest_hash',
  ]);

  return {
    toolDecided(tool, safetyClass, d, source) {
      calls.inc({ tool, safety_class: safetyClass, decision: d.allow ? 'allow' : 'deny', reason: d.reason, source });
    },
    toolFinished(tool, ok, durationMs, code) {
      if (ok) duration.observe(durationMs / 1000, { tool });
      else failures.inc({ tool, code });
    },
    samplerError: (stream) => samplerErrors.inc({ stream }),
    telemetryAppended: (stream, n, source) => records.inc({ stream, source }, n),
    ingestRejected: (code) => rejected.inc({ code }),
    refresh() {
      stats = undefined;
      const s = readStats();
      for (const [reason, n] of Object.entries(s.dropsByReason)) {
        const delta = n - dropped.get({ reason });
        if (delta > 0) dropped.inc({ reason }, delta);
      }
      info.set({ version: src.version, manifest_hash: src.manifestHash() }, 1);
    },
  };
}
