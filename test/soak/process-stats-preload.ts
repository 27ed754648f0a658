// Loaded with `node --import` (through NODE_OPTIONS, so every Outpost process of a soak carries it) into a daemon
// under soak: appends one JSON line of its own process figures (RSS, V8 heap, external memory, active handles) to
// OUTPOST_SOAK_STATS_DIR/<pid>.jsonl every OUTPOST_SOAK_STATS_INTERVAL_MS (default 10 s), without touching the
// daemon's code. The line carries the command line so the soak can tell the control plane from an agent.

import { appendFileSync } from 'node:fs';
import { join } from 'node:path';

const dir = process.env.OUTPOST_SOAK_STATS_DIR;
if (dir) {
  const file = join(dir, `${process.pid}.jsonl`);
  const every = Number(process.env.OUTPOST_SOAK_STATS_INTERVAL_MS) || 10_000;
  const argv = process.argv.slice(2);
  // With --expose-gc (the soak sets it), a full collection first: the heap figure is then what is live, not where
  // the collector happened to be in its cycle.
  const collect = (globalThis as { gc?: () => void }).gc;
  const sample = () => {
    collect?.();
    const m = process.memoryUsage();
    const resources = process.getActiveResourcesInfo();
    const line = {
      ts: Date.now(),
      pid: process.pid,
      argv,
      rssBytes: m.rss,
      heapUsedBytes: m.heapUsed,
      heapTotalBytes: m.heapTotal,
      externalBytes: m.external,
      arrayBuffersBytes: m.arrayBuffers,
      handles: resources.length,
      resources: Object.fromEntries([...new Set(resources)].map((r) => [r, resources.filter((x) => x === r).length])),
    };
    try {
      appendFileSync(file, `${JSON.stringify(line)}\n`);
    } catch {
      // a full disk (a soak may run one) must not take the daemon down with it
    }
  };
  setInterval(sample, every).unref();
  sample();
}
