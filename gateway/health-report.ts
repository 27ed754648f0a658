// The gateway's radio health as it reports it upstream (`lora.health`, lora-relay.md §6a): a pure mapping from
// the local RadioHealth view to the wire body, rounding what the wire carries as whole numbers.

import { type LoraHealth, MAX_HEALTH_RADIOS, type RadioHealthReport } from '../protocol/lora-relay.ts';
import type { HistogramSnapshot, RadioHealth } from './radio-link.ts';

function uint(x: number): number {
  return Number.isFinite(x) && x > 0 ? Math.min(Number.MAX_SAFE_INTEGER, Math.round(x)) : 0;
}

function histogram(h: HistogramSnapshot): RadioHealthReport['rssiDbm'] {
  if (h.count === 0) return null;
  return { buckets: h.buckets.map((b) => ({ le: b.le, count: b.count })), count: h.count, sum: h.sum };
}

/** One radio's report: the drop counters summed over reasons, histograms null until a value was heard. */
export function radioHealthReport(h: RadioHealth): RadioHealthReport {
  const budgetUsed = h.airtime.budgetUsed;
  return {
    name: h.name,
    kind: h.kind,
    state: h.state,
    ready: h.ready,
    airtime: {
      windowMs: uint(h.airtime.windowMs),
      budgetUsed: Number.isFinite(budgetUsed) && budgetUsed > 0 ? budgetUsed : 0,
      totalMs: uint(h.airtime.totalMs),
    },
    frames: {
      received: h.frames.received,
      sent: h.frames.sent,
      dropped: Object.values(h.frames.dropped).reduce((a, b) => a + b, 0),
    },
    rssiDbm: histogram(h.rssiDbm),
    snrDb: histogram(h.snrDb),
    lastRxMs: h.lastRxWallMs === null ? null : uint(h.lastRxWallMs),
  };
}

/** The `lora.health` body; at most MAX_HEALTH_RADIOS radios (a gateway configures fewer in practice). */
export function loraHealthBody(
  radios: readonly RadioHealth[],
  uplinkBacklog: number,
  downlinkBacklog: number,
): LoraHealth {
  return {
    radios: radios.slice(0, MAX_HEALTH_RADIOS).map(radioHealthReport),
    uplinkBacklog: uint(uplinkBacklog),
    downlinkBacklog: uint(downlinkBacklog),
  };
}
