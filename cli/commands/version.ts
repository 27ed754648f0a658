// `outpost version`: what this build is and what it runs on.

import { buildInfo } from '../build-info.ts';
import { type Command, print } from '../command.ts';

export const versionCommands: Command[] = [
  {
    path: ['version'],
    summary: 'print the Outpost version, Node.js version and platform',
    usage: '[--json]',
    async run(ctx) {
      const info = buildInfo();
      print(ctx, info, () => `outpost ${info.version} (node ${info.node}, ${info.platform}-${info.arch})`);
      return 0;
    },
  },
];
