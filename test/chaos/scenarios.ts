// Every chaos scenario, in the order `npm run chaos` runs them.

import type { Scenario } from './scenario.ts';
import { agentClockJumps } from './scenarios/agent-clock-jumps.ts';
import { agentDiskFull } from './scenarios/agent-disk-full.ts';
import { agentKill9 } from './scenarios/agent-kill9.ts';
import { backhaulOutage } from './scenarios/backhaul-outage.ts';
import { controlPlaneKill9 } from './scenarios/controlplane-kill9.ts';
import { gatewayDiskFull } from './scenarios/gateway-disk-full.ts';
import { gatewayKill9 } from './scenarios/gateway-kill9.ts';
import { gatewayRadioStorm } from './scenarios/gateway-radio-storm.ts';
import { linkFaults } from './scenarios/link-faults.ts';

export const SCENARIOS: readonly Scenario[] = [
  agentKill9,
  controlPlaneKill9,
  linkFaults,
  backhaulOutage,
  agentDiskFull,
  agentClockJumps,
  gatewayKill9,
  gatewayRadioStorm,
  gatewayDiskFull,
];
