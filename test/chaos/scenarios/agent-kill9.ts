// kill -9 the agent under full telemetry load, again and again: every record the agent acknowledged to a
// producer is in its store afterwards, under the seq it was given, and none is stored twice.

import { createSeededRandom } from '../../../firmware-bridge/emulator/seeded-random.ts';
import { agentRig, newTally, readOutbox, reconcile, startProducers } from '../harness/agent-rig.ts';
import type { Scenario } from '../scenario.ts';

export const agentKill9: Scenario = {
  name: 'agent kill -9 under telemetry load',
  claim: 'no acknowledged record lost, none duplicated, across repeated SIGKILLs of the agent',
  unavailable: () => undefined,
  async run(ctx) {
    const cycles = ctx.mode === 'ci' ? 20 : 100;
    const random = createSeededRandom(9);
    const rig = agentRig({ dir: ctx.dir });
    const tally = newTally();
    let next = 1;
    let maxRecoveryMs = 0;
    await rig.process.start();
    for (let cycle = 1; cycle <= cycles; cycle++) {
      const producers = startProducers(rig, {
        producers: 4,
        maxBatch: 20,
        tally,
        nextValue: () => next++,
        random,
      });
      // Kill at a random point of full load: after 20..300 more acknowledged records.
      const target = tally.acked.size + 20 + Math.floor(random() * 280);
      while (tally.acked.size < target) await new Promise((resolve) => setTimeout(resolve, 2));
      await rig.process.kill9();
      const killedAt = performance.now();
      await producers.stop();
      await rig.process.start();
      maxRecoveryMs = Math.max(maxRecoveryMs, performance.now() - killedAt);
      ctx.progress(cycle, cycles);
    }
    await rig.process.stop();
    const stored = readOutbox(rig.stateDir);
    const { lost, duplicated, moved, distinct } = reconcile(tally, stored);
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
      note: `agent only (queued in its outbox); ${tally.failedRequests} requests cut by the kills${moved > 0 ? `; ${moved} stored under another seq` : ''}`,
    };
  },
};
