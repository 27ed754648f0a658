// The only way code reads time. Parts receive a Clock; tests pass a FakeClock and never sleep.
// Wall time can jump (no RTC on a Pi); monotonic time cannot, so timers and rate limits use it.

export interface Clock {
  /** Wall-clock milliseconds since the Unix epoch; may jump backwards or forwards. */
  nowMs(): number;
  /** Monotonic milliseconds from an arbitrary origin; never decreases. */
  monotonicMs(): number;
}

export const systemClock: Clock = Object.freeze({
  nowMs: () => Date.now(),
  monotonicMs: () => performance.now(),
});

/** A clock that moves only when told to. `jumpWallMs` models an RTC-less board setting its time. */
export class FakeClock implements Clock {
  #wallMs: number;
  #monoMs: number;

  constructor(startWallMs = Date.UTC(2026, 0, 1), startMonoMs = 1_000) {
    this.#wallMs = startWallMs;
    this.#monoMs = startMonoMs;
  }

  nowMs(): number {
    return this.#wallMs;
  }

  monotonicMs(): number {
    return this.#monoMs;
  }

  /** Advance both clocks by `ms` (≥ 0). */
  advance(ms: number): void {
    if (!(ms >= 0)) throw new RangeError(`advance needs ms >= 0, got ${ms}`);
    this.#wallMs += ms;
    this.#monoMs += ms;
  }

  /** Move only the wall clock, by any amount, as an NTP step or a reboot without RTC would. */
  jumpWallMs(deltaMs: number): void {
    this.#wallMs += deltaMs;
  }
}
