// kill -9 the control plane mid-stream, again and again: agents keep queueing, reconnect when it is back, and the
// store ends with every acknowledged record exactly once (the hub acknowledges only after its commit).

import { createSeededRandom } from '../../../firmware-bridge/emulator/seeded-random.ts';
import { moreAcks, newTally, startProducers } from '../harness/agent-rig.ts';
import { drained, reconcileUpstream, startSystem } from '../harness/system.ts';
import type { Scenario } from '../scenario.ts';

export const controlPlaneKill9: Scenario = {
  name: 'control plane kill -9 mid-stream',
  claim: 'SIGKILLs of the control plane during a telemetry stream lose and duplicate nothing acknowledged',
  unavailable: () => undefined,
  async run(ctx) {
    const cycles = ctx.mode === 'ci' ? 2 : 30;
    const random = createSeededRandom(31);
    // A short heartbeat so the agent notices a dead peer fast (a kill -9 also resets the socket).
    const sys = await startSystem({
      dir: ctx.dir,
      agentEnv: { OUTPOST_LINK_HEARTBEAT_MS: '1000', OUTPOST_LINK_TIMEOUT_MS: '1000' },
    });
    const tally = newTally();
    let next = 1;
    let maxRecoveryMs = 0;
    // The system is closed however the run ends, so no process outlives the scenario.
    try {
      const producers = startProducers(sys.agent, {
        producers: 3,
        maxBatch: 50,
        tally,
        nextValue: () => next++,
        random,
        // Paced (~750 records/s, below what the agent drains once the control plane is back on a loaded machine):
        // the backlog of a 60 s reconnect backoff stays far under the queue caps, so every acknowledged record must
        // arrive, and the agent's drop counter (queue items of 1..50 records) is checked as well. At ~3,500
        // records/s a full run built a backlog over the caps across cycles and the agent dropped 73,818 items.
        pauseMs: 100,
      });
      try {
        for (let cycle = 1; cycle <= cycles; cycle++) {
          await moreAcks(tally, 200 + Math.floor(random() * 800), 60_000, 'before the kill');
          await sys.cp.process.kill9();
          const killedAt = performance.now();
          // Down for a moment while the agent queues, then back on the same state and port.
          await moreAcks(tally, 100, 60_000, 'while the control plane is down');
          await sys.cp.process.start();
          await sys.agent.process.waitForLine(/link\.state .*state=online/, 60_000, killedAt);
          maxRecoveryMs = Math.max(maxRecoveryMs, performance.now() - killedAt);
          ctx.progress(cycle, cycles);
        }
      } finally {
        await producers.stop();
      }
      await drained(sys.agent, 120_000);
      const q = await sys.agent.client().get<{ dropped: Record<string, number> }>('/v1/queue');
      const dropped = Object.values(q.dropped).reduce((a, b) => a + b, 0);
      const { lost, duplicated, moved, distinct } = await reconcileUpstream(sys.cp, tally);
      return {
        scenario: this.name,
        cycles,
        sent: tally.sent,
        acknowledged: tally.acked.size,
        stored: distinct,
        lost,
        duplicated,
        maxRecoveryMs: Math.round(maxRecoveryMs),
        passed: lost === 0 && duplicated === 0 && moved === 0 && dropped === 0,
        note: `${dropped ? `${dropped} dropped by the agent's queue caps; ` : ''}recovery = kill to the agent online again (includes the down time)`,
      };
    } finally {
      await sys.close();
    }
  },
};
