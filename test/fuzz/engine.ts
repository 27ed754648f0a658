// Runs one registered decoder over generated inputs and measures every case: accepted (returned),
// rejected (threw an OutpostError), crashed (threw anything else, oracle assertions included), and over the
// per-case time budget. `assert` mode fails fast with fast-check's shrunk counterexample (npm test);
// `count` mode never stops early and keeps samples of what went wrong (npm run fuzz).

import fc from 'fast-check';
import { isOutpostError } from '../../protocol/errors.ts';

/** What a registry entry's setup() returns: the inputs, the decoder under test, and what a run must show. */
export interface FuzzTarget<I = unknown> {
  readonly inputs: fc.Arbitrary<I>;
  /**
   * Decodes one input: returning means accepted, throwing an OutpostError rejected, anything else is a crash.
   * Oracles (e.g. "what it accepts re-encodes to the same bytes") assert inside and so count as crashes.
   */
  decode(input: I): unknown;
  /** decode returns a promise (awaited; runs as a fast-check async property). */
  readonly async?: boolean;
  /** What every run of ≥ 1,000 cases must show (default: some accepted and some rejected). */
  readonly expect?: { readonly accepts?: boolean; readonly rejects?: boolean; readonly codes?: readonly string[] };
  /** Extra invariants after a run (state bounds, counters); throw to fail. */
  after?(result: FuzzRunResult): void;
  /** Frees what setup() made (temp files, databases). */
  dispose?(): void;
}

export interface FuzzDecoder {
  /** Stable name, e.g. 'rnode.kiss.frame'. */
  readonly name: string;
  /** The source file of the decoder under test. */
  readonly module: string;
  /** Builds the target (keys, sessions, stores); called once per process that runs the decoder. */
  setup(): FuzzTarget<never> | FuzzTarget<unknown>;
}

/** Log2 histogram of per-case µs, 8 buckets per octave from 2^-4 µs up. */
const HIST_OFFSET = 4 * 8;
const HIST_BUCKETS = 30 * 8 + HIST_OFFSET;

export function histogramBucket(us: number): number {
  if (!(us > 0)) return 0;
  return Math.min(HIST_BUCKETS - 1, Math.max(0, Math.floor(Math.log2(us) * 8) + HIST_OFFSET));
}

/** Geometric middle of a bucket, in µs. */
export function bucketMicros(bucket: number): number {
  return 2 ** ((bucket - HIST_OFFSET + 0.5) / 8);
}

export interface FuzzSample {
  /** The input: `hex:…` for bytes, else JSON. */
  readonly input: string;
  readonly detail: string;
}

export interface FuzzRunResult {
  readonly cases: number;
  readonly accepted: number;
  readonly rejected: number;
  /** Untyped throws, oracle failures included. */
  readonly crashes: number;
  /**
   * Cases still over the per-case budget when timed again (fastest of up to three runs); a hang that never ends
   * is caught by the caller's watchdog.
   */
  readonly overBudget: number;
  readonly maxUs: number;
  /** Per-case µs, log2 buckets (mergeable across workers). */
  readonly histogram: readonly number[];
  readonly codes: Readonly<Record<string, number>>;
  readonly crashSamples: readonly FuzzSample[];
  readonly slowSamples: readonly FuzzSample[];
}

export function emptyResult(): FuzzRunResult {
  return {
    cases: 0,
    accepted: 0,
    rejected: 0,
    crashes: 0,
    overBudget: 0,
    maxUs: 0,
    histogram: new Array<number>(HIST_BUCKETS).fill(0),
    codes: {},
    crashSamples: [],
    slowSamples: [],
  };
}

export function mergeResults(a: FuzzRunResult, b: FuzzRunResult): FuzzRunResult {
  const codes: Record<string, number> = { ...a.codes };
  for (const [k, v] of Object.entries(b.codes)) codes[k] = (codes[k] ?? 0) + v;
  return {
    cases: a.cases + b.cases,
    accepted: a.accepted + b.accepted,
    rejected: a.rejected + b.rejected,
    crashes: a.crashes + b.crashes,
    overBudget: a.overBudget + b.overBudget,
    maxUs: Math.max(a.maxUs, b.maxUs),
    histogram: a.histogram.map((n, i) => n + (b.histogram[i] ?? 0)),
    codes,
    crashSamples: [...a.crashSamples, ...b.crashSamples].slice(0, 5),
    slowSamples: [...a.slowSamples, ...b.slowSamples].slice(0, 5),
  };
}

/** Median per-case µs from the histogram (to within one bucket, ±4.4 %). */
export function medianMicros(r: FuzzRunResult): number {
  const half = r.cases / 2;
  let seen = 0;
  for (let i = 0; i < r.histogram.length; i++) {
    seen += r.histogram[i]!;
    if (seen >= half && seen > 0) return bucketMicros(i);
  }
  return 0;
}

export function describeInput(input: unknown): string {
  if (input instanceof Uint8Array) return `hex:${Buffer.from(input).toString('hex')}`;
  try {
    return (
      JSON.stringify(input, (_k, v: unknown) =>
        v instanceof Uint8Array ? `hex:${Buffer.from(v).toString('hex')}` : v,
      ) ?? String(input)
    );
  } catch {
    return String(input);
  }
}

function errorText(e: unknown): string {
  return e instanceof Error ? `${e.name}: ${e.message}` : `non-Error thrown: ${String(e)}`;
}

export interface RunOptions {
  readonly cases: number;
  readonly seed?: number;
  /** A case slower than this counts as over budget (default 250 ms). */
  readonly budgetMs?: number;
  readonly mode: 'assert' | 'count';
  /** Called before each case (the long run stashes the input for its hang watchdog). */
  readonly beforeCase?: (input: unknown) => void;
  /** Called every `progressEvery` cases with the count so far. */
  readonly onProgress?: (cases: number) => void;
  readonly progressEvery?: number;
}

/** Runs `target` over `options.cases` inputs. In assert mode a crash rejects with fast-check's report. */
export async function runTarget(target: FuzzTarget<unknown>, options: RunOptions): Promise<FuzzRunResult> {
  const budgetUs = (options.budgetMs ?? 250) * 1000;
  const every = options.progressEvery ?? 1000;
  let cases = 0;
  let accepted = 0;
  let rejected = 0;
  let crashes = 0;
  let overBudget = 0;
  let maxUs = 0;
  const histogram = new Array<number>(HIST_BUCKETS).fill(0);
  const codes: Record<string, number> = {};
  const crashSamples: FuzzSample[] = [];
  const slowSamples: FuzzSample[] = [];

  const account = (input: unknown, us: number, outcome: { ok: true } | { ok: false; error: unknown }) => {
    cases++;
    histogram[histogramBucket(us)]!++;
    if (us > maxUs) maxUs = us;
    if (us > budgetUs) {
      overBudget++;
      if (slowSamples.length < 5) slowSamples.push({ input: describeInput(input), detail: `${Math.round(us)} µs` });
    }
    if (cases % every === 0) options.onProgress?.(cases);
    if (outcome.ok) {
      accepted++;
      return;
    }
    const e = outcome.error;
    if (isOutpostError(e)) {
      rejected++;
      codes[e.code] = (codes[e.code] ?? 0) + 1;
      return;
    }
    crashes++;
    if (crashSamples.length < 5) crashSamples.push({ input: describeInput(input), detail: errorText(e) });
    if (options.mode === 'assert') throw new Error(`decoder crashed (untyped error): ${errorText(e)}`, { cause: e });
  };

  const params = {
    numRuns: options.cases,
    ...(options.seed !== undefined ? { seed: options.seed } : {}),
    endOnFailure: true,
    includeErrorInReport: true,
  };
  const micros = (t: bigint) => Number(process.hrtime.bigint() - t) / 1000;
  // A case over the budget is timed again (up to twice) and its fastest time counts: on a shared machine a
  // thread can be descheduled or stopped for GC mid-case, which is not the decoder's doing; a real hang repeats.
  const retimeSync = (input: unknown, us: number): number => {
    let best = us;
    for (let i = 0; i < 2 && best > budgetUs; i++) {
      const t = process.hrtime.bigint();
      try {
        target.decode(input);
      } catch {
        // its outcome was accounted the first time
      }
      best = Math.min(best, micros(t));
    }
    return best;
  };
  const retimeAsync = async (input: unknown, us: number): Promise<number> => {
    let best = us;
    for (let i = 0; i < 2 && best > budgetUs; i++) {
      const t = process.hrtime.bigint();
      try {
        await target.decode(input);
      } catch {
        // its outcome was accounted the first time
      }
      best = Math.min(best, micros(t));
    }
    return best;
  };
  if (target.async) {
    await fc.assert(
      fc.asyncProperty(target.inputs, async (input) => {
        options.beforeCase?.(input);
        const t = process.hrtime.bigint();
        let outcome: { ok: true } | { ok: false; error: unknown };
        try {
          await target.decode(input);
          outcome = { ok: true };
        } catch (error) {
          outcome = { ok: false, error };
        }
        const us = micros(t);
        account(input, us > budgetUs ? await retimeAsync(input, us) : us, outcome);
      }),
      params,
    );
  } else {
    fc.assert(
      fc.property(target.inputs, (input) => {
        options.beforeCase?.(input);
        const t = process.hrtime.bigint();
        let outcome: { ok: true } | { ok: false; error: unknown };
        try {
          target.decode(input);
          outcome = { ok: true };
        } catch (error) {
          outcome = { ok: false, error };
        }
        const us = micros(t);
        account(input, us > budgetUs ? retimeSync(input, us) : us, outcome);
      }),
      params,
    );
  }
  options.onProgress?.(cases);
  return { cases, accepted, rejected, crashes, overBudget, maxUs, histogram, codes, crashSamples, slowSamples };
}

/** The expectations of a target over a finished run; returns the failures (empty when all hold). */
export function checkExpectations(target: FuzzTarget<unknown>, r: FuzzRunResult): string[] {
  const problems: string[] = [];
  const e = { accepts: true, rejects: true, ...target.expect };
  if (r.cases >= 1000) {
    if (e.accepts && r.accepted === 0) problems.push('no input was accepted (are the seeds valid?)');
    if (e.rejects && r.rejected === 0) problems.push('no input was rejected');
    if (!e.rejects && r.rejected > 0) problems.push(`${r.rejected} inputs were rejected, none expected`);
    for (const code of e.codes ?? []) if (!r.codes[code]) problems.push(`no input was rejected with ${code}`);
  }
  try {
    target.after?.(r);
  } catch (err) {
    problems.push(errorText(err));
  }
  return problems;
}
