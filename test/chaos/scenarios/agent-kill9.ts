// kill -9 the agent under full telemetry load, again and again, while it streams to a control plane: every record
// the agent acknowledged to a producer ends up in the control plane's store exactly once.

import { createSeededRandom } from '../../../firmware-bridge/emulator/seeded-random.ts';
import { moreAcks, newTally, startProducers } from '../harness/agent-rig.ts';
import { drained, reconcileUpstream, startSystem } from '../harness/system.ts';
import type { Scenario } from '../scenario.ts';

export const agentKill9: Scenario = {
  name: 'agent kill -9 under telemetry load',
  claim:
    'no acknowledged record lost, none duplicated in the control plane store, across repeated SIGKILLs of the agent',
  unavailable: () => undefined,
  async run(ctx) {
    const cycles = ctx.mode === 'ci' ? 20 : 100;
    const random = createSeededRandom(9);
    const sys = await startSystem({ dir: ctx.dir });
    const tally = newTally();
    let next = 1;
    let maxRecoveryMs = 0;
    try {
      for (let cycle = 1; cycle <= cycles; cycle++) {
        const producers = startProducers(sys.agent, {
          producers: 4,
          maxBatch: 20,
          tally,
          nextValue: () => next++,
          random,
        });
        // Kill at a random point of full load: after 20..300 more acknowledged records.
        await moreAcks(tally, 20 + Math.floor(random() * 280), 60_000, 'before the kill');
        await sys.agent.process.kill9();
        const killedAt = performance.now();
        await producers.stop();
        await sys.agent.process.start();
        await sys.agent.process.waitForLine(/link\.state .*state=online/, 30_000, killedAt);
        maxRecoveryMs = Math.max(maxRecoveryMs, performance.now() - killedAt);
        ctx.progress(cycle, cycles);
      }
      await drained(sys.agent, 120_000);
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
        passed: lost === 0 && duplicated === 0 && moved === 0,
        note: `recovery = kill to link online again; ${tally.failedRequests} requests cut by the kills${moved ? `; ${moved} stored under another seq` : ''}`,
      };
    } finally {
      await sys.close();
    }
  },
};
