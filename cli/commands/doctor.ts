// `outpost doctor`: checks config, state directory, key, database, clock, serial devices and the running agent,
// and says how to fix what is wrong (the checks live in cli/doctor-checks.ts and load only when asked for).

import { AGENT_OPTIONS } from '../agent-setup.ts';
import { type Command, print } from '../command.ts';
import { EXIT } from '../exit.ts';

export const doctorCommands: Command[] = [
  {
    path: ['doctor'],
    summary: 'check config, state directory, key, database, clock, serial devices and the running agent',
    usage: '[--config FILE] [--json]',
    options: AGENT_OPTIONS,
    async run(ctx) {
      const { MARK, runDoctor } = await import('../doctor-checks.ts');
      const checks = await runDoctor(ctx);
      const ok = !checks.some((c) => c.result === 'fail');
      print(ctx, { ok, checks }, () =>
        checks
          .map((c) => `${MARK[c.result]} ${c.name}: ${c.detail}${c.fix ? `\n    fix: ${c.fix}` : ''}`)
          .concat(ok ? [] : ['', 'Some checks failed.'])
          .join('\n'),
      );
      return ok ? EXIT.ok : EXIT.failure;
    },
  },
];
