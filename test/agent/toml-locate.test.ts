import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { locateTomlPath } from '../../agent/toml-locate.ts';

const text = `# greenhouse
[agent]
name = "gh-1"
  timezone = "Europe/Berlin"

[[tools]]
name = "a.b"
description = """
name = "not a key"
"""
argv = [
  "x = 1",
  "y",
]
[tools.exec]
argv = ["/bin/true"]
"quoted key".inner = 3

[[tools]]
name = "c.d"
exec.output = "json"

[[streams]]
name = 's.t'
sampler = { kind = "system" }
`;

describe('locateTomlPath', () => {
  const rows: [string, (string | number)[], number, number][] = [
    ['a table key', ['agent', 'name'], 3, 1],
    ['an indented key', ['agent', 'timezone'], 4, 3],
    ['a key of the first array table', ['tools', 0, 'name'], 7, 1],
    ['a sub-table of the current array element', ['tools', 0, 'exec', 'argv'], 16, 1],
    ['a quoted dotted key', ['tools', 0, 'exec', 'quoted key', 'inner'], 17, 1],
    ['the second array element', ['tools', 1, 'name'], 20, 1],
    ['a dotted key under an array element', ['tools', 1, 'exec', 'output'], 21, 1],
    ['a missing key points at its table', ['tools', 1, 'description'], 19, 1],
    ['inside an inline table points at its key', ['streams', 0, 'sampler', 'kind'], 25, 1],
    ['an array element points at the array', ['tools', 0, 'argv', 1], 11, 1],
  ];
  for (const [name, path, line, column] of rows) {
    it(name, () => assert.deepEqual(locateTomlPath(text, path), { line, column }));
  }

  it('ignores key-like lines inside multi-line strings and arrays', () => {
    assert.deepEqual(locateTomlPath(text, ['tools', 0, 'description']), { line: 8, column: 1 });
    assert.equal(locateTomlPath(text, ['x']), undefined);
  });
});
