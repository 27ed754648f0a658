// The session registry of one process: a map from device id to its live session. A multi-host deployment puts a
// Durable Object (or similar) per device behind the same SessionRegistry interface instead.

import type { SessionHandle, SessionRegistry } from './ports.ts';

export function createMemorySessionRegistry(): SessionRegistry {
  const byDevice = new Map<string, SessionHandle>();
  const byTenant = new Map<string, Set<SessionHandle>>();
  return {
    register(session) {
      const previous = byDevice.get(session.device);
      if (previous) byTenant.get(previous.tid)?.delete(previous);
      byDevice.set(session.device, session);
      let set = byTenant.get(session.tid);
      if (!set) {
        set = new Set();
        byTenant.set(session.tid, set);
      }
      set.add(session);
      return previous === session ? undefined : previous;
    },
    unregister(session) {
      if (byDevice.get(session.device) === session) byDevice.delete(session.device);
      const set = byTenant.get(session.tid);
      set?.delete(session);
      if (set?.size === 0) byTenant.delete(session.tid);
    },
    get: (device) => byDevice.get(device),
    online: (tid) => [...(byTenant.get(tid) ?? [])],
    all: () => [...byDevice.values()],
    count: () => byDevice.size,
  };
}
