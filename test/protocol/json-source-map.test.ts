import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { MAX_JSON_DEPTH, parseJson } from '../../protocol/canonical-json.ts';
import { isOutpostError } from '../../protocol/errors.ts';
import { parseJsonWithPositions } from '../../protocol/json-source-map.ts';
import { jsonTextInputs } from '../support/fuzz.ts';

const MAX = 1 << 20;
const parse = (text: string) => parseJsonWithPositions(text, { maxBytes: MAX });

/** JSON text of `v` with random whitespace between tokens (JSON.stringify's indentation varies it). */
const jsonText = fc
  .tuple(fc.jsonValue({ maxDepth: 5 }), fc.constantFrom(undefined, 0, 1, 2, '\t', ' \r\n '))
  .map(([v, indent]) => JSON.stringify(v, null, indent));

function hasDuplicateNames(text: string): boolean {
  try {
    parse(text);
    return false;
  } catch (e) {
    return isOutpostError(e, 'JSON_DUPLICATE_MEMBER');
  }
}

describe('JSON parser with source positions', () => {
  it('reads exactly what JSON.parse reads (generated documents)', () => {
    fc.assert(
      fc.property(jsonText, (text) => {
        assert.deepEqual(parse(text).value, JSON.parse(text));
      }),
    );
  });

  it('accepts and refuses exactly what JSON.parse does, duplicates aside (random and damaged text)', () => {
    fc.assert(
      fc.property(jsonTextInputs([{ a: [1, 2.5e-3, 'x\u00e9\\n'], b: { c: null, d: true } }, [-0, '']]), (text) => {
        let want: unknown;
        let wantOk = true;
        try {
          want = JSON.parse(text);
        } catch {
          wantOk = false;
        }
        try {
          const got = parse(text).value;
          assert.ok(wantOk, 'accepted text JSON.parse refuses');
          assert.deepEqual(got, want);
          // -0 survives like JSON.parse keeps it
          assert.equal(JSON.stringify(Object.is(got, -0)), JSON.stringify(Object.is(want, -0)));
        } catch (e) {
          if (e instanceof assert.AssertionError) throw e;
          assert.ok(isOutpostError(e), String(e));
          if (wantOk) {
            assert.ok(
              isOutpostError(e, 'JSON_DUPLICATE_MEMBER', 'CANON_TOO_DEEP') || hasDuplicateNames(text),
              `refused text JSON.parse accepts: ${(e as Error).message}`,
            );
          }
        }
      }),
      { numRuns: 3000 },
    );
  });

  it('keeps a "__proto__" member as an own member, like JSON.parse', () => {
    const { value } = parse('{"__proto__":{"polluted":true}}');
    assert.equal(Object.getPrototypeOf(value), Object.prototype);
    assert.ok(Object.hasOwn(value as object, '__proto__'));
    assert.equal(({} as { polluted?: boolean }).polluted, undefined);
  });

  it('refuses duplicate member names where the second one starts', () => {
    assert.throws(
      () => parse('{\n  "a": 1,\n  "a": 2\n}'),
      (e) => isOutpostError(e, 'JSON_DUPLICATE_MEMBER') && e.details.line === 3 && e.details.column === 3,
    );
  });

  it('reports syntax errors at line and column', () => {
    const cases: [string, number, number, RegExp][] = [
      ['{\n  "a": 1,\n}', 2, 9, /trailing comma/],
      ['[1,\n 2,]', 2, 3, /trailing comma/],
      ['{"a" 1}', 1, 6, /":"/],
      ['[1 2]', 1, 4, /","/],
      ['"abc', 1, 5, /unterminated/],
      ['"a\tb"', 1, 3, /U\+0009/],
      ['[01]', 1, 3, /malformed number/],
      ['{}x', 1, 3, /after the JSON value/],
      ['\u00e9', 1, 1, /expected a JSON value/],
      ['["😀", tru]', 1, 7, /expected true/],
      ['', 1, 1, /end of input/],
    ];
    for (const [text, line, column, message] of cases) {
      assert.throws(
        () => parse(text),
        (e) =>
          isOutpostError(e, 'JSON_MALFORMED') &&
          e.details.line === line &&
          e.details.column === column &&
          message.test(e.message),
        `${JSON.stringify(text)} → ${line}:${column}`,
      );
    }
  });

  it('knows where every value and member name starts (columns in code points)', () => {
    const text = '{\n  "a": [1, {"b": null}],\n  "😀x": "é",\r\n  "c/d": true\n}';
    const m = parse(text);
    assert.deepEqual(m.positionOf(''), { line: 1, column: 1, offset: 0 });
    assert.deepEqual(m.positionOf('/a'), { line: 2, column: 8, offset: 9 });
    assert.deepEqual(m.positionOf('/a', 'key'), { line: 2, column: 3, offset: 4 });
    assert.deepEqual(m.positionOf('/a/1/b'), { line: 2, column: 18, offset: 19 });
    assert.equal(m.positionOf('/😀x')?.column, 9);
    assert.equal(m.positionOf('/😀x', 'key')?.column, 3);
    assert.deepEqual(m.positionOf('/c~1d', 'key'), { line: 4, column: 3, offset: text.indexOf('"c/d"') });
    assert.equal(m.positionOf('/missing'), undefined);
    assert.deepEqual(m.locate(['a', 1, 'zz']), { position: m.positionOf('/a/1')!, exact: false });
    assert.deepEqual(m.locate(['a', 1, 'b'], 'key'), { position: m.positionOf('/a/1/b', 'key')!, exact: true });
  });

  it('every recorded position points at the first character of its value', () => {
    fc.assert(
      fc.property(jsonText, (text) => {
        const m = parse(text);
        const walk = (v: unknown, pointer: string): void => {
          const p = m.positionOf(pointer)!;
          const first = text[p.offset]!;
          if (v === null) assert.equal(first, 'n');
          else if (Array.isArray(v)) assert.equal(first, '[');
          else if (typeof v === 'object') assert.equal(first, '{');
          else if (typeof v === 'string') assert.equal(first, '"');
          else if (typeof v === 'boolean') assert.equal(first, v ? 't' : 'f');
          else assert.match(first, /[-0-9]/);
          const lines = text.slice(0, p.offset).split('\n');
          assert.equal(p.line, lines.length);
          assert.equal(p.column, [...lines[lines.length - 1]!].length + 1);
          if (v !== null && typeof v === 'object') {
            for (const [k, c] of Object.entries(v))
              walk(c, `${pointer}/${k.replaceAll('~', '~0').replaceAll('/', '~1')}`);
          }
        };
        walk(m.value, '');
      }),
    );
  });

  it('applies the same depth and size limits as parseJson', () => {
    const ok = `${'['.repeat(MAX_JSON_DEPTH + 1)}${']'.repeat(MAX_JSON_DEPTH + 1)}`;
    assert.deepEqual(parse(ok).value, parseJson(ok, MAX));
    for (const deep of [
      `[${ok}]`,
      `${'['.repeat(MAX_JSON_DEPTH)}1${']'.repeat(MAX_JSON_DEPTH)}`.replace(/^/, '[').concat(']'),
    ]) {
      assert.throws(
        () => parse(deep),
        (e) => isOutpostError(e, 'CANON_TOO_DEEP'),
      );
      assert.throws(
        () => parseJson(deep, MAX),
        (e) => isOutpostError(e, 'CANON_TOO_DEEP'),
      );
    }
    assert.throws(
      () => parseJsonWithPositions('"éé"', { maxBytes: 5 }),
      (e) => isOutpostError(e, 'JSON_TOO_LARGE'),
    );
    assert.equal(parseJsonWithPositions('"éé"', { maxBytes: 6 }).value, 'éé');
  });
});
