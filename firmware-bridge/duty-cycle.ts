// Regulatory airtime accounting: EU868 sub-band duty cycles over a sliding 1-hour window and the
// US915 400 ms dwell rule. Pure: the caller passes the time; emulators, drivers and the gateway's
// scheduler all ask the same accountant (RADIO_PROTOCOLS §3.3; docs/radios.md "Airtime law").

import { RadioError } from './errors.ts';
import type { RegionCode } from './radio.ts';

/** One ETSI EN 300 220-2 sub-band of the EU 863–870 MHz band. */
export interface SubBand {
  readonly name: 'K' | 'L' | 'M' | 'N' | 'P' | 'Q';
  readonly lowHz: number;
  readonly highHz: number;
  /** Allowed fraction of transmit time over the observation window (0.01 = 1 %). */
  readonly dutyCycle: number;
  /** Radiated power limit, dBm ERP. */
  readonly maxErpDbm: number;
}

/** EU868 sub-bands with their duty-cycle limits (RADIO_PROTOCOLS §3.3). */
export const EU868_SUB_BANDS: readonly SubBand[] = Object.freeze([
  { name: 'K', lowHz: 863_000_000, highHz: 865_000_000, dutyCycle: 0.001, maxErpDbm: 14 },
  { name: 'L', lowHz: 865_000_000, highHz: 868_000_000, dutyCycle: 0.01, maxErpDbm: 14 },
  { name: 'M', lowHz: 868_000_000, highHz: 868_600_000, dutyCycle: 0.01, maxErpDbm: 14 },
  { name: 'N', lowHz: 868_700_000, highHz: 869_200_000, dutyCycle: 0.001, maxErpDbm: 14 },
  { name: 'P', lowHz: 869_400_000, highHz: 869_650_000, dutyCycle: 0.1, maxErpDbm: 27 },
  { name: 'Q', lowHz: 869_700_000, highHz: 870_000_000, dutyCycle: 0.01, maxErpDbm: 14 },
] as const);

/** ETSI observation window for the duty cycle: one hour. */
export const DUTY_CYCLE_WINDOW_MS = 3_600_000;
/** US 902–928 MHz: longest single transmission on a narrow (< 500 kHz) channel. */
export const US915_DWELL_LIMIT_MS = 400;
export const US915_LOW_HZ = 902_000_000;
export const US915_HIGH_HZ = 928_000_000;
/** Channels at least this wide are digitally modulated systems, exempt from the dwell rule. */
export const US915_DWELL_EXEMPT_BANDWIDTH_HZ = 500_000;

/**
 * The EU868 sub-band whose edges contain the whole channel [freq − bw/2, freq + bw/2], or undefined when
 * the channel lies outside every sub-band or straddles two (both are unlawful to use as one channel).
 */
export function eu868SubBand(freqHz: number, bandwidthHz = 0): SubBand | undefined {
  const low = freqHz - bandwidthHz / 2;
  const high = freqHz + bandwidthHz / 2;
  return EU868_SUB_BANDS.find((b) => low >= b.lowHz && high <= b.highHz);
}

export type AirtimeDecision =
  | {
      readonly allowed: true;
      /** Rule that was applied ('none' for region ANY). */
      readonly rule: 'duty-cycle' | 'dwell-time' | 'none';
      readonly subBand?: SubBand['name'];
    }
  | {
      readonly allowed: false;
      readonly reason: 'duty-cycle' | 'dwell-time' | 'out-of-band';
      /** How long until this transmission would be allowed; absent when it never will be. */
      readonly retryAfterMs?: number;
      readonly message: string;
    };

export interface AirtimeUsage {
  /** All transmit time recorded, ms. */
  readonly totalMs: number;
  /** Transmit time inside the window ending now, all sub-bands together, ms. */
  readonly windowMs: number;
  /** Largest fraction of any sub-band's budget used in the window, 0..1+ (0 where no duty cycle applies). */
  readonly budgetUsed: number;
}

/** A transmission, as the channel it used and its time span. */
export interface DutyCycleAccountant {
  readonly region: RegionCode;
  /** May a transmission of `airtimeMs` start at `nowMs` on this channel? Throws AIRTIME_INVALID for bad numbers. */
  canTransmit(freqHz: number, airtimeMs: number, nowMs: number, bandwidthHz?: number): AirtimeDecision;
  /** Records a transmission that started at `nowMs`. */
  record(freqHz: number, airtimeMs: number, nowMs: number, bandwidthHz?: number): void;
  /** Earliest time ≥ nowMs at which canTransmit allows it; undefined when it never will (too long, out of band). */
  nextAllowedAtMs(freqHz: number, airtimeMs: number, nowMs: number, bandwidthHz?: number): number | undefined;
  /** Transmit time on this channel's sub-band inside the window ending at nowMs. */
  usedMs(freqHz: number, nowMs: number, bandwidthHz?: number): number;
  /** The sub-band's budget per window in ms (Infinity where no duty cycle applies). */
  budgetMs(freqHz: number, bandwidthHz?: number): number;
  usage(nowMs: number): AirtimeUsage;
}

export interface DutyCycleOptions {
  readonly region: RegionCode;
  /** Observation window (default one hour). */
  readonly windowMs?: number;
  /**
   * Assumed channel width when a call passes none: 0 looks at the centre frequency only (EU868), and
   * for US915 an unknown width is treated as narrow, so the dwell rule applies.
   */
  readonly defaultBandwidthHz?: number;
}

interface Transmission {
  readonly key: string;
  readonly startMs: number;
  readonly endMs: number;
}

type Channel =
  | { readonly kind: 'budget'; readonly key: string; readonly budgetMs: number; readonly subBand: SubBand['name'] }
  | { readonly kind: 'dwell'; readonly key: string; readonly limitMs: number }
  | { readonly kind: 'free'; readonly key: string }
  | { readonly kind: 'out-of-band'; readonly message: string };

function checkNumbers(freqHz: number, airtimeMs: number, nowMs: number, bandwidthHz: number): void {
  const bad = !Number.isFinite(freqHz) || freqHz <= 0 || !Number.isFinite(airtimeMs) || airtimeMs < 0;
  if (bad || !Number.isFinite(nowMs) || !Number.isFinite(bandwidthHz) || bandwidthHz < 0) {
    throw new RadioError('AIRTIME_INVALID', 'duty-cycle accounting needs finite, non-negative numbers', {
      details: { freqHz, airtimeMs, nowMs, bandwidthHz },
    });
  }
}

/** Creates an accountant for one transmitter. Pure: time comes from the caller, nothing is scheduled. */
export function createDutyCycleAccountant(options: DutyCycleOptions): DutyCycleAccountant {
  const windowMs = options.windowMs ?? DUTY_CYCLE_WINDOW_MS;
  if (!(windowMs > 0)) throw new RadioError('AIRTIME_INVALID', `window must be > 0 ms, got ${windowMs}`);
  const region = options.region;
  const defaultBw = options.defaultBandwidthHz ?? 0;
  const records: Transmission[] = [];
  let totalMs = 0;

  function channel(freqHz: number, bandwidthHz: number): Channel {
    if (region === 'EU868') {
      const band = eu868SubBand(freqHz, bandwidthHz);
      if (!band) {
        return {
          kind: 'out-of-band',
          message: `${freqHz / 1e6} MHz with ${bandwidthHz / 1e3} kHz is not inside one EU868 sub-band (K..Q)`,
        };
      }
      return { kind: 'budget', key: band.name, budgetMs: band.dutyCycle * windowMs, subBand: band.name };
    }
    if (region === 'US915') {
      const low = freqHz - bandwidthHz / 2;
      const high = freqHz + bandwidthHz / 2;
      if (low < US915_LOW_HZ || high > US915_HIGH_HZ) {
        return { kind: 'out-of-band', message: `${freqHz / 1e6} MHz is outside US 902–928 MHz` };
      }
      if (bandwidthHz >= US915_DWELL_EXEMPT_BANDWIDTH_HZ) return { kind: 'free', key: 'US915' };
      return { kind: 'dwell', key: 'US915', limitMs: US915_DWELL_LIMIT_MS };
    }
    return { kind: 'free', key: 'ANY' };
  }

  /** Airtime of `key` overlapping [fromMs, ∞). */
  function overlapFrom(key: string, fromMs: number): number {
    let sum = 0;
    for (const r of records) {
      if (r.key === key && r.endMs > fromMs) sum += r.endMs - Math.max(r.startMs, fromMs);
    }
    return sum;
  }

  function prune(nowMs: number): void {
    // A record can matter only while it overlaps some window that ends at or after now.
    let keep = 0;
    for (const r of records) if (r.endMs > nowMs - windowMs) records[keep++] = r;
    records.length = keep;
  }

  // The busiest window containing a transmission [now, now+a] is the one ending at now+a (the window's
  // sum only grows while it slides over the new transmission), so one check covers all windows:
  // g(L) = airtime overlapping [L, ∞) with L = now + a − window must leave room for a. g falls
  // piecewise linearly as L moves right, with slope = number of transmissions covering L.
  function nextAllowed(ch: Channel & { kind: 'budget' }, airtimeMs: number, nowMs: number): number | undefined {
    const target = ch.budgetMs - airtimeMs;
    if (target < 0) return undefined;
    const from = nowMs + airtimeMs - windowMs;
    let g = overlapFrom(ch.key, from);
    if (g <= target + 1e-9) return nowMs;
    const events: { atMs: number; delta: number }[] = [];
    let active = 0;
    for (const r of records) {
      if (r.key !== ch.key || r.endMs <= from) continue;
      if (r.startMs <= from) active++;
      else events.push({ atMs: r.startMs, delta: 1 });
      events.push({ atMs: r.endMs, delta: -1 });
    }
    events.sort((x, y) => x.atMs - y.atMs);
    let at = from;
    for (const ev of events) {
      const next = g - active * (ev.atMs - at);
      if (next <= target + 1e-9) {
        const l = active > 0 ? at + (g - target) / active : ev.atMs;
        // Whole ms, rounded up, so that canTransmit at the returned time allows it despite float error.
        return Math.max(nowMs, Math.ceil(Math.min(l, ev.atMs) + windowMs - airtimeMs - 1e-9));
      }
      g = next;
      at = ev.atMs;
      active += ev.delta;
    }
    return Math.ceil(at + windowMs - airtimeMs);
  }

  const accountant: DutyCycleAccountant = {
    region,
    canTransmit(freqHz, airtimeMs, nowMs, bandwidthHz = defaultBw) {
      checkNumbers(freqHz, airtimeMs, nowMs, bandwidthHz);
      const ch = channel(freqHz, bandwidthHz);
      switch (ch.kind) {
        case 'out-of-band':
          return { allowed: false, reason: 'out-of-band', message: ch.message };
        case 'free':
          return { allowed: true, rule: 'none' };
        case 'dwell':
          if (airtimeMs <= ch.limitMs) return { allowed: true, rule: 'dwell-time' };
          return {
            allowed: false,
            reason: 'dwell-time',
            message: `${airtimeMs.toFixed(1)} ms on air exceeds the ${ch.limitMs} ms US915 dwell limit`,
          };
        case 'budget': {
          const at = nextAllowed(ch, airtimeMs, nowMs);
          if (at === nowMs) return { allowed: true, rule: 'duty-cycle', subBand: ch.subBand };
          const pct = (ch.budgetMs / windowMs) * 100;
          if (at === undefined) {
            return {
              allowed: false,
              reason: 'duty-cycle',
              message: `${airtimeMs.toFixed(1)} ms exceeds the whole ${pct} % budget of sub-band ${ch.subBand}`,
            };
          }
          return {
            allowed: false,
            reason: 'duty-cycle',
            retryAfterMs: at - nowMs,
            message: `sub-band ${ch.subBand} (${pct} %) budget is used up for another ${Math.ceil(at - nowMs)} ms`,
          };
        }
      }
    },
    record(freqHz, airtimeMs, nowMs, bandwidthHz = defaultBw) {
      checkNumbers(freqHz, airtimeMs, nowMs, bandwidthHz);
      const ch = channel(freqHz, bandwidthHz);
      totalMs += airtimeMs;
      prune(nowMs);
      records.push({
        key: ch.kind === 'out-of-band' ? 'out-of-band' : ch.key,
        startMs: nowMs,
        endMs: nowMs + airtimeMs,
      });
    },
    nextAllowedAtMs(freqHz, airtimeMs, nowMs, bandwidthHz = defaultBw) {
      const d = accountant.canTransmit(freqHz, airtimeMs, nowMs, bandwidthHz);
      if (d.allowed) return nowMs;
      return d.retryAfterMs === undefined ? undefined : nowMs + d.retryAfterMs;
    },
    usedMs(freqHz, nowMs, bandwidthHz = defaultBw) {
      checkNumbers(freqHz, 0, nowMs, bandwidthHz);
      const ch = channel(freqHz, bandwidthHz);
      return ch.kind === 'out-of-band' ? 0 : windowSum(ch.key, nowMs);
    },
    budgetMs(freqHz, bandwidthHz = defaultBw) {
      checkNumbers(freqHz, 0, 0, bandwidthHz);
      const ch = channel(freqHz, bandwidthHz);
      if (ch.kind === 'budget') return ch.budgetMs;
      return ch.kind === 'out-of-band' ? 0 : Number.POSITIVE_INFINITY;
    },
    usage(nowMs) {
      let windowTotal = 0;
      let budgetUsed = 0;
      for (const key of new Set(records.map((r) => r.key))) {
        const used = windowSum(key, nowMs);
        windowTotal += used;
        const band = EU868_SUB_BANDS.find((b) => b.name === key);
        if (region === 'EU868' && band) budgetUsed = Math.max(budgetUsed, used / (band.dutyCycle * windowMs));
      }
      return { totalMs, windowMs: windowTotal, budgetUsed };
    },
  };

  /** Airtime of `key` inside [now − window, now]. */
  function windowSum(key: string, nowMs: number): number {
    let sum = 0;
    for (const r of records) {
      if (r.key !== key) continue;
      const s = Math.max(r.startMs, nowMs - windowMs);
      const e = Math.min(r.endMs, nowMs);
      if (e > s) sum += e - s;
    }
    return sum;
  }

  return accountant;
}
