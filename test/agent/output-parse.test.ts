import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseToolOutput } from '../../agent/output-parse.ts';
import { isOutpostError } from '../../protocol/errors.ts';

const b = (s: string | number[]) => (typeof s === 'string' ? new TextEncoder().encode(s) : Uint8Array.from(s));

describe('parseToolOutput', () => {
  it('text drops one trailing newline', () => assert.equal(parseToolOutput('text', b('ok\n\n')), 'ok\n'));
  it('number reads one finite number', () => {
    assert.equal(parseToolOutput('number', b(' 21.5\n')), 21.5);
    assert.equal(parseToolOutput('number', b('-1e3')), -1000);
  });
  it('json parses JSON', () => assert.deepEqual(parseToolOutput('json', b('{"t":1}\n')), { t: 1 }));
  for (const [kind, input] of [
    ['number', 'NaN'],
    ['number', '0x10'],
    ['number', '12 13'],
    ['number', ''],
    ['number', '1e999'],
    ['json', '{"t":'],
    ['text', [0xff, 0xfe]],
  ] as const) {
    it(`${kind} refuses ${JSON.stringify(input)}`, () =>
      assert.throws(
        () => parseToolOutput(kind, b(input as string | number[])),
        (e) => isOutpostError(e, 'TOOL_OUTPUT_INVALID'),
      ));
  }
});
