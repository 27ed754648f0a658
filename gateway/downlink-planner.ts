// Chooses the next downlink transmission: pure, so every rule is table-tested without radios. Per radio the
// order is strict priority (0 first), then due time; a message goes out whole (all its fragments back to
// back) only when the radio's airtime law allows all of it now. A device is reached through the radio that
// heard it last; one never heard is tried on each capable radio in turn. Times are ms relative to now.

export interface PlanCandidate {
  readonly id: string;
  readonly shortIdHex: string;
  readonly priority: number;
  /** ms until the next attempt is due (≤ 0: due now). */
  readonly dueInMs: number;
  /** Sizes of the frames of the message, in order. */
  readonly frameBytes: readonly number[];
  /** Attempts so far (picks the radio for a device never heard). */
  readonly attempts: number;
}

/** What the law says about sending these frames back to back on a radio now. */
export type AirtimeVerdict =
  | { readonly allowed: true }
  | {
      readonly allowed: false;
      readonly reason: 'duty-cycle' | 'dwell-time' | 'out-of-band';
      /** ms until allowed; absent when it never will be. */
      readonly retryAfterMs?: number;
    };

export interface PlanRadio {
  readonly name: string;
  /** Ready and not transmitting now. */
  readonly idle: boolean;
  readonly ready: boolean;
  readonly maxFrameBytes: number;
  /** Airtime of each frame on this radio; undefined while the radio's modulation is unknown. */
  airtimesMs(frameBytes: readonly number[]): number[] | undefined;
  verdict(airtimesMs: readonly number[]): AirtimeVerdict;
}

export type PlanStep =
  | { readonly kind: 'send'; readonly id: string; readonly radio: string; readonly airtimesMs: readonly number[] }
  | {
      readonly kind: 'fail';
      readonly id: string;
      readonly reason: 'too_large' | 'dwell_time' | 'duty_cycle' | 'out_of_band';
    }
  | { readonly kind: 'wait'; readonly inMs: number }
  | { readonly kind: 'idle' };

export interface PlanInput {
  readonly candidates: readonly PlanCandidate[];
  readonly radios: readonly PlanRadio[];
  /** Radio that last heard each device. */
  readonly lastHeardOn: (shortIdHex: string) => string | undefined;
}

const REFUSAL: Record<'duty-cycle' | 'dwell-time' | 'out-of-band', 'duty_cycle' | 'dwell_time' | 'out_of_band'> = {
  'duty-cycle': 'duty_cycle',
  'dwell-time': 'dwell_time',
  'out-of-band': 'out_of_band',
};

function byPriority(a: PlanCandidate, b: PlanCandidate): number {
  return a.priority - b.priority || a.dueInMs - b.dueInMs || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
}

/** The radio a candidate goes out on, or undefined when no configured radio can carry it. */
export function radioFor(c: PlanCandidate, input: PlanInput): PlanRadio | undefined {
  const largest = Math.max(...c.frameBytes);
  const capable = input.radios.filter((r) => r.maxFrameBytes >= largest);
  if (capable.length === 0) return undefined;
  const heard = input.lastHeardOn(c.shortIdHex);
  const preferred = capable.find((r) => r.name === heard);
  if (preferred) return preferred;
  return capable[c.attempts % capable.length];
}

/** The next step: send one message, fail one that can never go, wait, or nothing to do. */
export function planDownlink(input: PlanInput): PlanStep {
  const claimed = new Set<string>();
  let waitMs = Number.POSITIVE_INFINITY;
  for (const c of [...input.candidates].sort(byPriority)) {
    const radio = radioFor(c, input);
    if (!radio) return { kind: 'fail', id: c.id, reason: 'too_large' };
    if (claimed.has(radio.name)) continue;
    if (c.dueInMs > 0) {
      // Not due yet: it does not hold the radio; later candidates may use it meanwhile.
      waitMs = Math.min(waitMs, c.dueInMs);
      continue;
    }
    claimed.add(radio.name);
    if (!radio.ready || !radio.idle) continue; // woken by the radio's status or its send finishing
    const airtimes = radio.airtimesMs(c.frameBytes);
    if (airtimes === undefined) continue;
    const v = radio.verdict(airtimes);
    if (v.allowed) return { kind: 'send', id: c.id, radio: radio.name, airtimesMs: airtimes };
    if (v.retryAfterMs === undefined) return { kind: 'fail', id: c.id, reason: REFUSAL[v.reason] };
    waitMs = Math.min(waitMs, v.retryAfterMs);
  }
  return Number.isFinite(waitMs) ? { kind: 'wait', inMs: Math.max(0, waitMs) } : { kind: 'idle' };
}
