// Every command the `outpost` CLI knows, gathered from one module per area.

import type { Command } from '../command.ts';
import { agentCommands } from './agent.ts';
import { approveCommands } from './approve.ts';
import { controlplaneCommands } from './controlplane.ts';
import { devCommands } from './dev.ts';
import { doctorCommands } from './doctor.ts';
import { enrollCommands } from './enroll.ts';
import { manifestCommands } from './manifest.ts';
import { mcpCommands } from './mcp.ts';
import { selftestCommands } from './selftest.ts';
import { toolsCommands } from './tools.ts';
import { versionCommands } from './version.ts';

export const commands: readonly Command[] = [
  ...versionCommands,
  ...manifestCommands,
  ...selftestCommands,
  ...agentCommands,
  ...toolsCommands,
  ...mcpCommands,
  ...doctorCommands,
  ...devCommands,
  ...controlplaneCommands,
  ...approveCommands,
  ...enrollCommands,
];
