// Fuzz harness for every decoder of outside bytes: random inputs plus structure-aware mutations
// of golden vectors. A decoder passes when each input either decodes or throws an OutpostError;
// anything else (TypeError, RangeError, a non-Error) fails the run with a shrunk counterexample.
// Case count: OUTPOST_FUZZ_CASES (default 10,000; `npm run fuzz` sets 1,000,000). Seed: OUTPOST_FUZZ_SEED.

import assert from 'node:assert/strict';
import fc from 'fast-check';
import { isOutpostError } from '../../protocol/errors.ts';

export function fuzzCases(defaultCases = 10_000): number {
  const n = Number(process.env.OUTPOST_FUZZ_CASES);
  return Number.isSafeInteger(n) && n > 0 ? n : defaultCases;
}

function fuzzSeed(): number | undefined {
  const s = Number(process.env.OUTPOST_FUZZ_SEED);
  return Number.isSafeInteger(s) ? s : undefined;
}

type ByteMutation =
  | { op: 'flip'; at: number; bit: number }
  | { op: 'set'; at: number; value: number }
  | { op: 'truncate'; at: number }
  | { op: 'insert'; at: number; bytes: Uint8Array }
  | { op: 'delete'; at: number; count: number }
  | { op: 'duplicate'; at: number; count: number };

const byteMutation: fc.Arbitrary<ByteMutation> = fc.oneof(
  fc.record({ op: fc.constant('flip' as const), at: fc.nat(), bit: fc.nat(7) }),
  fc.record({
    op: fc.constant('set' as const),
    at: fc.nat(),
    value: fc.constantFrom(0, 1, 0x7f, 0x80, 0xc0, 0xdb, 0x94, 0xc3, 0xff),
  }),
  fc.record({ op: fc.constant('truncate' as const), at: fc.nat() }),
  fc.record({
    op: fc.constant('insert' as const),
    at: fc.nat(),
    bytes: fc.uint8Array({ minLength: 1, maxLength: 16 }),
  }),
  fc.record({ op: fc.constant('delete' as const), at: fc.nat(), count: fc.integer({ min: 1, max: 8 }) }),
  fc.record({ op: fc.constant('duplicate' as const), at: fc.nat(), count: fc.integer({ min: 1, max: 32 }) }),
);

/** Applies byte-level mutations to a copy of `input`. */
export function mutateBytes(input: Uint8Array, mutations: readonly ByteMutation[]): Uint8Array {
  let b = Uint8Array.from(input);
  for (const m of mutations) {
    const at = b.length === 0 ? 0 : m.at % (b.length + (m.op === 'insert' ? 1 : 0));
    switch (m.op) {
      case 'flip':
        if (b.length > 0) b[at % b.length]! ^= 1 << m.bit;
        break;
      case 'set':
        if (b.length > 0) b[at % b.length] = m.value;
        break;
      case 'truncate':
        b = b.subarray(0, at);
        break;
      case 'insert':
        b = Uint8Array.from([...b.subarray(0, at), ...m.bytes, ...b.subarray(at)]);
        break;
      case 'delete':
        b = Uint8Array.from([...b.subarray(0, at), ...b.subarray(at + m.count)]);
        break;
      case 'duplicate':
        b = Uint8Array.from([
          ...b.subarray(0, at + m.count),
          ...b.subarray(at, at + m.count),
          ...b.subarray(at + m.count),
        ]);
        break;
    }
  }
  return b;
}

/** Inputs: random bytes, or a golden vector with 1..6 byte mutations. */
export function byteInputs(seeds: readonly Uint8Array[], maxRandomBytes = 1024): fc.Arbitrary<Uint8Array> {
  const random = fc.uint8Array({ maxLength: maxRandomBytes });
  if (seeds.length === 0) return random;
  const mutated = fc
    .tuple(fc.constantFrom(...seeds), fc.array(byteMutation, { minLength: 1, maxLength: 6 }))
    .map(([s, ms]) => mutateBytes(s, ms));
  return fc.oneof(
    { arbitrary: random, weight: 10 },
    { arbitrary: mutated, weight: 30 },
    { arbitrary: fc.constantFrom(...seeds), weight: 1 },
  );
}

const jsonLeaf = fc.oneof(
  fc.constant(null),
  fc.boolean(),
  fc.integer(),
  fc.double(),
  fc.string({ maxLength: 20 }),
  fc.constantFrom('', 'x'.repeat(70_000), '__proto__', 'constructor', '\u0000', '\ud800', -1, 2 ** 53, 1e308),
);
const jsonAny: fc.Arbitrary<unknown> = fc.letrec((tie) => ({
  v: fc.oneof(
    { depthSize: 'small' },
    jsonLeaf,
    fc.array(tie('v'), { maxLength: 4 }),
    fc.dictionary(fc.string({ maxLength: 8 }), tie('v'), { maxKeys: 4 }),
  ),
})).v;

type JsonMutation = { path: number; op: 'delete' | 'replace' | 'addKey' | 'wrap'; value: unknown; key: string };

function paths(v: unknown, prefix: (string | number)[] = [], out: (string | number)[][] = []): (string | number)[][] {
  out.push(prefix);
  if (v !== null && typeof v === 'object') {
    for (const [k, c] of Object.entries(v)) paths(c, [...prefix, Array.isArray(v) ? Number(k) : k], out);
  }
  return out;
}

/** Applies structure-aware mutations (delete/replace/add member/wrap) to a deep copy of a JSON value. */
export function mutateJson(input: unknown, mutations: readonly JsonMutation[]): unknown {
  let root: unknown = structuredClone(input);
  for (const m of mutations) {
    const all = paths(root);
    const path = all[m.path % all.length]!;
    if (path.length === 0) {
      root = m.op === 'wrap' ? [root] : m.op === 'replace' ? m.value : root;
      continue;
    }
    let parent = root as Record<string | number, unknown>;
    for (const p of path.slice(0, -1)) parent = parent[p] as Record<string | number, unknown>;
    const last = path[path.length - 1]!;
    if (m.op === 'delete') {
      if (Array.isArray(parent)) parent.splice(Number(last), 1);
      else delete parent[last];
    } else if (m.op === 'replace') parent[last] = m.value;
    else if (m.op === 'wrap') parent[last] = { v: parent[last] };
    else if (parent[last] !== null && typeof parent[last] === 'object' && !Array.isArray(parent[last])) {
      (parent[last] as Record<string, unknown>)[m.key] = m.value;
    }
  }
  return root;
}

/** Inputs for JSON decoders: structure-aware mutations of golden values, their text with byte damage, and junk text. */
export function jsonTextInputs(seeds: readonly unknown[]): fc.Arbitrary<string> {
  const jsonMutation: fc.Arbitrary<JsonMutation> = fc.record({
    path: fc.nat(),
    op: fc.constantFrom('delete' as const, 'replace' as const, 'addKey' as const, 'wrap' as const),
    value: jsonAny,
    key: fc.oneof(fc.string({ maxLength: 8 }), fc.constantFrom('__proto__', 'extra', 'constructor')),
  });
  const structural = fc
    .tuple(fc.constantFrom(...seeds), fc.array(jsonMutation, { minLength: 1, maxLength: 4 }))
    .map(([s, ms]) => JSON.stringify(mutateJson(s, ms)) ?? 'null');
  const damaged = fc
    .tuple(fc.constantFrom(...seeds), fc.array(byteMutation, { minLength: 1, maxLength: 4 }))
    .map(([s, ms]) => Buffer.from(mutateBytes(Buffer.from(JSON.stringify(s)), ms)).toString('utf8'));
  return fc.oneof(
    { arbitrary: structural, weight: 4 },
    { arbitrary: damaged, weight: 2 },
    { arbitrary: fc.string({ maxLength: 200 }), weight: 1 },
    { arbitrary: jsonAny.map((v) => JSON.stringify(v) ?? 'null'), weight: 1 },
  );
}

/**
 * Asserts that `decode` never throws anything but an OutpostError over `fuzzCases()` inputs.
 * Returns how many inputs decoded and how many were rejected (so a test can check both happen).
 */
export function assertDecoderTotal<I>(
  arbitrary: fc.Arbitrary<I>,
  decode: (input: I) => unknown,
  options: { cases?: number } = {},
): { accepted: number; rejected: number; codes: Map<string, number> } {
  let accepted = 0;
  let rejected = 0;
  const codes = new Map<string, number>();
  fc.assert(
    fc.property(arbitrary, (input) => {
      try {
        decode(input);
        accepted++;
      } catch (e) {
        if (!isOutpostError(e)) {
          assert.fail(`decoder threw an untyped error: ${e instanceof Error ? `${e.name}: ${e.message}` : String(e)}`);
        }
        rejected++;
        codes.set(e.code, (codes.get(e.code) ?? 0) + 1);
      }
    }),
    { numRuns: options.cases ?? fuzzCases(), seed: fuzzSeed(), endOnFailure: false },
  );
  return { accepted, rejected, codes };
}
