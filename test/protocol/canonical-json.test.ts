import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { fromHex, fromUtf8, toHex, utf8 } from '../../protocol/bytes.ts';
import {
  canonicalBytes,
  canonicalize,
  MAX_JSON_DEPTH,
  parseJson,
  utf8ByteLength,
} from '../../protocol/canonical-json.ts';
import { isOutpostError } from '../../protocol/errors.ts';
import { vectorJson } from '../support/protocol-vectors.ts';

interface NumberVector {
  name: string;
  ieee754Hex: string;
  canonicalHex?: string;
  error?: string;
}
interface DocumentVector {
  name: string;
  inputHex: string;
  canonicalHex: string;
  valueOrder?: string[];
}
interface RejectVector {
  name: string;
  inputHex: string;
  error: string;
}

const numbers = vectorJson<{ vectors: NumberVector[] }>('canonical-signing', 'jcs-numbers.json').vectors;
const documents = vectorJson<{ vectors: DocumentVector[] }>('canonical-signing', 'jcs-documents.json').vectors;
const rejects = vectorJson<{ vectors: RejectVector[] }>('canonical-signing', 'jcs-rejects.json').vectors;

const MAX = 1 << 20;

function throwsCode(fn: () => unknown, code: string): void {
  assert.throws(fn, (e: unknown) => isOutpostError(e, code), `expected ${code}`);
}

function doubleFromBits(hex: string): number {
  return new DataView(fromHex(hex).buffer).getFloat64(0, false);
}

/**
 * Independent oracle: members written in the order of a plain `.sort()` of their names (UTF-16 code units),
 * scalars by JSON.stringify. (JSON.stringify alone would put integer-like names first.)
 */
function sortedStringify(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(sortedStringify).join(',')}]`;
  if (v !== null && typeof v === 'object') {
    const o = v as Record<string, unknown>;
    return `{${Object.keys(o)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${sortedStringify(o[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(v);
}

/** Rebuilds every object with its keys in a shuffled order given by `seed`. */
function shuffleKeys(v: unknown, seed: number): unknown {
  if (Array.isArray(v)) return v.map((x, i) => shuffleKeys(x, seed + i));
  if (v !== null && typeof v === 'object') {
    const keys = Object.keys(v);
    let s = seed;
    for (let i = keys.length - 1; i > 0; i--) {
      s = (s * 1103515245 + 12345) >>> 0;
      const j = s % (i + 1);
      [keys[i], keys[j]] = [keys[j]!, keys[i]!];
    }
    const out: Record<string, unknown> = {};
    for (const k of keys) {
      Object.defineProperty(out, k, {
        value: shuffleKeys((v as Record<string, unknown>)[k], s),
        enumerable: true,
        writable: true,
        configurable: true,
      });
    }
    return out;
  }
  return v;
}

const nested = (n: number): unknown => {
  let v: unknown = [];
  for (let i = 0; i < n; i++) v = [v];
  return v;
};

describe('RFC 8785 canonical JSON', () => {
  describe('number serialisation (RFC 8785 Appendix B)', () => {
    for (const v of numbers) {
      it(v.name, () => {
        const n = doubleFromBits(v.ieee754Hex);
        if (v.error) throwsCode(() => canonicalBytes(n), v.error);
        else assert.equal(toHex(canonicalBytes(n)), v.canonicalHex);
      });
    }
  });

  describe('documents', () => {
    for (const v of documents) {
      it(v.name, () => {
        const value = parseJson(fromUtf8(fromHex(v.inputHex)), MAX);
        assert.equal(toHex(canonicalBytes(value)), v.canonicalHex);
        if (v.valueOrder) {
          // Member order as published: each value appears after the previous one in the canonical text.
          const text = canonicalize(value);
          const at = v.valueOrder.map((s) => text.indexOf(JSON.stringify(s)));
          assert.ok(
            at.every((p, i) => p > 0 && (i === 0 || p > at[i - 1]!)),
            `order ${at.join(',')}`,
          );
        }
      });
    }
  });

  describe('refused input', () => {
    for (const v of rejects) {
      it(`${v.name} → ${v.error}`, () => {
        throwsCode(() => canonicalBytes(parseJson(fromUtf8(fromHex(v.inputHex)), MAX)), v.error);
      });
    }
  });

  describe('values JSON cannot carry', () => {
    const cases: [string, unknown, string][] = [
      ['undefined at top level', undefined, 'CANON_UNSUPPORTED_VALUE'],
      ['undefined in an array', [1, undefined], 'CANON_UNSUPPORTED_VALUE'],
      // biome-ignore lint/suspicious/noSparseArray: a hole is exactly what is tested
      ['a hole in a sparse array', [1, , 3], 'CANON_UNSUPPORTED_VALUE'],
      ['bigint', 1n, 'CANON_UNSUPPORTED_VALUE'],
      ['symbol', Symbol('s'), 'CANON_UNSUPPORTED_VALUE'],
      ['function', () => 1, 'CANON_UNSUPPORTED_VALUE'],
      ['Date', new Date(0), 'CANON_UNSUPPORTED_VALUE'],
      ['Map', new Map(), 'CANON_UNSUPPORTED_VALUE'],
      ['Uint8Array', new Uint8Array(2), 'CANON_UNSUPPORTED_VALUE'],
      ['class instance', new (class Point {})(), 'CANON_UNSUPPORTED_VALUE'],
      ['NaN inside an object', { a: Number.NaN }, 'CANON_NON_FINITE_NUMBER'],
      ['-Infinity', Number.NEGATIVE_INFINITY, 'CANON_NON_FINITE_NUMBER'],
      ['lone surrogate in a key', { '\udc00': 1 }, 'CANON_LONE_SURROGATE'],
      ['nesting one level too deep', nested(MAX_JSON_DEPTH + 1), 'CANON_TOO_DEEP'],
    ];
    for (const [name, value, code] of cases) it(`${name} → ${code}`, () => throwsCode(() => canonicalize(value), code));

    it('refuses a cycle as too deep instead of overflowing the stack', () => {
      const a: unknown[] = [];
      a.push(a);
      throwsCode(() => canonicalize(a), 'CANON_TOO_DEEP');
    });

    it('omits object members whose value is undefined, as JSON.stringify does', () => {
      assert.equal(canonicalize({ b: undefined, a: 1 }), '{"a":1}');
    });

    it('accepts null-prototype objects and keeps an own "__proto__" member', () => {
      const o = Object.create(null) as Record<string, unknown>;
      o.b = 1;
      o.a = 2;
      assert.equal(canonicalize(o), '{"a":2,"b":1}');
      assert.equal(canonicalize(parseJson('{"z":0,"__proto__":{"x":1}}', MAX)), '{"__proto__":{"x":1},"z":0}');
    });

    it('serialises nesting of exactly MAX_JSON_DEPTH', () => {
      assert.equal(
        canonicalize(nested(MAX_JSON_DEPTH)),
        `${'['.repeat(MAX_JSON_DEPTH + 1)}${']'.repeat(MAX_JSON_DEPTH + 1)}`,
      );
    });
  });

  describe('parseJson limits', () => {
    it('counts UTF-8 bytes, not UTF-16 units', () => {
      const text = '"éé"'; // 6 UTF-8 bytes, 4 UTF-16 units
      assert.equal(parseJson(text, 6), 'éé');
      throwsCode(() => parseJson(text, 5), 'JSON_TOO_LARGE');
    });

    it('takes nesting up to MAX_JSON_DEPTH and refuses one more', () => {
      const ok = `${'['.repeat(MAX_JSON_DEPTH + 1)}${']'.repeat(MAX_JSON_DEPTH + 1)}`;
      assert.ok(parseJson(ok, MAX));
      throwsCode(() => parseJson(`[${ok}]`, MAX), 'CANON_TOO_DEEP');
    });

    it('refuses nesting far beyond the stack with CANON_TOO_DEEP, not a RangeError (deep-nesting attack)', () => {
      // 200,000 levels fit in 400 kB, well under an envelope's 1 MiB; JSON.parse takes them, a recursive walk would not.
      const n = 200_000;
      throwsCode(() => parseJson(`${'['.repeat(n)}${']'.repeat(n)}`, MAX), 'CANON_TOO_DEEP');
      throwsCode(() => parseJson(`${'{"a":'.repeat(n)}1${'}'.repeat(n)}`, 4 * MAX), 'CANON_TOO_DEEP');
    });

    it('refuses input that is not a string', () => {
      throwsCode(() => parseJson(Buffer.from('{}') as unknown as string, MAX), 'JSON_MALFORMED');
    });
  });

  describe('properties', () => {
    it('matches JSON.stringify of the key-sorted value (independent oracle)', () => {
      fc.assert(
        fc.property(fc.jsonValue({ maxDepth: 6 }), (v) => {
          assert.equal(canonicalize(v), sortedStringify(v));
        }),
      );
    });

    it('is idempotent through JSON.parse', () => {
      fc.assert(
        fc.property(fc.jsonValue({ maxDepth: 6 }), (v) => {
          const once = canonicalize(v);
          assert.equal(canonicalize(JSON.parse(once)), once);
        }),
      );
    });

    it('does not depend on the order in which members were inserted', () => {
      fc.assert(
        fc.property(fc.jsonValue({ maxDepth: 6 }), fc.nat(), (v, seed) => {
          assert.equal(canonicalize(shuffleKeys(v, seed)), canonicalize(v));
        }),
      );
    });

    it('keeps every well-formed string, astral code points included, and round-trips it', () => {
      fc.assert(
        fc.property(fc.string({ unit: 'binary', maxLength: 40 }), (s) => {
          const c = canonicalize({ [s]: s });
          assert.deepEqual(JSON.parse(c), { [s]: s });
          assert.equal(fromUtf8(utf8(c)), c);
        }),
      );
    });

    it('refuses any string holding a lone surrogate', () => {
      const lone = fc.integer({ min: 0xd800, max: 0xdfff }).map((u) => String.fromCharCode(u));
      fc.assert(
        fc.property(fc.string({ maxLength: 5 }), lone, fc.string({ maxLength: 5 }), (a, s, b) => {
          fc.pre(!/[\ud800-\udfff]/.test(a + b));
          throwsCode(() => canonicalize(a + s + b), 'CANON_LONE_SURROGATE');
        }),
      );
    });
  });

  it('measures UTF-8 length without encoding, as an encoder would (lone surrogates as U+FFFD)', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary' }), fc.string({ unit: 'grapheme' }), (a, b) => {
        for (const t of [a, b, a + b]) assert.equal(utf8ByteLength(t), Buffer.byteLength(t, 'utf8'));
      }),
    );
    assert.equal(utf8ByteLength('\ud800'), 3);
    assert.equal(utf8ByteLength('\ud83d\ude00'), 4);
  });
});
