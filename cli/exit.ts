// Maps errors to exit codes and messages, in one place for the whole CLI.

import { isOutpostError } from '../protocol/errors.ts';
import type { CliIo } from './io.ts';

/** sysexits(3)-style codes, so scripts can tell a usage error from a data error from an outage. */
export const EXIT = Object.freeze({
  ok: 0,
  failure: 1,
  usage: 64,
  dataError: 65,
  noInput: 66,
  unavailable: 69,
  software: 70,
  cantCreate: 73,
  ioError: 74,
  tempFail: 75,
  noPerm: 77,
  config: 78,
});

const BY_CODE_PREFIX: ReadonlyArray<[RegExp, number]> = [
  [/^USAGE/, EXIT.usage],
  [/^(CONFIG|MANIFEST_INVALID|SCHEMA)/, EXIT.config],
  [/NOT_FOUND$|^NO_INPUT/, EXIT.noInput],
  [/^(UNREACHABLE|UNAVAILABLE|DAEMON_DOWN|LINK_DOWN)/, EXIT.unavailable],
  [/^(PERMISSION|DENIED|GATE_|FORBIDDEN)/, EXIT.noPerm],
  [/^(IO|DISK)/, EXIT.ioError],
];

/** Prints `err` (as JSON when `json`) and returns the exit code for it. */
export function reportError(io: CliIo, err: unknown, json: boolean): number {
  if (isOutpostError(err)) {
    const code = BY_CODE_PREFIX.find(([re]) => re.test(err.code))?.[1] ?? EXIT.dataError;
    if (json) io.stdout(`${JSON.stringify({ error: err.toJSON() }, null, 2)}\n`);
    else io.stderr(`outpost: ${err.message} [${err.code}]\n`);
    return code;
  }
  const e = err instanceof Error ? err : new Error(String(err));
  if (json) io.stdout(`${JSON.stringify({ error: { name: e.name, code: 'INTERNAL', message: e.message } })}\n`);
  else io.stderr(`outpost: internal error: ${e.stack ?? e.message}\n`);
  return EXIT.software;
}
