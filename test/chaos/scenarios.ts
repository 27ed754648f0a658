// Every chaos scenario, in the order `npm run chaos` runs them.

import type { Scenario } from './scenario.ts';

export const SCENARIOS: readonly Scenario[] = [];
