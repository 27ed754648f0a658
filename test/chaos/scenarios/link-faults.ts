// A TCP proxy between the agent and the control plane that stalls (half-open), drops (resets), delays and
// reorders WebSocket frames, in turn, under telemetry load: a stall is detected within two heartbeat intervals,
// the link comes back after each fault, and the store ends with every acknowledged record exactly once.

import { createSeededRandom } from '../../../firmware-bridge/emulator/seeded-random.ts';
import { moreAcks, newTally, startProducers } from '../harness/agent-rig.ts';
import { drained, reconcileUpstream, startSystem } from '../harness/system.ts';
import type { ProxyMode } from '../harness/tcp-proxy.ts';
import type { Scenario } from '../scenario.ts';

const HEARTBEAT_MS = 1000;
const FAULTS: readonly ProxyMode[] = [
  { kind: 'stall' },
  { kind: 'drop' },
  { kind: 'delay', ms: 150, jitterMs: 100 },
  { kind: 'reorder', window: 4 },
];

export const linkFaults: Scenario = {
  name: 'agent ↔ control plane link faults',
  claim: 'stall (half-open) detected within two heartbeat intervals; drop, delay, reorder recovered; nothing lost',
  knownIssue: 'unfinished: not yet verified against the control plane',
  inCi: false,
  unavailable: () => undefined,
  async run(ctx) {
    const rounds = ctx.mode === 'ci' ? 1 : 5;
    const random = createSeededRandom(41);
    const sys = await startSystem({
      dir: ctx.dir,
      proxy: true,
      agentEnv: { OUTPOST_LINK_HEARTBEAT_MS: String(HEARTBEAT_MS), OUTPOST_LINK_TIMEOUT_MS: String(HEARTBEAT_MS) },
    });
    const proxy = sys.proxy!;
    const tally = newTally();
    let next = 1;
    let maxRecoveryMs = 0;
    let maxDetectionMs = 0;
    const producers = startProducers(sys.agent, { producers: 2, maxBatch: 20, tally, nextValue: () => next++, random });
    const total = rounds * FAULTS.length;
    let done = 0;
    try {
      for (let round = 0; round < rounds; round++) {
        for (const fault of FAULTS) {
          await moreAcks(tally, 200, 60_000, `before ${fault.kind}`);
          const t0 = performance.now();
          proxy.setMode(fault);
          if (fault.kind === 'stall') {
            // Half-open: no FIN, no RST; only the heartbeat can tell.
            await sys.agent.process.waitForLine(/link\.heartbeat_timeout/, 30_000, t0);
            maxDetectionMs = Math.max(maxDetectionMs, performance.now() - t0);
          }
          // The fault lasts while the producers get 200 more records accepted (queued locally by the agent).
          await moreAcks(tally, 200, 60_000, `during ${fault.kind}`);
          const healed = performance.now();
          proxy.setMode({ kind: 'pass' });
          if (fault.kind === 'stall' || fault.kind === 'drop') {
            await sys.agent.process.waitForLine(/link\.state .*state=online/, 60_000, healed);
          }
          maxRecoveryMs = Math.max(maxRecoveryMs, performance.now() - healed);
          ctx.progress(++done, total);
        }
      }
    } finally {
      await producers.stop();
    }
    try {
      await drained(sys.agent, 120_000);
      const { lost, duplicated, moved, distinct } = await reconcileUpstream(sys.cp, tally);
      const detectedInTime = maxDetectionMs <= 2 * HEARTBEAT_MS;
      return {
        scenario: this.name,
        cycles: total,
        sent: tally.sent,
        acknowledged: tally.acked.size,
        stored: distinct,
        lost,
        duplicated,
        maxRecoveryMs: Math.round(maxRecoveryMs),
        passed: lost === 0 && duplicated === 0 && moved === 0 && detectedInTime,
        note: `stall detected in ≤ ${Math.round(maxDetectionMs)} ms (heartbeat ${HEARTBEAT_MS} ms, limit ${2 * HEARTBEAT_MS} ms); ${proxy.stats().framesReordered} frames reordered, ${proxy.stats().resets} resets`,
      };
    } finally {
      await sys.close();
    }
  },
};
