// What a chaos scenario is: real processes on loopback, bounded in time, stopping by itself, reporting one
// results row. Scenarios live in test/chaos/scenarios/ and are listed in test/chaos/scenarios.ts.

import type { ChaosRow } from './harness/report.ts';

export interface ScenarioContext {
  /** 'ci': the short variant run by npm test; 'full': npm run chaos. */
  readonly mode: 'ci' | 'full';
  /** A fresh directory removed after the scenario. */
  readonly dir: string;
  /** A line for people (stderr). */
  log(line: string): void;
  /** Progress of the scenario's cycles. */
  progress(done: number, total: number): void;
}

export interface Scenario {
  readonly name: string;
  /** What the scenario proves, one sentence. */
  readonly claim: string;
  /**
   * A defect this scenario finds that is reported to its part and not fixed yet: the short CI variant is then
   * a `todo` (its failure shown, not failing the suite); `npm run chaos` still fails and says why.
   */
  readonly knownIssue?: string;
  /** False: left out of the short variants in npm test (run by `npm run chaos` only). Default true. */
  readonly inCi?: boolean;
  /** Undefined when it can run here, else why not (missing tool, missing part). */
  unavailable(): string | undefined;
  /** Runs to completion within its own time bound and returns its row (passed or not). */
  run(ctx: ScenarioContext): Promise<ChaosRow>;
}
