// Every command the `outpost` CLI knows, gathered from one module per area.

import type { Command } from '../command.ts';
import { agentCommands } from './agent.ts';
import { agentLoraCommands } from './agent-lora.ts';
import { approveCommands } from './approve.ts';
import { controlplaneCommands } from './controlplane.ts';
import { demoCommands } from './demo.ts';
import { devCommands } from './dev.ts';
import { doctorCommands } from './doctor.ts';
import { enrollCommands } from './enroll.ts';
import { gatewayCommands } from './gateway.ts';
import { manifestCommands } from './manifest.ts';
import { mcpCommands } from './mcp.ts';
import { radioCommands } from './radio.ts';
import { selftestCommands } from './selftest.ts';
import { toolsCommands } from './tools.ts';
import { versionCommands } from './version.ts';

export const commands: readonly Command[] = [
  ...versionCommands,
  ...manifestCommands,
  ...selftestCommands,
  ...radioCommands,
  ...gatewayCommands,
  ...agentCommands,
  ...agentLoraCommands,
  ...toolsCommands,
  ...mcpCommands,
  ...doctorCommands,
  ...devCommands,
  ...demoCommands,
  ...controlplaneCommands,
  ...approveCommands,
  ...enrollCommands,
];
