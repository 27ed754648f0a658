// A TCP proxy between the agent and the control plane that stalls (half-open), drops (resets), delays and
// reorders WebSocket frames, in turn, under telemetry load: a stall is detected within two heartbeat intervals,
// a reordered stream is refused (SEQ_VIOLATION), the link comes back after each fault, and the store ends with
// every acknowledged record exactly once.

import { createSeededRandom } from '../../../firmware-bridge/emulator/seeded-random.ts';
import { moreAcks, newTally, startProducers } from '../harness/agent-rig.ts';
import type { ChaosRow } from '../harness/report.ts';
import { drained, reconcileUpstream, type System, startSystem } from '../harness/system.ts';
import type { ProxyMode, ProxyStats } from '../harness/tcp-proxy.ts';
import type { Scenario, ScenarioContext } from '../scenario.ts';

const HEARTBEAT_MS = 1000;
/** Half the heartbeat, as in the agent's defaults (60 s / 30 s): a stall is seen within heartbeat + timeout. */
const TIMEOUT_MS = 500;
/** Upstream bytes a delay fault must carry before it ends (tens of telemetry envelopes). */
const FAULT_BYTES = 64 * 1024;

/** Resolves once the fault set at `since` (with the proxy's stats `before`) has bitten; rejects after `timeoutMs`. */
async function faultBit(
  fault: ProxyMode,
  before: ProxyStats,
  since: number,
  sys: System,
  timeoutMs: number,
): Promise<void> {
  const proxy = sys.proxy!;
  const bitten = (): boolean => {
    const now = proxy.stats();
    switch (fault.kind) {
      case 'drop':
        // The live connection and at least one reconnect attempt reset.
        return now.resets >= before.resets + 2;
      case 'delay':
        return now.bytesUp >= before.bytesUp + FAULT_BYTES;
      case 'reorder':
        // Envelope seqs must rise by one per connection (envelope.md §5.2): the control plane refuses a
        // reordered stream with SEQ_VIOLATION and closes; the agent reconnects with backoff.
        return (
          now.framesReordered > before.framesReordered &&
          sys.agent.process.lines().some((l) => l.at >= since && /link\.peer_error .*code=SEQ_VIOLATION/.test(l.text))
        );
      default:
        return true;
    }
  };
  const t0 = performance.now();
  while (!bitten()) {
    if (performance.now() - t0 > timeoutMs) {
      throw new Error(
        `${fault.kind}: did not take effect within ${timeoutMs} ms: ${JSON.stringify(proxy.stats())}\n${sys.agent.process.tail(20)}`,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}
const FAULTS: readonly ProxyMode[] = [
  { kind: 'stall' },
  { kind: 'drop' },
  { kind: 'delay', ms: 150, jitterMs: 100 },
  { kind: 'reorder', window: 4 },
];

export const linkFaults: Scenario = {
  name: 'agent ↔ control plane link faults',
  claim:
    'stall (half-open) detected within two heartbeat intervals; drop, delay, reorder (refused as SEQ_VIOLATION) recovered; nothing lost',
  unavailable: () => undefined,
  async run(ctx) {
    const rounds = ctx.mode === 'ci' ? 1 : 3;
    const random = createSeededRandom(41);
    const sys = await startSystem({
      dir: ctx.dir,
      proxy: true,
      agentEnv: { OUTPOST_LINK_HEARTBEAT_MS: String(HEARTBEAT_MS), OUTPOST_LINK_TIMEOUT_MS: String(TIMEOUT_MS) },
    });
    try {
      return await exercise(ctx, sys, rounds, random, this.name);
    } finally {
      await sys.close();
    }
  },
};

async function exercise(
  ctx: ScenarioContext,
  sys: System,
  rounds: number,
  random: () => number,
  name: string,
): Promise<ChaosRow> {
  const proxy = sys.proxy!;
  const tally = newTally();
  let next = 1;
  let maxRecoveryMs = 0;
  let maxDetectionMs = 0;
  // A sensor's pace, not a flood (~2,000 records/s): the backlog of a 60 s reconnect backoff stays far below the
  // queue caps, so every acknowledged record must arrive (the agent's drop counter is checked as well).
  const producers = startProducers(sys.agent, {
    producers: 2,
    maxBatch: 20,
    tally,
    nextValue: () => next++,
    random,
    pauseMs: 10,
  });
  const total = rounds * FAULTS.length;
  let done = 0;
  try {
    for (let round = 0; round < rounds; round++) {
      for (const fault of FAULTS) {
        await moreAcks(tally, 200, 60_000, `before ${fault.kind}`);
        const t0 = performance.now();
        const before = proxy.stats();
        proxy.setMode(fault);
        if (fault.kind === 'stall') {
          // Half-open: no FIN, no RST; only the heartbeat can tell.
          await sys.agent.process.waitForLine(/link\.heartbeat_timeout/, 30_000, t0);
          maxDetectionMs = Math.max(maxDetectionMs, performance.now() - t0);
        }
        // The fault lasts while the producers get 200 more records accepted (queued locally by the agent), and
        // until it has bitten: a reconnect refused after a drop, a run of frames delayed, a reordered stream refused.
        await moreAcks(tally, 200, 60_000, `during ${fault.kind}`);
        await faultBit(fault, before, t0, sys, 60_000);
        const healed = performance.now();
        proxy.setMode({ kind: 'pass' });
        if (fault.kind !== 'delay') {
          // Reconnect backoff grows to 60 s (agent/link-backoff.ts) while faults follow each other closely.
          await sys.agent.process.waitForLine(/link\.state .*state=online/, 90_000, healed);
        }
        maxRecoveryMs = Math.max(maxRecoveryMs, performance.now() - healed);
        ctx.progress(++done, total);
      }
    }
  } finally {
    await producers.stop();
  }
  await drained(sys.agent, 120_000);
  const q = await sys.agent.client().get<{ dropped: Record<string, number> }>('/v1/queue');
  const dropped = Object.values(q.dropped).reduce((a, b) => a + b, 0);
  const { lost, duplicated, moved, distinct } = await reconcileUpstream(sys.cp, tally);
  const detectedInTime = maxDetectionMs <= 2 * HEARTBEAT_MS;
  return {
    scenario: name,
    cycles: total,
    sent: tally.sent,
    acknowledged: tally.acked.size,
    stored: distinct,
    lost,
    duplicated,
    maxRecoveryMs: Math.round(maxRecoveryMs),
    passed: lost === 0 && duplicated === 0 && moved === 0 && dropped === 0 && detectedInTime,
    note: `${dropped ? `${dropped} dropped by the agent's queue caps; ` : ''}stall detected in ≤ ${Math.round(maxDetectionMs)} ms (heartbeat ${HEARTBEAT_MS} ms, timeout ${TIMEOUT_MS} ms, limit ${2 * HEARTBEAT_MS} ms); ${proxy.stats().framesReordered} frames reordered, ${proxy.stats().resets} resets`,
  };
}
