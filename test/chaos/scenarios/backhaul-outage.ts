// The backhaul is down for 24 simulated hours (readings stamped a minute apart over a day) while the agent's queue
// is capped below what the day produces: after the link returns, everything under the cap is delivered, the
// oldest readings beyond it are dropped, and the drop counter says exactly how many.

import { CHAOS_STREAM, newTally } from '../harness/agent-rig.ts';
import { drained, startSystem } from '../harness/system.ts';
import type { Scenario } from '../scenario.ts';

export const backhaulOutage: Scenario = {
  name: 'backhaul down for 24 simulated hours',
  claim: 'after a day offline everything under the queue cap is delivered; drops over the cap counted exactly',
  unavailable: () => undefined,
  async run(ctx) {
    const streams = ctx.mode === 'ci' ? 2 : 8;
    const perDay = streams * 24 * 60; // one reading a minute per stream
    const cap = Math.floor(perDay * 0.7);
    const sys = await startSystem({
      dir: ctx.dir,
      proxy: true,
      agentToml: `[queue]\nmax_records = ${cap}\nmax_bytes = ${256 * 1024 * 1024}`,
    });
    const proxy = sys.proxy!;
    const tally = newTally();
    const client = sys.agent.client(10_000);
    try {
      await sys.agent.process.waitForLine(/link\.state .*state=online/, 30_000, 0);
      const cut = performance.now();
      proxy.setMode({ kind: 'drop' });
      await sys.agent.process.waitForLine(/link\.(closed|state .*state=(backoff|connecting))/, 30_000, cut);
      // A day of readings, one record per request (one queue item each), oldest first, stamped a minute apart.
      const day0 = Date.now() - 86_400_000;
      for (let i = 0; i < perDay; i++) {
        const value = i + 1;
        tally.sent++;
        const r = await client.post<{ seqs: number[] }>('/v1/telemetry', {
          records: [{ stream: CHAOS_STREAM, value, ts_ms: day0 + Math.floor(i / streams) * 60_000 }],
        });
        tally.acked.set(value, r.seqs[0]!);
        if (i % 500 === 0) ctx.progress(i, perDay);
      }
      ctx.progress(perDay, perDay);
      const q = await client.get<{ depth: number; dropped: Record<string, number> }>('/v1/queue');
      const dropped = Object.values(q.dropped).reduce((a, b) => a + b, 0);
      const healed = performance.now();
      proxy.setMode({ kind: 'pass' });
      await drained(sys.agent, 300_000);
      const recoveryMs = performance.now() - healed;
      const stored = await sys.cp.stored(CHAOS_STREAM);
      const values = new Set(stored.map((r) => r.value as number));
      // Expected: exactly the newest `cap` readings, the older ones dropped and counted.
      const expectedDropped = perDay - cap;
      const missingNewest = [...Array(cap).keys()].filter((k) => !values.has(perDay - k)).length;
      const keptOldest = [...values].filter((v) => v <= expectedDropped).length;
      const duplicated = stored.length - values.size;
      const passed = dropped === expectedDropped && missingNewest === 0 && keptOldest === 0 && duplicated === 0;
      return {
        scenario: this.name,
        cycles: 1,
        sent: tally.sent,
        acknowledged: tally.acked.size,
        stored: values.size,
        lost: missingNewest,
        duplicated,
        maxRecoveryMs: Math.round(recoveryMs),
        passed,
        note: `${perDay} readings over 24 h against a cap of ${cap}: ${dropped} dropped by the agent (expected ${expectedDropped}, oldest first${keptOldest ? `; ${keptOldest} old ones kept instead` : ''}); recovery = time to drain after the link returned`,
      };
    } finally {
      await sys.close();
    }
  },
};
