// Reconnect delays: exponential with full jitter and a cap (AWS Architecture Blog, "Exponential Backoff And
// Jitter"), so a fleet that lost its control plane does not come back in lockstep. Pure; randomness is passed in.

export interface BackoffPolicy {
  /** Delay scale of the first retry. */
  readonly baseMs: number;
  /** Largest delay. */
  readonly capMs: number;
  /** A session that lasted this long resets the attempt count. */
  readonly stableMs: number;
}

export const DEFAULT_BACKOFF: BackoffPolicy = Object.freeze({ baseMs: 1_000, capMs: 60_000, stableMs: 60_000 });

/**
 * The delay before reconnect attempt `attempt` (0 = the first after a drop): uniform in
 * [0, min(cap, base · 2^attempt)], never below 1 % of that ceiling so a tight loop cannot form. `random` ∈ [0, 1).
 */
export function backoffDelayMs(attempt: number, policy: BackoffPolicy, random: number): number {
  const ceiling = Math.min(policy.capMs, policy.baseMs * 2 ** Math.min(Math.max(0, attempt), 30));
  const r = Math.min(Math.max(random, 0), 1);
  return Math.max(Math.round(ceiling * r), Math.ceil(ceiling / 100));
}

/** The attempt count after a session of `sessionMs` ended (null: the connection never opened). Pure. */
export function nextAttempt(attempt: number, sessionMs: number | null, policy: BackoffPolicy): number {
  return sessionMs !== null && sessionMs >= policy.stableMs ? 0 : attempt + 1;
}
