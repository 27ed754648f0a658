import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { renderArgv, templateNames } from '../../agent/argv-template.ts';
import { isOutpostError } from '../../protocol/errors.ts';

describe('argv templates', () => {
  const rows: { name: string; template: (string | string[])[]; args: Record<string, unknown>; want: string[] }[] = [
    { name: 'literal', template: ['/bin/fanctl', 'status'], args: {}, want: ['/bin/fanctl', 'status'] },
    { name: 'whole element', template: ['/bin/fanctl', '{speed}'], args: { speed: 40 }, want: ['/bin/fanctl', '40'] },
    {
      name: 'inside an element',
      template: ['/bin/x', '--speed={speed}'],
      args: { speed: 0.5 },
      want: ['/bin/x', '--speed=0.5'],
    },
    { name: 'negative number', template: ['/bin/x', '{d}'], args: { d: -3 }, want: ['/bin/x', '-3'] },
    { name: 'boolean', template: ['/bin/x', '{on}'], args: { on: false }, want: ['/bin/x', 'false'] },
    { name: 'escaped braces', template: ['/bin/x', '{{a}}'], args: {}, want: ['/bin/x', '{a}'] },
    {
      name: 'group kept when present',
      template: ['/bin/x', ['--zone', '{zone}']],
      args: { zone: 'north' },
      want: ['/bin/x', '--zone', 'north'],
    },
    { name: 'group dropped when absent', template: ['/bin/x', ['--zone', '{zone}']], args: {}, want: ['/bin/x'] },
    {
      name: 'spaces and metacharacters stay in one element',
      template: ['/bin/x', '{s}'],
      args: { s: 'a b; rm -rf / $(id)' },
      want: ['/bin/x', 'a b; rm -rf / $(id)'],
    },
  ];
  for (const r of rows) {
    it(r.name, () => assert.deepEqual(renderArgv(r.template, r.args), r.want));
  }

  const bad: { name: string; template: (string | string[])[]; args: Record<string, unknown>; code: string }[] = [
    { name: 'missing argument', template: ['/bin/x', '{a}'], args: {}, code: 'TOOL_ARGS_INVALID' },
    { name: 'object argument', template: ['/bin/x', '{a}'], args: { a: { b: 1 } }, code: 'TOOL_ARGS_INVALID' },
    { name: 'option injection', template: ['/bin/x', '{a}'], args: { a: '--delete' }, code: 'TOOL_ARGS_INVALID' },
    { name: 'NUL byte', template: ['/bin/x', 'v={a}'], args: { a: 'a\u0000b' }, code: 'TOOL_ARGS_INVALID' },
    { name: 'stray brace', template: ['/bin/x', '{a'], args: { a: 1 }, code: 'CONFIG_INVALID' },
    { name: 'non-finite number', template: ['/bin/x', '{a}'], args: { a: Number.NaN }, code: 'TOOL_ARGS_INVALID' },
  ];
  for (const r of bad) {
    it(`refuses ${r.name}`, () =>
      assert.throws(
        () => renderArgv(r.template, r.args),
        (e) => isOutpostError(e, r.code),
      ));
  }

  it('names the placeholders and refuses one in argv[0]', () => {
    assert.deepEqual([...templateNames(['/bin/x', '{a}', ['--b', '{b}={c}']])].sort(), ['a', 'b', 'c']);
    assert.throws(
      () => templateNames(['{prog}']),
      (e) => isOutpostError(e, 'CONFIG_INVALID'),
    );
  });

  it('always yields one argv element per template element, whatever the string', () => {
    fc.assert(
      fc.property(
        fc.string().filter((s) => !s.startsWith('-') && !s.includes('\u0000')),
        (s) => {
          assert.deepEqual(renderArgv(['/bin/x', '{s}', 'k={s}'], { s }), ['/bin/x', s, `k=${s}`]);
        },
      ),
    );
  });
});
