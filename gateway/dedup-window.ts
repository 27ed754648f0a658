// A bounded memory of recently seen keys: "was this (direction, short id, seq) heard in the last N ms?".
// Saves backhaul on mesh rebroadcasts and radio retries; not a security mechanism (the control plane
// deduplicates for real). Bounded in entries: the oldest is forgotten first. Time is passed in.

export interface DedupWindow {
  /** True when `key` was seen within the window before `nowMs`; records it either way. */
  seen(key: string, nowMs: number): boolean;
  /** Entries held now. */
  size(): number;
}

export interface DedupWindowOptions {
  readonly windowMs: number;
  /** Most keys remembered (default 4096). */
  readonly maxEntries?: number;
}

/** A window backed by an insertion-ordered Map: re-seeing a key moves it to the end. */
export function createDedupWindow(options: DedupWindowOptions): DedupWindow {
  const windowMs = options.windowMs;
  const maxEntries = options.maxEntries ?? 4096;
  if (!(windowMs > 0) || !Number.isInteger(maxEntries) || maxEntries < 1) {
    throw new RangeError('dedup window needs windowMs > 0 and maxEntries ≥ 1');
  }
  const lastSeen = new Map<string, number>();
  return {
    seen(key, nowMs) {
      // Expired entries sit at the front (insertion order = time order), so trimming is amortised O(1).
      for (const [k, at] of lastSeen) {
        if (nowMs - at < windowMs) break;
        lastSeen.delete(k);
      }
      const at = lastSeen.get(key);
      const duplicate = at !== undefined && nowMs - at < windowMs;
      lastSeen.delete(key);
      lastSeen.set(key, nowMs);
      if (lastSeen.size > maxEntries) lastSeen.delete(lastSeen.keys().next().value as string);
      return duplicate;
    },
    size: () => lastSeen.size,
  };
}
