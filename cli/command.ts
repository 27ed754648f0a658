// How a CLI command is declared: a path of words, options for node:util parseArgs, and a run function.

import type { ParseArgsConfig } from 'node:util';
import type { CliIo } from './io.ts';

export type OptionSpecs = NonNullable<ParseArgsConfig['options']>;

export interface CommandContext {
  readonly io: CliIo;
  /** Parsed option values (strings, booleans, or arrays for `multiple`). */
  readonly values: Readonly<Record<string, string | boolean | (string | boolean)[] | undefined>>;
  readonly positionals: readonly string[];
  /** True when `--json` was given: print machine-readable output only. */
  readonly json: boolean;
}

export interface Command {
  /** Words that select the command, e.g. ['manifest', 'validate']. */
  readonly path: readonly string[];
  readonly summary: string;
  /** Usage line after the command path, e.g. 'FILE [--json]'. */
  readonly usage: string;
  readonly options?: OptionSpecs;
  /** Returns the process exit code. Throw OutpostError for failures; cli/exit.ts maps them. */
  run(ctx: CommandContext): Promise<number>;
}

/** Writes `data` as JSON when --json, else the human text. */
export function print(ctx: CommandContext, data: unknown, human: () => string): void {
  if (ctx.json) ctx.io.stdout(`${JSON.stringify(data, null, 2)}\n`);
  else ctx.io.stdout(human().replace(/\n?$/, '\n'));
}

/** Reads a string option, or undefined. */
export function optString(ctx: CommandContext, name: string): string | undefined {
  const v = ctx.values[name];
  return typeof v === 'string' ? v : undefined;
}
