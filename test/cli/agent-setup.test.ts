import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { toolArgs } from '../../cli/agent-setup.ts';
import type { CommandContext } from '../../cli/command.ts';
import { telemetryValue } from '../../cli/commands/tools.ts';
import { isOutpostError } from '../../protocol/errors.ts';

const ctx = (values: Record<string, string> = {}) =>
  ({ values, positionals: [], json: false }) as unknown as CommandContext;

describe('CLI argument helpers', () => {
  it('reads key=value words as JSON when they parse, else as text', () => {
    assert.deepEqual(toolArgs(ctx(), ['speed_pct=40', 'zone=north', 'on=true', 'note="5"', 'expr=a=b']), {
      speed_pct: 40,
      zone: 'north',
      on: true,
      note: '5',
      expr: 'a=b',
    });
  });
  it('merges --args JSON, words winning', () => {
    assert.deepEqual(toolArgs(ctx({ args: '{"a":1,"b":2}' }), ['b=3']), { a: 1, b: 3 });
  });
  for (const [name, c, words] of [
    ['a word without =', ctx(), ['oops']],
    ['--args that is not JSON', ctx({ args: '{' }), []],
    ['--args that is not an object', ctx({ args: '[1]' }), []],
  ] as const) {
    it(`refuses ${name}`, () =>
      assert.throws(
        () => toolArgs(c, words),
        (e) => isOutpostError(e, 'TOOL_ARGS_INVALID'),
      ));
  }
  it('reads telemetry values', () => {
    assert.equal(telemetryValue('21.5'), 21.5);
    assert.equal(telemetryValue('true'), true);
    assert.equal(telemetryValue('open'), 'open');
    assert.equal(telemetryValue('{"a":1}'), '{"a":1}');
  });
});
