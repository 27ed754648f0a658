// Fan-out of driver events (status changes, received packets) to any number of async iterators,
// each with its own bounded buffer so a slow consumer cannot grow memory without limit.

export interface Broadcast<T> {
  /** Delivers `value` to every current subscriber. No-op after close(). */
  publish(value: T): void;
  /**
   * Yields every value published after the call (and `first`, if given, before them) until close()
   * or until the consumer stops iterating. When a consumer falls `maxBuffered` values behind, the
   * oldest are dropped and counted in dropped().
   */
  subscribe(first?: () => T): AsyncIterable<T>;
  close(): void;
  dropped(): number;
}

interface Subscriber<T> {
  readonly buffer: T[];
  wake: (() => void) | undefined;
}

/** Creates a broadcast with a per-subscriber buffer limit (default 1024). */
export function createBroadcast<T>(maxBuffered = 1024): Broadcast<T> {
  const subscribers = new Set<Subscriber<T>>();
  let closed = false;
  let droppedCount = 0;
  return {
    publish(value) {
      if (closed) return;
      for (const s of subscribers) {
        s.buffer.push(value);
        if (s.buffer.length > maxBuffered) {
          s.buffer.shift();
          droppedCount++;
        }
        s.wake?.();
      }
    },
    subscribe(first) {
      const s: Subscriber<T> = { buffer: [], wake: undefined };
      if (!closed) {
        if (first) s.buffer.push(first());
        subscribers.add(s);
      }
      return {
        [Symbol.asyncIterator]: () => ({
          async next(): Promise<IteratorResult<T>> {
            for (;;) {
              if (s.buffer.length > 0) return { value: s.buffer.shift()!, done: false };
              if (closed || !subscribers.has(s)) return { value: undefined, done: true };
              await new Promise<void>((resolve) => {
                s.wake = resolve;
              });
              s.wake = undefined;
            }
          },
          async return(): Promise<IteratorResult<T>> {
            subscribers.delete(s);
            s.buffer.length = 0;
            s.wake?.();
            return { value: undefined, done: true };
          },
        }),
      };
    },
    close() {
      if (closed) return;
      closed = true;
      for (const s of subscribers) s.wake?.();
    },
    dropped: () => droppedCount,
  };
}
