// The gateway's one source of time and timers. In production both follow the system clock; against a
// simulated air that runs N× faster (`time_scale`), monotonic time and every timer run N× faster too, so
// airtime budgets, retries and heartbeats stay consistent with the air. Wall time is never scaled.

import { type Clock, FakeClock, systemClock } from '../protocol/clock.ts';

export interface Timers {
  /** Monotonic ms of the gateway's time (scaled in simulations); equals clock.monotonicMs(). */
  nowMs(): number;
  /** Runs `fn` once after `delayMs` of gateway time; returns a function that cancels it. */
  setTimer(delayMs: number, fn: () => void): () => void;
  /** Resolves after `delayMs` of gateway time, or at once when `signal` aborts. */
  sleep(delayMs: number, signal?: AbortSignal): Promise<void>;
  /** Gateway ms per real ms (1 in production). */
  readonly timeScale: number;
}

export interface GatewayTime {
  /** Wall time is real; monotonic time is scaled. Pass it to drivers and the store. */
  readonly clock: Clock;
  readonly timers: Timers;
}

function sleepWith(setTimer: Timers['setTimer']): Timers['sleep'] {
  return (delayMs, signal) =>
    new Promise<void>((resolve) => {
      if (signal?.aborted) return resolve();
      const onAbort = () => {
        cancel();
        resolve();
      };
      const cancel = setTimer(delayMs, () => {
        signal?.removeEventListener('abort', onAbort);
        resolve();
      });
      signal?.addEventListener('abort', onAbort, { once: true });
    });
}

/** Real time, optionally run `timeScale`× faster for simulations (default 1). */
export function createSystemTime(options: { readonly clock?: Clock; readonly timeScale?: number } = {}): GatewayTime {
  const base = options.clock ?? systemClock;
  const timeScale = options.timeScale ?? 1;
  if (!(timeScale > 0) || !Number.isFinite(timeScale)) throw new RangeError(`time scale must be > 0, got ${timeScale}`);
  const origin = base.monotonicMs();
  const nowMs = () => origin + (base.monotonicMs() - origin) * timeScale;
  const clock: Clock = { nowMs: () => base.nowMs(), monotonicMs: nowMs };
  const setTimer: Timers['setTimer'] = (delayMs, fn) => {
    // Node timers may fire a little early against performance.now(); scaled up that is noticeable, so re-arm.
    const dueMs = nowMs() + Math.max(0, delayMs);
    let t: NodeJS.Timeout;
    let cancelled = false;
    const arm = () => {
      t = setTimeout(
        () => {
          if (cancelled) return;
          if (nowMs() < dueMs) arm();
          else fn();
        },
        Math.max(0, (dueMs - nowMs()) / timeScale),
      );
    };
    arm();
    return () => {
      cancelled = true;
      clearTimeout(t);
    };
  };
  return { clock, timers: { nowMs, setTimer, sleep: sleepWith(setTimer), timeScale } };
}

export interface ManualTime extends GatewayTime {
  readonly clock: FakeClock;
  /** Advances time by `ms`, running due timers in order and letting promise callbacks settle between them. */
  advance(ms: number): Promise<void>;
  /** Timers waiting. */
  pending(): number;
}

const settle = () => new Promise<void>((resolve) => setImmediate(resolve));

/** Time that moves only when advance() is called: for tests and offline simulations (bench). */
export function createManualTime(clock: FakeClock = new FakeClock()): ManualTime {
  let seq = 0;
  const timers: { atMs: number; seq: number; fn: () => void }[] = [];
  const setTimer: Timers['setTimer'] = (delayMs, fn) => {
    const t = { atMs: clock.monotonicMs() + Math.max(0, delayMs), seq: seq++, fn };
    timers.push(t);
    return () => {
      const i = timers.indexOf(t);
      if (i >= 0) timers.splice(i, 1);
    };
  };
  return {
    clock,
    timers: {
      nowMs: () => clock.monotonicMs(),
      setTimer,
      sleep: sleepWith(setTimer),
      timeScale: Number.POSITIVE_INFINITY,
    },
    async advance(ms) {
      const until = clock.monotonicMs() + ms;
      await settle();
      for (;;) {
        let next: (typeof timers)[number] | undefined;
        for (const t of timers) {
          if (t.atMs <= until && (!next || t.atMs < next.atMs || (t.atMs === next.atMs && t.seq < next.seq))) next = t;
        }
        if (!next) break;
        timers.splice(timers.indexOf(next), 1);
        if (next.atMs > clock.monotonicMs()) clock.advance(next.atMs - clock.monotonicMs());
        next.fn();
        await settle();
      }
      if (until > clock.monotonicMs()) clock.advance(until - clock.monotonicMs());
      await settle();
    },
    pending: () => timers.length,
  };
}
