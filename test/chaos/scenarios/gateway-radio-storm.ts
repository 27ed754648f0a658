// The gateway's radio unplugged and plugged back again and again (the radio sim closes the emulated RNode's pty and
// opens a new one, as a USB radio that drops off the bus and comes back): the gateway process keeps running and
// forwarding, reopens the radio by itself with backoff each time, and nothing the agents acknowledged is lost.

import { createSeededRandom } from '../../../firmware-bridge/emulator/seeded-random.ts';
import {
  emptyLawTally,
  type LoraSite,
  loraDrained,
  SENSOR_PACE,
  SITE_TIME_SCALE,
  startLoraSite,
  startPacedProducers,
  whileForwarding,
} from '../harness/lora-site.ts';
import type { Scenario } from '../scenario.ts';

/** The emulated radio the gateway uses (the first of the radio sim). */
const GATEWAY_RADIO = 'rnode-0';

export const gatewayRadioStorm: Scenario = {
  name: 'gateway radio unplug storm',
  claim: 'the gateway survives its radio unplugged and replugged again and again, reopens it and loses nothing',
  unavailable: () => undefined,
  async run(ctx) {
    const cycles = ctx.mode === 'ci' ? 4 : 20;
    const random = createSeededRandom(61);
    const site = await startLoraSite({ dir: ctx.dir, agents: 2 });
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
  const pid = site.gateway.pid();
  const producers = startPacedProducers(site, { ...SENSOR_PACE, random });
  // The gateway is deaf while its radio is out (most of each cycle), so the agents send most frames more than once
  // and, over a long storm, spend their share of the airtime budget: then they must stay quiet until old airtime
  // leaves the law's window. Such waits are the law, not a stall; they are counted and reported.
  const law = emptyLawTally();
  let maxRecoveryMs = 0;
  try {
    for (let cycle = 1; cycle <= cycles; cycle++) {
      await whileForwarding(site, 1, 60_000, law);
      const unpluggedAt = performance.now();
      await site.simPost(`/v1/radios/${GATEWAY_RADIO}/unplug`);
      await site.gateway.waitForLine(/"event":"radio\.status".*"state":"(absent|error)"/, 30_000, unpluggedAt);
      // A storm: most cycles replug at once or after a blink, some stay out long enough for several reopen tries.
      const outMs = random() < 0.3 ? 1_500 + random() * 1_500 : random() * 200;
      await new Promise((r) => setTimeout(r, outMs));
      const replugged = performance.now();
      await site.simPost(`/v1/radios/${GATEWAY_RADIO}/replug`);
      await site.gateway.waitForLine(/"event":"radio\.status".*"state":"ready"/, 60_000, replugged);
      maxRecoveryMs = Math.max(maxRecoveryMs, performance.now() - replugged);
      progress(cycle, cycles);
    }
    // Still forwarding after the storm.
    await whileForwarding(site, 2, 60_000, law);
  } finally {
    await producers.stop();
  }
  await loraDrained(site, 240_000);
  const status = await site.gatewayStatus();
  const { lost, duplicated, moved, distinct } = await site.reconcile();
  const sent = site.agents.reduce((a, x) => a + x.tally.sent, 0);
  const acknowledged = site.agents.reduce((a, x) => a + x.tally.acked.size, 0);
  const samePid = site.gateway.pid() === pid && site.gateway.starts() === 1;
  const radio = status.radios[0]!;
  const opens = site.gateway.lines().filter((l) => /"event":"radio\.status".*"state":"opening"/.test(l.text)).length;
  const reopened = radio.readyTransitions >= cycles + 1;
  return {
    scenario: name,
    cycles,
    sent,
    acknowledged,
    stored: distinct,
    lost,
    duplicated,
    maxRecoveryMs: Math.round(maxRecoveryMs),
    passed: lost === 0 && duplicated === 0 && moved === 0 && acknowledged > 0 && samePid && reopened,
    note: `${site.agents.length} LoRa-only agents, air ×${SITE_TIME_SCALE}; gateway ${samePid ? 'never restarted' : 'RESTARTED'}, radio ready ${radio.readyTransitions} times after ${opens} opening attempts; recovery = replug to the gateway's radio ready; ${law.waits === 0 ? 'no wait for the airtime law' : `agents held by the airtime law ${law.waits} times, longest ${(law.longestMs / 1000).toFixed(0)} s`}`,
  };
}
