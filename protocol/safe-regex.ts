// The `pattern` keyword of tool schemas: a safe subset of ECMAScript regular expressions, checked when a manifest
// is decoded and matched by a Thompson NFA in time linear in the input, so no input can make matching slow (ReDoS).
// The subset is also refused where other engines backtrack badly (nested quantifiers, repeated alternation).

import { ProtocolError } from './errors.ts';

/** Longest accepted pattern, in UTF-16 code units. */
export const MAX_PATTERN_LENGTH = 256;
/** Largest bound of a counted repetition `{n,m}`. */
export const MAX_REPEAT_BOUND = 100;
/** Most NFA states a pattern may compile to (counted repetitions are expanded). */
export const MAX_PATTERN_STATES = 4096;

const MAX_CODE_POINT = 0x10ffff;
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;
type Ranges = readonly (readonly [number, number])[];

type Node =
  | { readonly k: 'set'; readonly ranges: Ranges }
  | { readonly k: 'seq'; readonly items: readonly Node[] }
  | { readonly k: 'alt'; readonly options: readonly Node[] }
  | { readonly k: 'repeat'; readonly node: Node; readonly min: number; readonly max: number }
  | { readonly k: 'bol' }
  | { readonly k: 'eol' };

const DIGIT: Ranges = [[0x30, 0x39]];
const WORD: Ranges = [
  [0x30, 0x39],
  [0x41, 0x5a],
  [0x5f, 0x5f],
  [0x61, 0x7a],
];
// ECMA-262 WhiteSpace and LineTerminator code points (§12.2, §12.3).
const SPACE: Ranges = [
  [0x09, 0x0d],
  [0x20, 0x20],
  [0xa0, 0xa0],
  [0x1680, 0x1680],
  [0x2000, 0x200a],
  [0x2028, 0x2029],
  [0x202f, 0x202f],
  [0x205f, 0x205f],
  [0x3000, 0x3000],
  [0xfeff, 0xfeff],
];
const LINE_TERMINATORS: Ranges = [
  [0x0a, 0x0a],
  [0x0d, 0x0d],
  [0x2028, 0x2029],
];

function normalise(ranges: Ranges): Ranges {
  const sorted = [...ranges].sort((a, b) => a[0] - b[0]);
  const out: [number, number][] = [];
  for (const [lo, hi] of sorted) {
    const last = out[out.length - 1];
    if (last && lo <= last[1] + 1) last[1] = Math.max(last[1], hi);
    else out.push([lo, hi]);
  }
  return out;
}

function complement(ranges: Ranges): Ranges {
  const out: [number, number][] = [];
  let next = 0;
  for (const [lo, hi] of normalise(ranges)) {
    if (lo > next) out.push([next, lo - 1]);
    next = hi + 1;
  }
  if (next <= MAX_CODE_POINT) out.push([next, MAX_CODE_POINT]);
  return out;
}

function inRanges(ranges: Ranges, c: number): boolean {
  for (const [lo, hi] of ranges) {
    if (c < lo) return false;
    if (c <= hi) return true;
  }
  return false;
}

const SYNTAX = new Set([...'^$\\.*+?()[]{}|/']);

class PatternError extends Error {}

/** Recursive-descent parser for the subset (ECMAScript `u`-mode syntax, no flags). */
class Parser {
  readonly #cps: number[];
  #at = 0;
  #groups = 0;

  constructor(pattern: string) {
    this.#cps = Array.from(pattern, (ch) => ch.codePointAt(0)!);
  }

  parse(): Node {
    const node = this.#disjunction();
    if (this.#at < this.#cps.length) this.#fail(`unexpected ${this.#show(this.#peek()!)}`);
    return node;
  }

  #peek(offset = 0): number | undefined {
    return this.#cps[this.#at + offset];
  }

  #show(c: number): string {
    return JSON.stringify(String.fromCodePoint(c));
  }

  #fail(message: string): never {
    throw new PatternError(`${message} at position ${this.#at}`);
  }

  #eat(ch: string): boolean {
    if (this.#peek() === ch.codePointAt(0)) {
      this.#at++;
      return true;
    }
    return false;
  }

  #disjunction(): Node {
    const options = [this.#alternative()];
    while (this.#eat('|')) options.push(this.#alternative());
    return options.length === 1 ? options[0]! : { k: 'alt', options };
  }

  #alternative(): Node {
    const items: Node[] = [];
    for (let c = this.#peek(); c !== undefined && c !== 0x7c && c !== 0x29; c = this.#peek()) {
      items.push(this.#term());
    }
    return items.length === 1 ? items[0]! : { k: 'seq', items };
  }

  #term(): Node {
    if (this.#eat('^')) return { k: 'bol' };
    if (this.#eat('$')) return { k: 'eol' };
    const atom = this.#atom();
    const q = this.#quantifier();
    if (!q) return atom;
    if (q.max > 1 && quantified(atom)) this.#fail('nested quantifier (a repeated group holding a quantifier)');
    if (q.max > 1 && alternates(atom)) this.#fail('repeated alternation (use a character class instead)');
    return { k: 'repeat', node: atom, min: q.min, max: q.max };
  }

  #quantifier(): { min: number; max: number } | undefined {
    let q: { min: number; max: number } | undefined;
    if (this.#eat('*')) q = { min: 0, max: Number.POSITIVE_INFINITY };
    else if (this.#eat('+')) q = { min: 1, max: Number.POSITIVE_INFINITY };
    else if (this.#eat('?')) q = { min: 0, max: 1 };
    else if (this.#peek() === 0x7b) {
      this.#at++;
      const min = this.#integer();
      let max = min;
      if (this.#eat(',')) max = this.#peek() === 0x7d ? Number.POSITIVE_INFINITY : this.#integer();
      if (!this.#eat('}')) this.#fail('malformed counted repetition');
      if (min > max) this.#fail('counted repetition with min above max');
      if (min > MAX_REPEAT_BOUND || (max !== Number.POSITIVE_INFINITY && max > MAX_REPEAT_BOUND)) {
        this.#fail(`counted repetition above ${MAX_REPEAT_BOUND}`);
      }
      q = { min, max };
    }
    if (q) this.#eat('?'); // lazy and greedy match the same strings
    const after = this.#peek();
    if (q && (after === 0x2a || after === 0x2b || after === 0x3f || after === 0x7b))
      this.#fail('quantifier on a quantifier');
    return q;
  }

  #integer(): number {
    const start = this.#at;
    while (this.#peek() !== undefined && this.#peek()! >= 0x30 && this.#peek()! <= 0x39) this.#at++;
    if (this.#at === start || this.#at - start > 4) this.#fail('expected a number in a counted repetition');
    return Number(String.fromCodePoint(...this.#cps.slice(start, this.#at)));
  }

  #atom(): Node {
    const c = this.#peek()!;
    if (c === 0x2e) {
      this.#at++;
      return { k: 'set', ranges: complement(LINE_TERMINATORS) };
    }
    if (c === 0x28) return this.#group();
    if (c === 0x5b) return { k: 'set', ranges: this.#class() };
    if (c === 0x5c) {
      this.#at++;
      return { k: 'set', ranges: this.#escape(false) };
    }
    if (c === 0x2a || c === 0x2b || c === 0x3f || c === 0x7b) this.#fail('quantifier without an atom');
    if (c === 0x29 || c === 0x5d || c === 0x7d) this.#fail(`lone ${this.#show(c)}`);
    this.#at++;
    return { k: 'set', ranges: [[c, c]] };
  }

  #group(): Node {
    this.#at++; // (
    if (this.#eat('?')) {
      if (this.#eat(':')) {
        // non-capturing group
      } else if (this.#peek() === 0x3c && this.#peek(1) !== 0x3d && this.#peek(1) !== 0x21) {
        this.#at++; // named capturing group (?<name>…)
        const start = this.#at;
        while (this.#peek() !== undefined && this.#peek() !== 0x3e) this.#at++;
        const name = String.fromCodePoint(...this.#cps.slice(start, this.#at));
        if (!/^[A-Za-z_$][A-Za-z0-9_$]*$/.test(name) || !this.#eat('>')) this.#fail('malformed group name');
        this.#groups++;
      } else if (this.#peek() === 0x3d || this.#peek() === 0x21 || this.#peek() === 0x3c) {
        this.#fail('lookaround assertions are not allowed');
      } else {
        this.#fail('unsupported group syntax');
      }
    } else {
      this.#groups++;
    }
    if (this.#groups > 32) this.#fail('more than 32 groups');
    const inner = this.#disjunction();
    if (!this.#eat(')')) this.#fail('unterminated group');
    return inner;
  }

  /** After a backslash. `inClass`: inside […], where fewer escapes exist. */
  #escape(inClass: boolean): Ranges {
    const c = this.#peek();
    if (c === undefined) this.#fail('pattern ends with a backslash');
    this.#at++;
    const ch = String.fromCodePoint(c);
    switch (ch) {
      case 'd':
        return DIGIT;
      case 'D':
        return complement(DIGIT);
      case 'w':
        return WORD;
      case 'W':
        return complement(WORD);
      case 's':
        return SPACE;
      case 'S':
        return complement(SPACE);
      case 't':
        return [[9, 9]];
      case 'n':
        return [[10, 10]];
      case 'v':
        return [[11, 11]];
      case 'f':
        return [[12, 12]];
      case 'r':
        return [[13, 13]];
      case '0':
        if (this.#peek() !== undefined && this.#peek()! >= 0x30 && this.#peek()! <= 0x39) this.#fail('octal escape');
        return [[0, 0]];
      case 'x': {
        const v = this.#hex(2);
        return [[v, v]];
      }
      case 'u': {
        if (this.#eat('{')) {
          const start = this.#at;
          while (this.#peek() !== undefined && this.#peek() !== 0x7d) this.#at++;
          const digits = String.fromCodePoint(...this.#cps.slice(start, this.#at));
          if (!/^[0-9A-Fa-f]{1,6}$/.test(digits) || !this.#eat('}')) this.#fail('malformed \\u{…} escape');
          const v = Number.parseInt(digits, 16);
          if (v > MAX_CODE_POINT) this.#fail('code point above U+10FFFF');
          return [[v, v]];
        }
        const v = this.#hex(4);
        if (v >= 0xd800 && v <= 0xdfff) this.#fail('surrogate escapes are not allowed');
        return [[v, v]];
      }
      case '-':
        if (inClass) return [[0x2d, 0x2d]];
        this.#fail('invalid escape \\-');
        break;
      default:
        if (ch >= '1' && ch <= '9') this.#fail('backreferences are not allowed');
        if (ch === 'k') this.#fail('named backreferences are not allowed');
        if (ch === 'b' || ch === 'B') this.#fail('word-boundary assertions are not supported');
        if (ch === 'p' || ch === 'P') this.#fail('Unicode property escapes are not supported');
        if (SYNTAX.has(ch)) return [[c, c]];
        this.#fail(`invalid escape \\${ch}`);
    }
    return this.#fail('invalid escape');
  }

  #hex(n: number): number {
    const digits = String.fromCodePoint(...this.#cps.slice(this.#at, this.#at + n));
    if (!new RegExp(`^[0-9A-Fa-f]{${n}}$`).test(digits)) this.#fail('malformed hex escape');
    this.#at += n;
    return Number.parseInt(digits, 16);
  }

  #class(): Ranges {
    this.#at++; // [
    const negated = this.#eat('^');
    const ranges: (readonly [number, number])[] = [];
    const single = (): { ranges: Ranges; cp?: number } => {
      const c = this.#peek();
      if (c === undefined) this.#fail('unterminated character class');
      if (c === 0x5c) {
        this.#at++;
        if (this.#peek() === 0x62) {
          this.#at++;
          return { ranges: [[8, 8]], cp: 8 }; // [\b] is backspace
        }
        const r = this.#escape(true);
        return r.length === 1 && r[0]![0] === r[0]![1] ? { ranges: r, cp: r[0]![0] } : { ranges: r };
      }
      if (c === 0x5b) this.#fail('nested character classes are not supported');
      this.#at++;
      return { ranges: [[c, c]], cp: c };
    };
    while (this.#peek() !== 0x5d) {
      const a = single();
      if (this.#peek() === 0x2d && this.#peek(1) !== 0x5d && this.#peek(1) !== undefined) {
        this.#at++; // -
        const b = single();
        if (a.cp === undefined || b.cp === undefined) this.#fail('class escape in a range');
        if (a.cp > b.cp) this.#fail('range out of order in character class');
        ranges.push([a.cp, b.cp]);
      } else {
        ranges.push(...a.ranges);
      }
    }
    this.#at++; // ]
    return negated ? complement(ranges) : normalise(ranges);
  }
}

/** True when `n` holds any quantifier, `?` included: `(a?){20}a{20}` backtracks exponentially too. */
function quantified(n: Node): boolean {
  switch (n.k) {
    case 'repeat':
      return true;
    case 'seq':
      return n.items.some(quantified);
    case 'alt':
      return n.options.some(quantified);
    default:
      return false;
  }
}

function alternates(n: Node): boolean {
  switch (n.k) {
    case 'alt':
      return true;
    case 'repeat':
      return alternates(n.node);
    case 'seq':
      return n.items.some(alternates);
    default:
      return false;
  }
}

type State =
  | { t: 'set'; ranges: Ranges; out: number }
  | { t: 'split'; out: number; out2: number }
  | { t: 'bol'; out: number }
  | { t: 'eol'; out: number }
  | { t: 'match' };

/** Thompson construction; states are appended to `states`, `next` is where the fragment continues. */
function compile(n: Node, next: number, states: State[]): number {
  if (states.length > MAX_PATTERN_STATES)
    throw new PatternError(`pattern needs more than ${MAX_PATTERN_STATES} states`);
  const add = (s: State): number => states.push(s) - 1;
  switch (n.k) {
    case 'set':
      return add({ t: 'set', ranges: n.ranges, out: next });
    case 'bol':
      return add({ t: 'bol', out: next });
    case 'eol':
      return add({ t: 'eol', out: next });
    case 'seq': {
      let start = next;
      for (let i = n.items.length - 1; i >= 0; i--) start = compile(n.items[i]!, start, states);
      return start;
    }
    case 'alt': {
      let start = compile(n.options[n.options.length - 1]!, next, states);
      for (let i = n.options.length - 2; i >= 0; i--) {
        start = add({ t: 'split', out: compile(n.options[i]!, next, states), out2: start });
      }
      return start;
    }
    case 'repeat': {
      let start = next;
      if (n.max === Number.POSITIVE_INFINITY) {
        const loop = add({ t: 'split', out: -1, out2: next });
        const body = compile(n.node, loop, states);
        (states[loop] as { out: number }).out = body;
        start = loop;
      } else {
        for (let i = n.max - n.min; i > 0; i--) {
          start = add({ t: 'split', out: compile(n.node, start, states), out2: next });
        }
      }
      for (let i = 0; i < n.min; i++) start = compile(n.node, start, states);
      return start;
    }
  }
}

/** A compiled pattern; `test` runs in O(length of input × number of states). */
export interface SafePattern {
  readonly source: string;
  test(text: string): boolean;
}

/**
 * Checks `pattern` against the safe subset and compiles it. Throws SCHEMA_UNSUPPORTED (with `details.reason`) for a
 * pattern outside the subset or that ECMAScript itself would reject with the `u` flag.
 */
export function compileSafePattern(pattern: string): SafePattern {
  const reject = (reason: string): never => {
    throw new ProtocolError('SCHEMA_UNSUPPORTED', `pattern ${JSON.stringify(pattern)} is refused: ${reason}`, {
      details: { reason },
    });
  };
  if (typeof pattern !== 'string') return reject('not a string');
  if (pattern.length > MAX_PATTERN_LENGTH) return reject(`longer than ${MAX_PATTERN_LENGTH} characters`);
  if (LONE_SURROGATE.test(pattern)) return reject('holds a lone surrogate');
  try {
    new RegExp(pattern, 'u');
  } catch (e) {
    return reject(`not a valid ECMAScript regular expression (${(e as Error).message})`);
  }
  const states: State[] = [];
  let start: number;
  try {
    const match = states.push({ t: 'match' }) - 1;
    start = compile(new Parser(pattern).parse(), match, states);
  } catch (e) {
    if (e instanceof PatternError) return reject(e.message);
    throw e;
  }
  return { source: pattern, test: (text) => run(states, start, text) };
}

function run(states: readonly State[], start: number, text: string): boolean {
  const cps = Array.from(text, (ch) => ch.codePointAt(0)!);
  const seen = new Int32Array(states.length).fill(-1);
  let current: number[] = [];
  let next: number[] = [];
  let generation = 0;
  // Adds `s` and its epsilon closure at input position `pos`; returns true when the match state is reached.
  const add = (list: number[], s: number, pos: number): boolean => {
    const stack = [s];
    while (stack.length > 0) {
      const i = stack.pop()!;
      if (seen[i] === generation) continue;
      seen[i] = generation;
      const st = states[i]!;
      switch (st.t) {
        case 'match':
          return true;
        case 'split':
          stack.push(st.out2, st.out);
          break;
        case 'bol':
          if (pos === 0) stack.push(st.out);
          break;
        case 'eol':
          if (pos === cps.length) stack.push(st.out);
          break;
        case 'set':
          list.push(i);
          break;
      }
    }
    return false;
  };
  for (let pos = 0; ; pos++) {
    // Unanchored search (JSON Schema `pattern` semantics): a match may start at any position.
    if (add(current, start, pos)) return true;
    if (pos === cps.length) return false;
    generation++;
    next.length = 0;
    const c = cps[pos]!;
    for (const i of current) {
      const st = states[i] as { ranges: Ranges; out: number };
      if (inRanges(st.ranges, c) && add(next, st.out, pos + 1)) return true;
    }
    [current, next] = [next, current];
  }
}
