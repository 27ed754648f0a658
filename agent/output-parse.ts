// Turns an exec tool's stdout into its result value: text, JSON or a number. Pure; rejects with a typed error.

import { fromUtf8 } from '../protocol/bytes.ts';
import { parseJson } from '../protocol/canonical-json.ts';
import { isOutpostError } from '../protocol/errors.ts';
import { AgentError } from './errors.ts';

export type OutputKind = 'text' | 'json' | 'number';

const NUMBER = /^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$/;

/** Parses `stdout` as `kind`. Throws TOOL_OUTPUT_INVALID (not UTF-8, not JSON, not one finite number). */
export function parseToolOutput(kind: OutputKind, stdout: Uint8Array): unknown {
  let text: string;
  try {
    text = fromUtf8(stdout, 'tool output');
  } catch (cause) {
    throw new AgentError('TOOL_OUTPUT_INVALID', 'tool output is not valid UTF-8', { cause });
  }
  switch (kind) {
    case 'text':
      // One trailing newline is how programs end a line, not part of the value.
      return text.replace(/\r?\n$/, '');
    case 'number': {
      const t = text.trim();
      const n = Number(t);
      if (!NUMBER.test(t) || !Number.isFinite(n)) {
        throw new AgentError('TOOL_OUTPUT_INVALID', `tool output is not a number: ${JSON.stringify(t.slice(0, 80))}`);
      }
      return n;
    }
    case 'json':
      try {
        return parseJson(text, stdout.length + 1);
      } catch (cause) {
        if (!isOutpostError(cause)) throw cause;
        throw new AgentError('TOOL_OUTPUT_INVALID', `tool output is not JSON: ${cause.message}`, { cause });
      }
  }
}
