// Every chaos scenario, in the order `npm run chaos` runs them.

import type { Scenario } from './scenario.ts';
import { agentKill9 } from './scenarios/agent-kill9.ts';

export const SCENARIOS: readonly Scenario[] = [agentKill9];
