// The agent's disk fills up under telemetry load, again and again: pushes are refused with DISK_FULL (typed),
// the agent stays up, takes telemetry again as soon as space returns, and loses or repeats nothing it acknowledged.

import { cpSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { createSeededRandom } from '../../../firmware-bridge/emulator/seeded-random.ts';
import { agentRig, moreAcks, newTally, readOutbox, reconcile, startProducers } from '../harness/agent-rig.ts';
import { canMakeTinyDisk, tinyDisk } from '../harness/disk.ts';
import type { Scenario } from '../scenario.ts';

export const agentDiskFull: Scenario = {
  name: 'agent disk full',
  claim:
    'a full disk refuses telemetry with DISK_FULL, keeps the agent up, recovers when space returns, loses nothing acknowledged',
  unavailable: () => (canMakeTinyDisk() ? undefined : 'no unprivileged user+mount namespaces for a tiny tmpfs here'),
  async run(ctx) {
    const cycles = ctx.mode === 'ci' ? 3 : 10;
    const mount = join(ctx.dir, 'disk');
    mkdirSync(mount);
    const disk = await tinyDisk(mount, 96 * 1024 * 1024);
    const random = createSeededRandom(17);
    // No reserve: the agent meets the real ENOSPC from SQLite, the hardest case.
    const rig = agentRig({
      dir: ctx.dir,
      stateDir: mount,
      extraToml: '[queue]\nreserve_free_bytes = 0',
      wrap: disk.wrap,
    });
    const tally = newTally();
    let next = 1;
    let maxRecoveryMs = 0;
    let crashed = 0;
    try {
      await rig.process.start();
      const producers = startProducers(rig, { producers: 3, maxBatch: 50, tally, nextValue: () => next++, random });
      try {
        for (let cycle = 1; cycle <= cycles; cycle++) {
          await moreAcks(tally, 200, 60_000, 'before the disk fills');
          disk.fill(0);
          const refusedBefore = tally.failures.get('DISK_FULL') ?? 0;
          // Full: wait until the agent has refused a run of pushes with the typed error.
          const t0 = performance.now();
          while ((tally.failures.get('DISK_FULL') ?? 0) < refusedBefore + 20) {
            if (!rig.process.isRunning()) break;
            if (performance.now() - t0 > 60_000) throw new Error('the full disk was never reported as DISK_FULL');
            await new Promise((r) => setTimeout(r, 5));
          }
          if (!rig.process.isRunning()) {
            crashed++;
            disk.free();
            await rig.process.start();
          } else {
            disk.free();
          }
          maxRecoveryMs = Math.max(maxRecoveryMs, await moreAcks(tally, 1, 60_000, 'after space returned'));
          ctx.progress(cycle, cycles);
        }
      } finally {
        await producers.stop();
      }
      await rig.process.stop();
      // SQLite resolves the /proc/<pid>/root link and would open the empty directory under the mount, so the
      // state is copied out of the namespace first (the agent is stopped: nothing changes under us).
      const copy = join(ctx.dir, 'state-copy');
      cpSync(disk.hostPath(mount), copy, { recursive: true });
      const stored = readOutbox(copy);
      const { lost, duplicated, moved, distinct } = reconcile(tally, stored);
      const codes = [...tally.failures].map(([c, n]) => `${c} ${n}`).join(', ');
      return {
        scenario: this.name,
        cycles,
        sent: tally.sent,
        acknowledged: tally.acked.size,
        stored: distinct,
        lost,
        duplicated,
        maxRecoveryMs: Math.round(maxRecoveryMs),
        passed: lost === 0 && duplicated === 0 && moved === 0 && crashed === 0,
        note: `refused: ${codes || 'none'}${crashed ? `; the agent died ${crashed}× on a full disk` : ''}`,
      };
    } finally {
      await rig.process.kill9();
      await disk.close();
    }
  },
};
