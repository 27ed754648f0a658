// Generators of patterns inside the safe regular-expression subset (protocol/safe-regex.ts), shared by its
// differential test and the fuzz registry.

import fc from 'fast-check';

const atom = fc.constantFrom(
  'a',
  'b',
  'c',
  '.',
  '\\d',
  '\\w',
  '\\s',
  '\\S',
  '\\D',
  '[a-c]',
  '[^a]',
  '[\\d.]',
  '[-a]',
  '[\\w-]',
  '\\.',
  '\\/',
  'é',
  '😀',
  '\\u{1F600}',
  '\\u00e9',
  '\\x41',
  '[😀-😂]',
  '\\n',
  '-',
  '[]',
  '[^]',
);
const quantifier = fc.constantFrom('', '', '', '*', '+', '?', '{2}', '{1,3}', '{0,}', '+?', '??', '{0,2}?');
const piece = fc.tuple(atom, quantifier).map(([a, q]) => a + q);
const run = fc.array(piece, { minLength: 1, maxLength: 3 }).map((x) => x.join(''));
const group = fc.oneof(
  // a repeated group holds neither quantifiers nor alternatives
  fc
    .tuple(fc.array(atom, { minLength: 1, maxLength: 3 }), fc.constantFrom('*', '+', '{1,2}', '?', ''), fc.boolean())
    .map(([as, q, capture]) => `(${capture ? '' : '?:'}${as.join('')})${q}`),
  // an optional or plain group may hold anything
  fc.tuple(run, run, fc.constantFrom('?', '')).map(([a, b, q]) => `(${a}|${b})${q}`),
);
const sequence = fc.array(fc.oneof(piece, piece, group), { minLength: 1, maxLength: 4 }).map((x) => x.join(''));

/** Patterns the safe subset accepts (anchors, classes, groups, alternatives, bounded quantifiers). */
export const safePattern: fc.Arbitrary<string> = fc
  .tuple(fc.boolean(), sequence, fc.option(sequence), fc.boolean())
  .map(([bol, s, alt, eol]) => `${bol ? '^' : ''}${s}${alt === null ? '' : `|${alt}`}${eol ? '$' : ''}`);
