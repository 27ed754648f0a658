// Every command the `outpost` CLI knows, gathered from one module per area.

import type { Command } from '../command.ts';
import { manifestCommands } from './manifest.ts';
import { selftestCommands } from './selftest.ts';
import { versionCommands } from './version.ts';

export const commands: readonly Command[] = [...versionCommands, ...manifestCommands, ...selftestCommands];
