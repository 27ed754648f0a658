// Per-address limits on failed authentication: after `maxFailures` failures within `windowMs`, the address is
// locked out for `lockoutMs`. The decision is a pure function of the address's record and the time; the limiter
// keeps records in memory, bounded (oldest forgotten first), on the monotonic clock.

import type { Clock } from '../protocol/clock.ts';

export interface FailureRecord {
  /** Monotonic ms of the failures still inside the window, oldest first. */
  readonly failuresMs: readonly number[];
  /** Locked out until this monotonic ms (0: not locked). */
  readonly lockedUntilMs: number;
}

export interface LimiterPolicy {
  readonly maxFailures: number;
  readonly windowMs: number;
  readonly lockoutMs: number;
}

export const EMPTY_RECORD: FailureRecord = Object.freeze({ failuresMs: [], lockedUntilMs: 0 });

/** Milliseconds the address must still wait, 0 when it may try. Pure. */
export function lockoutRemainingMs(record: FailureRecord, nowMs: number): number {
  return Math.max(0, record.lockedUntilMs - nowMs);
}

/** The record after one more failure at `nowMs`. Pure. */
export function recordFailure(record: FailureRecord, nowMs: number, policy: LimiterPolicy): FailureRecord {
  const recent = [...record.failuresMs.filter((t) => nowMs - t < policy.windowMs), nowMs];
  if (recent.length >= policy.maxFailures) return { failuresMs: [], lockedUntilMs: nowMs + policy.lockoutMs };
  return { failuresMs: recent, lockedUntilMs: record.lockedUntilMs };
}

export interface AuthLimiter {
  /** Milliseconds `address` must wait before trying again (0: go ahead). */
  check(address: string): number;
  /** Counts a failure; returns the lockout it caused (0: none). */
  fail(address: string): number;
  /** A success clears the address's failures. */
  succeed(address: string): void;
  /** Addresses currently tracked (for metrics). */
  size(): number;
}

export function createAuthLimiter(options: LimiterPolicy & { clock: Clock; maxAddresses?: number }): AuthLimiter {
  const records = new Map<string, FailureRecord>();
  const maxAddresses = options.maxAddresses ?? 100_000;
  const now = () => options.clock.monotonicMs();
  return {
    check: (address) => lockoutRemainingMs(records.get(address) ?? EMPTY_RECORD, now()),
    fail(address) {
      const next = recordFailure(records.get(address) ?? EMPTY_RECORD, now(), options);
      records.delete(address); // re-insert: Map order is recency order
      records.set(address, next);
      if (records.size > maxAddresses) records.delete(records.keys().next().value as string);
      return lockoutRemainingMs(next, now());
    },
    succeed(address) {
      const r = records.get(address);
      if (r && lockoutRemainingMs(r, now()) === 0) records.delete(address);
    },
    size: () => records.size,
  };
}
