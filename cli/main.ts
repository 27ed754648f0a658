// Dispatches `outpost WORDS… [OPTIONS]` to the matching command; prints help for unknown input.

import { parseArgs } from 'node:util';
import { OutpostError } from '../protocol/errors.ts';
import type { Command } from './command.ts';
import { commands } from './commands/index.ts';
import { EXIT, reportError } from './exit.ts';
import type { CliIo } from './io.ts';

function findCommand(argv: readonly string[]): { command: Command; rest: string[] } | undefined {
  let best: Command | undefined;
  for (const c of commands) {
    if (c.path.length <= argv.length && c.path.every((w, i) => argv[i] === w)) {
      if (!best || c.path.length > best.path.length) best = c;
    }
  }
  return best ? { command: best, rest: argv.slice(best.path.length) } : undefined;
}

export function helpText(prefix: readonly string[] = []): string {
  const shown = commands.filter((c) => prefix.every((w, i) => c.path[i] === w));
  const width = Math.max(...shown.map((c) => c.path.join(' ').length), 8);
  const lines = shown
    .slice()
    .sort((a, b) => a.path.join(' ').localeCompare(b.path.join(' ')))
    .map((c) => `  outpost ${c.path.join(' ').padEnd(width)}  ${c.summary}`);
  return [
    'Outpost: edge runtime for device fleets that talk to LLM agents.',
    '',
    'Usage: outpost COMMAND [OPTIONS]   (every command that prints data takes --json)',
    '',
    ...lines,
    '',
    'Run `outpost COMMAND --help` for a command’s options.',
  ].join('\n');
}

function commandHelp(c: Command): string {
  const opts = Object.entries(c.options ?? {}).map(([name, o]) => {
    const flag = `--${name}${o.type === 'string' ? '=VALUE' : ''}`;
    return `  ${o.short ? `-${o.short}, ` : ''}${flag}`;
  });
  return [
    `Usage: outpost ${c.path.join(' ')} ${c.usage}`.trimEnd(),
    '',
    c.summary,
    '',
    'Options:',
    ...opts,
    '  --json',
    '  --help',
  ].join('\n');
}

/** Runs the CLI and returns the exit code. Never throws. */
export async function main(argv: readonly string[], io: CliIo): Promise<number> {
  const json = argv.includes('--json');
  try {
    if (argv.length === 0 || argv[0] === '--help' || argv[0] === '-h' || argv[0] === 'help') {
      io.stdout(`${helpText(argv[0] === 'help' ? argv.slice(1) : [])}\n`);
      return EXIT.ok;
    }
    const found = findCommand(argv);
    if (!found) {
      const near = commands.some((c) => c.path[0] === argv[0]);
      io.stderr(`outpost: unknown command '${argv.join(' ')}'\n\n${helpText(near ? [argv[0]!] : [])}\n`);
      return EXIT.usage;
    }
    const { command, rest } = found;
    if (rest.includes('--help') || rest.includes('-h')) {
      io.stdout(`${commandHelp(command)}\n`);
      return EXIT.ok;
    }
    let parsed: ReturnType<typeof parseArgs>;
    try {
      parsed = parseArgs({
        args: [...rest],
        options: { ...(command.options ?? {}), json: { type: 'boolean' } },
        allowPositionals: true,
        strict: true,
      });
    } catch (e) {
      throw new OutpostError('USAGE', `${(e as Error).message}\n\n${commandHelp(command)}`);
    }
    return await command.run({
      io,
      values: parsed.values as Record<string, string | boolean | (string | boolean)[] | undefined>,
      positionals: parsed.positionals,
      json,
    });
  } catch (err) {
    return reportError(io, err, json);
  }
}
