import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { isOutpostError } from '../../protocol/errors.ts';
import { compileSafePattern, MAX_PATTERN_LENGTH } from '../../protocol/safe-regex.ts';
import { safePattern } from '../support/safe-pattern.ts';

const subject = fc.string({
  unit: fc.constantFrom('a', 'b', 'c', '.', '1', ' ', '\n', '\r', 'é', '😀', '😁', '-', '/', 'A', '_', '\u2028'),
  maxLength: 10,
});

function refused(pattern: string, reason: RegExp): void {
  assert.throws(
    () => compileSafePattern(pattern),
    (e) => isOutpostError(e, 'SCHEMA_UNSUPPORTED') && reason.test(String(e.details.reason)),
    pattern,
  );
}

describe('safe regular expressions for the pattern keyword', () => {
  it('matches exactly what ECMAScript RegExp with the u flag matches (differential)', () => {
    fc.assert(
      fc.property(safePattern, fc.array(subject, { minLength: 1, maxLength: 8 }), (pattern, texts) => {
        const mine = compileSafePattern(pattern);
        const theirs = new RegExp(pattern, 'u');
        for (const t of texts) assert.equal(mine.test(t), theirs.test(t), `/${pattern}/u on ${JSON.stringify(t)}`);
      }),
      { numRuns: 2000 },
    );
  });

  it('handles the edges: empty pattern, empty and full classes, anchors', () => {
    assert.equal(compileSafePattern('').test(''), true);
    assert.equal(compileSafePattern('[]').test('abc'), false);
    assert.equal(compileSafePattern('^[^]$').test('😀'), true);
    assert.equal(compileSafePattern('^$').test(''), true);
    assert.equal(compileSafePattern('^$').test('a'), false);
    assert.equal(compileSafePattern('b$').test('ab\n'), false);
    assert.equal(compileSafePattern('^a.c$').test('a\nc'), false);
    assert.equal(compileSafePattern('^(?<year>\\d{4})-(?<month>\\d{2})$').test('2026-01'), true);
  });

  const refusals: [string, string, RegExp][] = [
    ['backreference', '(a)\\1', /valid ECMAScript|backreference/],
    ['backreference that is valid ECMAScript', '(a)b\\1', /backreference/],
    ['named backreference', '(?<x>a)\\k<x>', /named backreference/],
    ['lookahead', 'a(?=b)', /lookaround/],
    ['negative lookahead', 'a(?!b)', /lookaround/],
    ['lookbehind', '(?<=a)b', /lookaround/],
    ['negative lookbehind', '(?<!a)b', /lookaround/],
    ['nested quantifier', '^(a+)+$', /nested quantifier/],
    ['nested star', '(a*)*', /nested quantifier/],
    ['an optional element repeated (exponential for backtracking)', '^(a?){20}a{20}$', /nested quantifier/],
    ['a repeated optional', '(a?)*', /nested quantifier/],
    ['counted inside counted', '(?:a{2}){3}', /nested quantifier/],
    ['quantified group with a quantified group', '(?:(?:ab)+c)*', /nested quantifier/],
    ['repeated alternation', '(a|b)+', /repeated alternation/],
    ['repeated alternation in a nested group', '(?:x(?:a|aa))*', /repeated alternation/],
    ['counted repetition above the bound', 'a{101}', /above 100/],
    ['open counted repetition above the bound', 'a{200,}', /above 100/],
    ['Unicode property escape', '\\p{L}', /property/],
    ['word boundary', '\\bword\\b', /word-boundary/],
    ['inline modifiers', '(?i:a)', /valid ECMAScript|unsupported group/],
    ['unterminated class', '[abc', /valid ECMAScript/],
    ['reversed range', 'a{2,1}', /valid ECMAScript/],
    ['too long', 'a'.repeat(MAX_PATTERN_LENGTH + 1), /longer than/],
    ['lone surrogate', 'a\ud800', /surrogate/],
    ['too many states once expanded', '.{100}'.repeat(42), /states/],
    ['control escape', '\\cA', /invalid escape/],
  ];
  for (const [name, pattern, reason] of refusals) it(`refuses ${name}`, () => refused(pattern, reason));

  it('accepts common, unambiguous patterns', () => {
    for (const p of [
      '^[a-z0-9-]{1,32}$',
      '^\\d{4}-\\d{2}-\\d{2}$',
      '^[A-Z]{2}\\d{3}$',
      '^(?:on|off)$',
      '^-?\\d+(?:\\.\\d+)?$',
    ]) {
      assert.doesNotThrow(() => compileSafePattern(p), p);
    }
  });

  it('runs in time linear in the input where a backtracking engine would not finish', () => {
    // Polynomial backtracking for RegExp (O(n^6) here); the NFA visits each state once per input character.
    const p = compileSafePattern('^a*a*a*a*a*a*b$');
    assert.equal(p.test(`${'a'.repeat(20_000)}c`), false);
    assert.equal(p.test(`${'a'.repeat(20_000)}b`), true);
  });
});
