// The last few records of each stream, in memory, for `telemetry.read` and `outpost telemetry tail`
// (the durable copy is the outbox). Long polls wait here for the next record.

export interface RecentRecord {
  readonly seq: number;
  readonly stream: string;
  readonly ts_ms: number;
  readonly value: unknown;
}

export interface RecentTelemetry {
  add(record: RecentRecord): void;
  /** Up to `limit` newest records (of `stream`, or all), with seq > `after`, oldest first. */
  read(q: { stream?: string; limit: number; after?: number }): RecentRecord[];
  /** Resolves when a record with seq > `after` (of `stream`) exists, or after `timeoutMs`, or on abort. */
  waitFor(q: { stream?: string; after: number }, timeoutMs: number, signal: AbortSignal): Promise<void>;
  /** The highest seq seen (0 when none). */
  lastSeq(): number;
}

export function createRecentTelemetry(perStream: number): RecentTelemetry {
  const rings = new Map<string, RecentRecord[]>();
  const waiters = new Set<{ stream?: string; after: number; wake: () => void }>();
  let last = 0;

  const read: RecentTelemetry['read'] = ({ stream, limit, after }) => {
    const pool = stream === undefined ? [...rings.values()].flat() : (rings.get(stream) ?? []);
    const fresh = pool.filter((r) => after === undefined || r.seq > after).sort((a, b) => a.seq - b.seq);
    return fresh.slice(Math.max(0, fresh.length - limit));
  };

  return {
    add(record) {
      let ring = rings.get(record.stream);
      if (!ring) {
        ring = [];
        rings.set(record.stream, ring);
      }
      ring.push(record);
      if (ring.length > perStream) ring.splice(0, ring.length - perStream);
      last = Math.max(last, record.seq);
      for (const w of waiters) {
        if (record.seq > w.after && (w.stream === undefined || w.stream === record.stream)) w.wake();
      }
    },
    read,
    lastSeq: () => last,
    waitFor(q, timeoutMs, signal) {
      if (read({ ...q, limit: 1 }).length > 0 || timeoutMs <= 0 || signal.aborted) return Promise.resolve();
      return new Promise<void>((resolve) => {
        const waiter = {
          ...q,
          wake: () => {
            clearTimeout(timer);
            signal.removeEventListener('abort', waiter.wake);
            waiters.delete(waiter);
            resolve();
          },
        };
        const timer = setTimeout(waiter.wake, timeoutMs);
        signal.addEventListener('abort', waiter.wake, { once: true });
        waiters.add(waiter);
      });
    },
  };
}
