// Time for the simulated air: either real time run N× faster (emulators on ptys, long simulations),
// or virtual time that moves only when a test advances it. All values are simulated ("air") ms.

import { type Clock, systemClock } from '../../protocol/clock.ts';
import { RadioError } from '../errors.ts';

export interface AirScheduler {
  /** Simulated monotonic ms. */
  nowMs(): number;
  /** Runs `fn` once after `delayMs` simulated ms; returns a function that cancels it. */
  setTimer(delayMs: number, fn: () => void): () => void;
  /** Simulated ms per real ms (1 = real time). */
  readonly timeScale: number;
}

export interface RealtimeSchedulerOptions {
  readonly clock?: Clock;
  /** Run the air this many times faster than real time (default 1). */
  readonly timeScale?: number;
}

/** Real timers, with simulated time = real monotonic time × timeScale since creation. */
export function createRealtimeScheduler(options: RealtimeSchedulerOptions = {}): AirScheduler {
  const clock = options.clock ?? systemClock;
  const timeScale = options.timeScale ?? 1;
  if (!(timeScale > 0) || !Number.isFinite(timeScale)) {
    throw new RadioError('RADIO_PARAMS_INVALID', `time scale must be a positive number, got ${timeScale}`);
  }
  const origin = clock.monotonicMs();
  const nowMs = () => (clock.monotonicMs() - origin) * timeScale;
  return {
    timeScale,
    nowMs,
    setTimer(delayMs, fn) {
      // Node timers have 1 ms granularity and may fire a little early against performance.now();
      // scaled up, that would be seconds of air time, so a timer re-arms until its air time has come.
      const dueMs = nowMs() + Math.max(0, delayMs);
      let t: NodeJS.Timeout;
      const arm = () => {
        t = setTimeout(
          () => {
            if (nowMs() < dueMs) arm();
            else fn();
          },
          Math.max(0, (dueMs - nowMs()) / timeScale),
        );
      };
      arm();
      return () => clearTimeout(t);
    },
  };
}

export interface VirtualScheduler extends AirScheduler {
  /** Runs every timer due within `ms`, in time order, letting promise callbacks settle between timers. */
  advance(ms: number): Promise<void>;
  /** Runs timers until none is left or `limitMs` of simulated time has passed. */
  runUntilIdle(limitMs?: number): Promise<void>;
  /** Number of timers waiting. */
  pending(): number;
}

interface Timer {
  readonly atMs: number;
  readonly seq: number;
  readonly fn: () => void;
}

const settle = () => new Promise<void>((resolve) => setImmediate(resolve));

/** Virtual time for deterministic tests and offline simulations: nothing happens until advance(). */
export function createVirtualScheduler(startMs = 0): VirtualScheduler {
  let now = startMs;
  let seq = 0;
  const timers: Timer[] = [];
  const nextDue = (untilMs: number): Timer | undefined => {
    let best: Timer | undefined;
    for (const t of timers) {
      if (t.atMs <= untilMs && (!best || t.atMs < best.atMs || (t.atMs === best.atMs && t.seq < best.seq))) best = t;
    }
    return best;
  };
  const runUntil = async (untilMs: number) => {
    await settle();
    for (;;) {
      const t = nextDue(untilMs);
      if (!t) break;
      timers.splice(timers.indexOf(t), 1);
      now = Math.max(now, t.atMs);
      t.fn();
      await settle();
    }
    now = Math.max(now, untilMs);
  };
  return {
    timeScale: Number.POSITIVE_INFINITY,
    nowMs: () => now,
    setTimer(delayMs, fn) {
      const t: Timer = { atMs: now + Math.max(0, delayMs), seq: seq++, fn };
      timers.push(t);
      return () => {
        const i = timers.indexOf(t);
        if (i >= 0) timers.splice(i, 1);
      };
    },
    advance: (ms) => runUntil(now + ms),
    async runUntilIdle(limitMs = Number.POSITIVE_INFINITY) {
      const until = now + limitMs;
      await settle();
      while (timers.length > 0) {
        const t = nextDue(until);
        if (!t) break;
        await runUntil(t.atMs);
      }
    },
    pending: () => timers.length,
  };
}
