// Token bucket for replay rate limits: after an outage a sender drains its backlog no faster than the
// link (or the airtime law) allows. The arithmetic is pure; `createTokenBucket` reads a Clock's monotonic time.

import type { Clock } from '../protocol/clock.ts';
import { StoreError, shown } from './errors.ts';

export interface TokenBucketConfig {
  /** Tokens added per second (items or bytes, as the caller counts). */
  readonly ratePerSec: number;
  /** Most tokens the bucket holds: the largest burst. */
  readonly burst: number;
}

export interface TokenBucketState {
  readonly tokens: number;
  /** Monotonic ms of the last refill. */
  readonly atMs: number;
}

function checkConfig(config: TokenBucketConfig): void {
  if (
    !(config.ratePerSec > 0) ||
    !Number.isFinite(config.ratePerSec) ||
    !(config.burst > 0) ||
    !Number.isFinite(config.burst)
  ) {
    throw new StoreError('STORE_BAD_ARGUMENT', 'token bucket needs a positive finite ratePerSec and burst');
  }
}

/** A full bucket at `nowMs`. */
export function initialBucket(config: TokenBucketConfig, nowMs: number): TokenBucketState {
  checkConfig(config);
  return { tokens: config.burst, atMs: nowMs };
}

/** The state refilled up to `nowMs` (time never runs backwards here: an earlier `nowMs` adds nothing). */
export function refill(state: TokenBucketState, config: TokenBucketConfig, nowMs: number): TokenBucketState {
  const elapsed = Math.max(0, nowMs - state.atMs);
  return {
    tokens: Math.min(config.burst, state.tokens + (elapsed * config.ratePerSec) / 1000),
    atMs: Math.max(state.atMs, nowMs),
  };
}

/**
 * Tries to take `n` tokens at `nowMs`. Returns the new state, whether it succeeded, and when it did not,
 * `waitMs`: how long until `n` tokens will be there (Infinity when `n` exceeds the burst).
 */
export function take(
  state: TokenBucketState,
  config: TokenBucketConfig,
  n: number,
  nowMs: number,
): { state: TokenBucketState; ok: boolean; waitMs: number } {
  if (typeof n !== 'number' || !(n >= 0) || !Number.isFinite(n)) {
    throw new StoreError('STORE_BAD_ARGUMENT', `cannot take ${shown(n)} tokens`);
  }
  const s = refill(state, config, nowMs);
  if (s.tokens >= n) return { state: { tokens: s.tokens - n, atMs: s.atMs }, ok: true, waitMs: 0 };
  const waitMs = n > config.burst ? Number.POSITIVE_INFINITY : Math.ceil(((n - s.tokens) * 1000) / config.ratePerSec);
  return { state: s, ok: false, waitMs };
}

export interface TokenBucket {
  /** Takes `n` tokens (default 1) if available now. */
  tryTake(n?: number): boolean;
  /** Milliseconds until `n` tokens are available (0 when they are; Infinity when `n` exceeds the burst). */
  waitMs(n?: number): number;
  /** Tokens available now. */
  available(): number;
}

/** A bucket that starts full and refills with `clock.monotonicMs()` (immune to wall-clock jumps). */
export function createTokenBucket(config: TokenBucketConfig & { clock: Clock }): TokenBucket {
  const cfg = { ratePerSec: config.ratePerSec, burst: config.burst };
  let state = initialBucket(cfg, config.clock.monotonicMs());
  return {
    tryTake: (n = 1) => {
      const r = take(state, cfg, n, config.clock.monotonicMs());
      state = r.state;
      return r.ok;
    },
    waitMs: (n = 1) => {
      const r = take(state, cfg, n, config.clock.monotonicMs());
      return r.ok ? 0 : r.waitMs;
    },
    available: () => refill(state, cfg, config.clock.monotonicMs()).tokens,
  };
}
