// kill -9 the LoRa gateway mid-stream, again and again, while LoRa-only agents send telemetry over the simulated
// air: the gateway restarts on the same state, resends what it stored and the control plane has not acknowledged,
// and the store ends with every record the agents acknowledged exactly once.

import { createSeededRandom } from '../../../firmware-bridge/emulator/seeded-random.ts';
import {
  type LoraSite,
  loraDrained,
  SENSOR_PACE,
  SITE_TIME_SCALE,
  startLoraSite,
  startPacedProducers,
  whileForwarding,
  whilePending,
} from '../harness/lora-site.ts';
import type { Scenario } from '../scenario.ts';

export const gatewayKill9: Scenario = {
  name: 'gateway kill -9 mid-stream',
  claim: 'SIGKILLs of the LoRa gateway during a telemetry stream lose and duplicate nothing the agents acknowledged',
  unavailable: () => undefined,
  async run(ctx) {
    const cycles = ctx.mode === 'ci' ? 3 : 12;
    const random = createSeededRandom(51);
    const site = await startLoraSite({ dir: ctx.dir, agents: 2, backhaulProxy: true });
    // A slow backhaul: the control plane's acknowledgements come late, so each kill finds frames the gateway
    // stored and forwarded but that are not acknowledged yet (they must be sent again after the restart). The
    // gateway's timers run ×20 with the air, so 40 ms here is almost a second of its time.
    site.backhaul!.setMode({ kind: 'delay', ms: 40, jitterMs: 20 });
    try {
      return await exercise(site, cycles, random, ctx.progress, this.name);
    } finally {
      await site.close();
    }
  },
};

async function exercise(
  site: LoraSite,
  cycles: number,
  random: () => number,
  progress: (done: number, total: number) => void,
  name: string,
) {
  const producers = startPacedProducers(site, { ...SENSOR_PACE, random });
  let maxRecoveryMs = 0;
  let storedAtKills = 0;
  try {
    for (let cycle = 1; cycle <= cycles; cycle++) {
      // Mid-stream: the gateway has forwarded more frames, and holds some not acknowledged yet.
      await whileForwarding(site, 2, 60_000);
      const before = await whilePending(site, 60_000);
      storedAtKills += before.uplink.frames;
      await site.gateway.kill9();
      const killedAt = performance.now();
      await site.gateway.start();
      for (;;) {
        const s = await site.gatewayStatus().catch(() => undefined);
        if (s?.link.summary === 'ok' && s.radios.every((r) => r.ready)) break;
        if (performance.now() - killedAt > 60_000) throw new Error(`gateway not back: ${site.gateway.tail(20)}`);
        await new Promise((r) => setTimeout(r, 50));
      }
      maxRecoveryMs = Math.max(maxRecoveryMs, performance.now() - killedAt);
      progress(cycle, cycles);
    }
  } finally {
    await producers.stop();
  }
  await loraDrained(site, 240_000);
  const { lost, duplicated, moved, distinct } = await site.reconcile();
  const sent = site.agents.reduce((a, x) => a + x.tally.sent, 0);
  const acknowledged = site.agents.reduce((a, x) => a + x.tally.acked.size, 0);
  return {
    scenario: name,
    cycles,
    sent,
    acknowledged,
    stored: distinct,
    lost,
    duplicated,
    maxRecoveryMs: Math.round(maxRecoveryMs),
    passed: lost === 0 && duplicated === 0 && moved === 0 && acknowledged > 0,
    note: `${site.agents.length} LoRa-only agents, air ×${SITE_TIME_SCALE}; ${storedAtKills} frames stored at the gateway and not yet acknowledged at the kills; recovery = kill to the restarted gateway online with its radio ready`,
  };
}
