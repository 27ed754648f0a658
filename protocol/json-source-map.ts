// A JSON parser that remembers where each value came from, so that an error about `/tools/2/undo/tool` can be
// reported at line:column of the file a person edits. Strict RFC 8259 grammar, plus I-JSON's rule that member names
// are unique (RFC 7493 §2.3). Bounded in size and depth like parseJson.

import { type JsonValue, MAX_JSON_DEPTH } from './canonical-json.ts';
import { ProtocolError } from './errors.ts';
import { formatJsonPointer, type JsonPath } from './json-pointer.ts';

/** 1-based line and column (column counted in Unicode code points), and the 0-based UTF-16 offset. */
export interface SourcePosition {
  readonly line: number;
  readonly column: number;
  readonly offset: number;
}

export interface JsonSourceMap {
  readonly value: JsonValue;
  /**
   * Where the value at `pointer` starts (`'value'`), or where its member name starts (`'key'`, for object members;
   * falls back to the value). Undefined when nothing is at `pointer`.
   */
  positionOf(pointer: string, part?: 'key' | 'value'): SourcePosition | undefined;
  /** The position of the deepest part of `path` that exists, and whether that is `path` itself. */
  locate(path: JsonPath, part?: 'key' | 'value'): { position: SourcePosition; exact: boolean };
}

interface Spots {
  value: number;
  key?: number;
}

class Scanner {
  readonly text: string;
  at = 0;
  readonly spots = new Map<string, Spots>();
  readonly #maxDepth: number;
  readonly #position: (offset: number) => SourcePosition;

  constructor(text: string, maxDepth: number, position: (offset: number) => SourcePosition) {
    this.text = text;
    this.#maxDepth = maxDepth;
    this.#position = position;
  }

  fail(message: string, offset = this.at, code: 'JSON_MALFORMED' | 'JSON_DUPLICATE_MEMBER' = 'JSON_MALFORMED'): never {
    const p = this.#position(offset);
    throw new ProtocolError(code, `line ${p.line}, column ${p.column}: ${message}`, { details: { ...p } });
  }

  skipSpace(): void {
    for (;;) {
      const c = this.text.charCodeAt(this.at);
      if (c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d) this.at++;
      else return;
    }
  }

  describe(): string {
    if (this.at >= this.text.length) return 'end of input';
    const cp = this.text.codePointAt(this.at)!;
    return cp < 0x20
      ? `control character U+${cp.toString(16).padStart(4, '0').toUpperCase()}`
      : JSON.stringify(String.fromCodePoint(cp));
  }

  value(path: string, depth: number, keyAt?: number): JsonValue {
    this.skipSpace();
    if (depth > this.#maxDepth) this.nestingTooDeep();
    const start = this.at;
    this.spots.set(path, keyAt === undefined ? { value: start } : { value: start, key: keyAt });
    const c = this.text[this.at];
    switch (c) {
      case '{':
        return this.object(path, depth);
      case '[':
        return this.array(path, depth);
      case '"':
        return this.string();
      case 't':
        return this.literal('true', true);
      case 'f':
        return this.literal('false', false);
      case 'n':
        return this.literal('null', null);
      default:
        if (c === '-' || (c !== undefined && c >= '0' && c <= '9')) return this.number();
        return this.fail(`expected a JSON value, found ${this.describe()}`);
    }
  }

  literal<T extends JsonValue>(word: string, v: T): T {
    if (!this.text.startsWith(word, this.at)) this.fail(`expected ${word}`);
    this.at += word.length;
    return v;
  }

  number(): number {
    const m = /-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?/y;
    m.lastIndex = this.at;
    const found = m.exec(this.text);
    if (!found || found[0] === '-') this.fail('malformed number');
    const next = this.text[this.at + found[0].length];
    if (next !== undefined && /[0-9.eE+-]/.test(next)) this.fail('malformed number', this.at + found[0].length);
    this.at += found[0].length;
    return Number(found[0]);
  }

  string(): string {
    this.at++; // opening quote
    let out = '';
    let run = this.at;
    for (;;) {
      const c = this.text.charCodeAt(this.at);
      if (Number.isNaN(c)) this.fail('unterminated string');
      if (c === 0x22) {
        out += this.text.slice(run, this.at);
        this.at++;
        return out;
      }
      if (c < 0x20) this.fail(`${this.describe()} must be escaped in a string`);
      if (c !== 0x5c) {
        this.at++;
        continue;
      }
      out += this.text.slice(run, this.at);
      const e = this.text[this.at + 1];
      const simple: Record<string, string> = {
        '"': '"',
        '\\': '\\',
        '/': '/',
        b: '\b',
        f: '\f',
        n: '\n',
        r: '\r',
        t: '\t',
      };
      if (e !== undefined && Object.hasOwn(simple, e)) {
        out += simple[e];
        this.at += 2;
      } else if (e === 'u') {
        const hex = this.text.slice(this.at + 2, this.at + 6);
        if (!/^[0-9A-Fa-f]{4}$/.test(hex)) this.fail('malformed \\u escape');
        out += String.fromCharCode(Number.parseInt(hex, 16));
        this.at += 6;
      } else {
        this.fail('invalid escape in string');
      }
      run = this.at;
    }
  }

  array(path: string, depth: number): JsonValue[] {
    this.at++;
    const out: JsonValue[] = [];
    this.skipSpace();
    if (this.text[this.at] === ']') {
      this.at++;
      return out;
    }
    for (;;) {
      out.push(this.value(`${path}/${out.length}`, depth + 1));
      this.skipSpace();
      const c = this.text[this.at];
      if (c === ',') {
        const commaAt = this.at++;
        this.skipSpace();
        if (this.text[this.at] === ']') this.fail('trailing comma before "]"', commaAt);
      } else if (c === ']') {
        this.at++;
        return out;
      } else this.fail(`expected "," or "]", found ${this.describe()}`);
    }
  }

  object(path: string, depth: number): { [k: string]: JsonValue } {
    this.at++;
    const out: { [k: string]: JsonValue } = {};
    this.skipSpace();
    if (this.text[this.at] === '}') {
      this.at++;
      return out;
    }
    for (;;) {
      this.skipSpace();
      if (this.text[this.at] !== '"') this.fail(`expected a member name in double quotes, found ${this.describe()}`);
      const keyAt = this.at;
      const key = this.string();
      if (Object.hasOwn(out, key))
        this.fail(`duplicate member name ${JSON.stringify(key)}`, keyAt, 'JSON_DUPLICATE_MEMBER');
      this.skipSpace();
      if (this.text[this.at] !== ':') this.fail(`expected ":", found ${this.describe()}`);
      this.at++;
      const v = this.value(`${path}${formatJsonPointer([key])}`, depth + 1, keyAt);
      // defineProperty, as JSON.parse does: a member named "__proto__" stays an own member, not a prototype.
      Object.defineProperty(out, key, { value: v, enumerable: true, writable: true, configurable: true });
      this.skipSpace();
      const c = this.text[this.at];
      if (c === ',') {
        const commaAt = this.at++;
        this.skipSpace();
        if (this.text[this.at] === '}') this.fail('trailing comma before "}"', commaAt);
      } else if (c === '}') {
        this.at++;
        return out;
      } else this.fail(`expected "," or "}", found ${this.describe()}`);
    }
  }

  nestingTooDeep(): never {
    const p = this.#position(this.at);
    throw new ProtocolError('CANON_TOO_DEEP', `line ${p.line}, column ${p.column}: nesting exceeds ${this.#maxDepth}`, {
      details: { ...p },
    });
  }
}

/**
 * Parses JSON text, remembering positions. Throws JSON_TOO_LARGE (over `maxBytes` UTF-8 bytes), JSON_MALFORMED or
 * JSON_DUPLICATE_MEMBER (details carry line, column, offset), or CANON_TOO_DEEP (a value deeper than `maxDepth`,
 * default MAX_JSON_DEPTH, as parseJson). Accepts exactly what JSON.parse accepts, except duplicate member names.
 */
export function parseJsonWithPositions(text: string, options: { maxBytes: number; maxDepth?: number }): JsonSourceMap {
  if (typeof text !== 'string') throw new ProtocolError('JSON_MALFORMED', 'JSON input must be text');
  if (text.length * 3 > options.maxBytes && Buffer.byteLength(text, 'utf8') > options.maxBytes) {
    throw new ProtocolError('JSON_TOO_LARGE', `JSON exceeds ${options.maxBytes} bytes`, {
      details: { maxBytes: options.maxBytes },
    });
  }
  const lineStarts = [0];
  for (let i = text.indexOf('\n'); i !== -1; i = text.indexOf('\n', i + 1)) lineStarts.push(i + 1);
  const position = (offset: number): SourcePosition => {
    let lo = 0;
    let hi = lineStarts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (lineStarts[mid]! <= offset) lo = mid;
      else hi = mid - 1;
    }
    let column = 1;
    for (let i = lineStarts[lo]!; i < offset; i++) {
      const c = text.charCodeAt(i);
      if (c < 0xdc00 || c > 0xdfff || i === lineStarts[lo] || !isHigh(text.charCodeAt(i - 1))) column++;
    }
    return { line: lo + 1, column, offset };
  };
  const s = new Scanner(text, options.maxDepth ?? MAX_JSON_DEPTH, position);
  const value = s.value('', 0);
  s.skipSpace();
  if (s.at < text.length) s.fail(`unexpected ${s.describe()} after the JSON value`);
  const spots = s.spots;
  const positionOf = (pointer: string, part: 'key' | 'value' = 'value'): SourcePosition | undefined => {
    const spot = spots.get(pointer);
    if (!spot) return undefined;
    return position(part === 'key' && spot.key !== undefined ? spot.key : spot.value);
  };
  return {
    value,
    positionOf,
    locate(path, part = 'value') {
      for (let n = path.length; n >= 0; n--) {
        const p = positionOf(formatJsonPointer(path.slice(0, n)), n === path.length ? part : 'value');
        if (p) return { position: p, exact: n === path.length };
      }
      return { position: position(0), exact: false };
    },
  };
}

function isHigh(c: number): boolean {
  return c >= 0xd800 && c <= 0xdbff;
}
