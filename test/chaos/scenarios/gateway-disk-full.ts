// The gateway's disk fills up while LoRa-only agents send telemetry through it, again and again: frames it cannot
// store are dropped and counted (store_failed), the gateway stays up, stores and forwards again as soon as space
// returns, and the agents' retransmissions bring everything they acknowledged to the control plane exactly once.

import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { createSeededRandom } from '../../../firmware-bridge/emulator/seeded-random.ts';
import { canMakeTinyDisk, type TinyDisk, tinyDisk } from '../harness/disk.ts';
import {
  type LoraSite,
  loraDrained,
  SENSOR_PACE,
  SITE_TIME_SCALE,
  startLoraSite,
  startPacedProducers,
  whileForwarding,
} from '../harness/lora-site.ts';
import type { Scenario } from '../scenario.ts';

export const gatewayDiskFull: Scenario = {
  name: 'gateway disk full',
  claim:
    'a full disk at the gateway drops and counts what it cannot store, keeps the gateway up, recovers, loses nothing acknowledged',
  unavailable: () => (canMakeTinyDisk() ? undefined : 'no unprivileged user+mount namespaces for a tiny tmpfs here'),
  async run(ctx) {
    const cycles = ctx.mode === 'ci' ? 2 : 8;
    const mount = join(ctx.dir, 'gateway-disk');
    mkdirSync(mount);
    const disk = await tinyDisk(mount, 32 * 1024 * 1024);
    try {
      const site = await startLoraSite({
        dir: ctx.dir,
        agents: 2,
        gatewayStateDir: mount,
        gatewayStateHostDir: disk.hostPath(mount),
        gatewayWrap: disk.wrap,
      });
      try {
        return await exercise(site, disk, cycles, createSeededRandom(71), ctx.progress, this.name);
      } finally {
        await site.close();
      }
    } finally {
      await disk.close();
    }
  },
};

async function exercise(
  site: LoraSite,
  disk: TinyDisk,
  cycles: number,
  random: () => number,
  progress: (done: number, total: number) => void,
  name: string,
) {
  const producers = startPacedProducers(site, { ...SENSOR_PACE, random });
  let maxRecoveryMs = 0;
  let crashed = 0;
  const storeFailed = async () =>
    (await site.gatewayStatus().catch(() => undefined))?.radios[0]?.frames.dropped.store_failed ?? 0;
  try {
    for (let cycle = 1; cycle <= cycles; cycle++) {
      await whileForwarding(site, 2, 60_000);
      const failedBefore = await storeFailed();
      disk.fill(0);
      // Full: wait until the gateway has had to drop frames it heard (or died).
      const t0 = performance.now();
      while ((await storeFailed()) < failedBefore + 2) {
        if (!site.gateway.isRunning()) break;
        if (performance.now() - t0 > 90_000) {
          throw new Error(`the full disk never made the gateway drop a frame\n${site.gateway.tail(20)}`);
        }
        await new Promise((r) => setTimeout(r, 50));
      }
      disk.free();
      const freed = performance.now();
      if (!site.gateway.isRunning()) {
        crashed++;
        await site.gateway.start();
      }
      await whileForwarding(site, 1, 90_000);
      maxRecoveryMs = Math.max(maxRecoveryMs, performance.now() - freed);
      progress(cycle, cycles);
    }
  } finally {
    await producers.stop();
  }
  await loraDrained(site, 240_000);
  const dropped = await storeFailed();
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
    passed: lost === 0 && duplicated === 0 && moved === 0 && acknowledged > 0 && crashed === 0,
    note: `${site.agents.length} LoRa-only agents, air ×${SITE_TIME_SCALE}; ${dropped} frames dropped as store_failed by the gateway${crashed ? `; the gateway died ${crashed}× on a full disk` : ''}; recovery = space back to the next frame forwarded`,
  };
}
