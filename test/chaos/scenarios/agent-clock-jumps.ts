// The agent's wall clock jumps a day forward and back (an NTP step, a board without RTC) under telemetry load,
// once with a kill -9 while the clock is behind: it keeps taking telemetry, never reuses a seq, loses nothing.

import type { LocalApiClient } from '../../../agent/local-api/client.ts';
import { createSeededRandom } from '../../../firmware-bridge/emulator/seeded-random.ts';
import {
  agentRig,
  CHAOS_STREAM,
  moreAcks,
  newTally,
  readOutbox,
  reconcile,
  startProducers,
} from '../harness/agent-rig.ts';
import { clockControl } from '../harness/clock-offset.ts';
import type { Scenario } from '../scenario.ts';

const DAY_MS = 86_400_000;

/**
 * Resolves once the agent stamps new records with the shifted clock (its newest record's ts is within an hour
 * of real time + offset): from then on, what follows really ran under the jumped clock.
 */
async function sawJump(client: LocalApiClient, offsetMs: number): Promise<void> {
  const t0 = performance.now();
  for (;;) {
    const tail = await client.get<{ records: { ts_ms: number }[] }>('/v1/telemetry', {
      stream: CHAOS_STREAM,
      limit: 1,
    });
    const ts = tail.records.at(-1)?.ts_ms;
    if (ts !== undefined && Math.abs(ts - (Date.now() + offsetMs)) < 3_600_000) return;
    if (performance.now() - t0 > 30_000) throw new Error(`the agent did not take up the clock offset ${offsetMs} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

export const agentClockJumps: Scenario = {
  name: 'agent clock jumps ±1 day',
  claim: 'wall-clock jumps of a day either way under load: telemetry keeps flowing, nothing lost or repeated',
  unavailable: () => undefined,
  async run(ctx) {
    const cycles = ctx.mode === 'ci' ? 4 : 20;
    const clock = clockControl(ctx.dir);
    const random = createSeededRandom(23);
    const rig = agentRig({ dir: ctx.dir, nodeArgs: clock.nodeArgs, env: clock.env });
    const tally = newTally();
    let next = 1;
    let maxRecoveryMs = 0;
    await rig.process.start();
    const producers = startProducers(rig, { producers: 2, maxBatch: 20, tally, nextValue: () => next++, random });
    try {
      for (let cycle = 1; cycle <= cycles; cycle++) {
        await moreAcks(tally, 100, 60_000, 'before the jump');
        // +1 d, −1 d, −1 d, +1 d, …: the clock goes ahead, back to true, behind, back to true.
        clock.jump([DAY_MS, -DAY_MS, -DAY_MS, DAY_MS][(cycle - 1) % 4]!);
        await sawJump(rig.client(), clock.offsetMs());
        if (clock.offsetMs() < 0 && cycle === 3) {
          // Restart while the clock is a day behind: the store's time and the sequence must not go back.
          await rig.process.kill9();
          await rig.process.start();
        }
        maxRecoveryMs = Math.max(maxRecoveryMs, await moreAcks(tally, 100, 60_000, 'after the jump'));
        ctx.progress(cycle, cycles);
      }
    } finally {
      await producers.stop();
    }
    await rig.process.stop();
    const { lost, duplicated, moved, distinct } = reconcile(tally, readOutbox(rig.stateDir));
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
      note: `recovery = time to 100 more acknowledged records once the agent runs on the jumped clock${moved ? `; ${moved} moved` : ''}`,
    };
  },
};
