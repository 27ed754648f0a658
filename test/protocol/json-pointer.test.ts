import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { isOutpostError } from '../../protocol/errors.ts';
import { formatJsonPointer, parseJsonPointer, resolveJsonPointer } from '../../protocol/json-pointer.ts';

// RFC 6901 §5: the example document and what each pointer names.
const RFC_DOC = {
  foo: ['bar', 'baz'],
  '': 0,
  'a/b': 1,
  'c%d': 2,
  'e^f': 3,
  'g|h': 4,
  'i\\j': 5,
  'k"l': 6,
  ' ': 7,
  'm~n': 8,
};
const RFC_CASES: [string, unknown][] = [
  ['', RFC_DOC],
  ['/foo', ['bar', 'baz']],
  ['/foo/0', 'bar'],
  ['/', 0],
  ['/a~1b', 1],
  ['/c%d', 2],
  ['/e^f', 3],
  ['/g|h', 4],
  ['/i\\j', 5],
  ['/k"l', 6],
  ['/ ', 7],
  ['/m~0n', 8],
];

describe('JSON Pointer (RFC 6901)', () => {
  for (const [pointer, want] of RFC_CASES) {
    it(`RFC 6901 §5: ${JSON.stringify(pointer)}`, () => assert.deepEqual(resolveJsonPointer(RFC_DOC, pointer), want));
  }

  it('finds nothing where nothing is, and follows only own members and canonical indices', () => {
    const doc = { a: [10, 20], o: {} };
    for (const p of [
      '/b',
      '/a/2',
      '/a/-',
      '/a/01',
      '/a/x',
      '/a/0/x',
      '/o/toString',
      '/o/__proto__',
      '/o/constructor',
    ]) {
      assert.equal(resolveJsonPointer(doc, p), undefined, p);
    }
  });

  for (const bad of ['a', '/~2', '/~', '/a~', 'x'.repeat(300)]) {
    it(`refuses ${JSON.stringify(bad.slice(0, 12))} with JSON_POINTER_MALFORMED`, () =>
      assert.throws(
        () => parseJsonPointer(bad),
        (e) => isOutpostError(e, 'JSON_POINTER_MALFORMED'),
      ));
  }

  it('format and parse are inverse for any path', () => {
    fc.assert(
      fc.property(fc.array(fc.oneof(fc.string({ maxLength: 6 }), fc.nat(99)), { maxLength: 6 }), (path) => {
        assert.deepEqual(parseJsonPointer(formatJsonPointer(path)), path.map(String));
      }),
    );
  });

  it('a formatted path resolves to the value it names', () => {
    fc.assert(
      fc.property(
        fc.dictionary(fc.string({ maxLength: 5 }), fc.array(fc.integer(), { minLength: 1, maxLength: 3 }), {
          minKeys: 1,
        }),
        (doc) => {
          for (const [k, arr] of Object.entries(doc)) {
            assert.equal(resolveJsonPointer(doc, formatJsonPointer([k, arr.length - 1])), arr[arr.length - 1]);
          }
        },
      ),
    );
  });
});
