// Loaded with `node --import` into a daemon under soak: appends one JSON line of its own process figures
// (RSS, V8 heap, external memory, active handles and requests) to OUTPOST_SOAK_STATS_FILE every
// OUTPOST_SOAK_STATS_INTERVAL_MS (default 10 s), without touching the daemon's code.

import { appendFileSync } from 'node:fs';

const file = process.env.OUTPOST_SOAK_STATS_FILE;
if (file) {
  const every = Number(process.env.OUTPOST_SOAK_STATS_INTERVAL_MS) || 10_000;
  const sample = () => {
    const m = process.memoryUsage();
    const resources = process.getActiveResourcesInfo();
    const line = {
      ts: Date.now(),
      pid: process.pid,
      rssBytes: m.rss,
      heapUsedBytes: m.heapUsed,
      heapTotalBytes: m.heapTotal,
      externalBytes: m.external,
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
