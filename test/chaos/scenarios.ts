// Every chaos scenario, in the order `npm run chaos` runs them.

import type { Scenario } from './scenario.ts';
import { agentClockJumps } from './scenarios/agent-clock-jumps.ts';
import { agentDiskFull } from './scenarios/agent-disk-full.ts';
import { agentKill9 } from './scenarios/agent-kill9.ts';

export const SCENARIOS: readonly Scenario[] = [agentKill9, agentDiskFull, agentClockJumps];
