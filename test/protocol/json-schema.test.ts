import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Ajv2020 } from 'ajv/dist/2020.js';
import fc from 'fast-check';
import { isOutpostError } from '../../protocol/errors.ts';
import { resolveJsonPointer } from '../../protocol/json-pointer.ts';
import {
  assertJsonValid,
  decodeToolSchema,
  type JsonSchema,
  MAX_SCHEMA_DEPTH,
  MAX_SCHEMA_NODES,
  MAX_SCHEMA_PROPERTIES,
  type ObjectSchema,
  validateJson,
} from '../../protocol/json-schema.ts';

// ajv (a dependency of the MCP SDK) is the independent oracle for JSON Schema 2020-12 semantics.
const ajv = new Ajv2020({ strict: false, allErrors: true });

const closed = (properties: Record<string, JsonSchema>, required: string[] = []): ObjectSchema => ({
  type: 'object',
  additionalProperties: false,
  properties,
  ...(required.length > 0 ? { required } : {}),
});

const FULL: ObjectSchema = {
  type: 'object',
  title: 'Everything',
  description: 'Uses every keyword of the subset',
  additionalProperties: false,
  required: ['n', 's'],
  default: { n: 1, s: 'ab' },
  properties: {
    n: { type: 'integer', minimum: 0, maximum: 10, default: 1, description: 'count' },
    x: { type: 'number', exclusiveMinimum: 0, exclusiveMaximum: 1 },
    s: { type: 'string', minLength: 2, maxLength: 4, pattern: '^[a-z]+$', default: 'ab' },
    e: { type: 'string', enum: ['on', 'off'] },
    c: { type: 'string', const: 'fixed' },
    k: { type: 'number', enum: [1, 2.5] },
    b: { type: 'boolean', default: false },
    z: { type: 'null' },
    a: { type: 'array', items: { type: 'integer' }, minItems: 1, maxItems: 3, default: [1] },
    o: closed({ deep: closed({ v: { type: 'boolean', const: true } }, ['v']) }, ['deep']),
  },
};

function refusedAt(schema: unknown, pointer: string, message?: RegExp): void {
  assert.throws(
    () => decodeToolSchema(schema, 'input'),
    (e) => {
      if (!isOutpostError(e, 'SCHEMA_UNSUPPORTED')) return false;
      const issues = (e.details.issues ?? []) as { path: string; message: string }[];
      const hit = issues.find((i) => i.path === pointer);
      assert.ok(hit, `no issue at ${pointer}: ${JSON.stringify(issues)}`);
      if (message) assert.match(hit.message, message);
      return true;
    },
  );
}

describe('tool schema subset', () => {
  it('accepts a schema using every keyword of the subset, unchanged', () => {
    assert.deepEqual(decodeToolSchema(structuredClone(FULL), 'input'), FULL);
  });

  it('accepts an output schema with open objects, and the recommended empty input', () => {
    assert.ok(decodeToolSchema({ type: 'object', properties: { v: { type: 'object' } } }, 'output'));
    assert.ok(decodeToolSchema({ type: 'object', additionalProperties: false }, 'input'));
  });

  const refusals: [string, unknown, string, RegExp?][] = [
    [
      'a keyword outside the subset (format)',
      closed({ s: { type: 'string', format: 'email' } as never }),
      '/properties/s',
      /format/,
    ],
    ['composition ($ref)', closed({ s: { $ref: '#/x' } as never }), '/properties/s/type'],
    ['composition (oneOf)', { ...closed({}), oneOf: [] }, '', /oneOf/],
    ['a list of types', closed({ s: { type: ['string', 'null'] } as never }), '/properties/s/type'],
    [
      'a keyword of another type (minLength on a number)',
      closed({ n: { type: 'number', minLength: 1 } as never }),
      '/properties/n',
      /minLength/,
    ],
    ['an array without items', closed({ a: { type: 'array' } as never }), '/properties/a/items'],
    [
      'additionalProperties as a schema',
      { type: 'object', additionalProperties: { type: 'string' } },
      '/additionalProperties',
    ],
    ['an open input object at the root', { type: 'object' }, '/additionalProperties', /false/],
    ['an open input object deeper down', closed({ o: { type: 'object' } }), '/properties/o/additionalProperties'],
    ['a root that is not an object', { type: 'string' }, '/type', /object/],
    ['required naming an undeclared property', closed({ a: { type: 'null' } }, ['b']), '/required/0', /not declared/],
    ['required listing a name twice', closed({ a: { type: 'null' } }, ['a', 'a']), '/required/1', /twice/],
    [
      'minLength above maxLength',
      closed({ s: { type: 'string', minLength: 3, maxLength: 2 } }),
      '/properties/s/minLength',
    ],
    [
      'minItems above maxItems',
      closed({ a: { type: 'array', items: { type: 'null' }, minItems: 2, maxItems: 1 } }),
      '/properties/a/minItems',
    ],
    [
      'bounds that exclude every number',
      closed({ n: { type: 'number', exclusiveMinimum: 1, maximum: 1 } }),
      '/properties/n',
    ],
    [
      'an enum value of the wrong type',
      closed({ e: { type: 'string', enum: ['a', 1] } as never }),
      '/properties/e/enum/1',
    ],
    [
      'an enum value outside the bounds',
      closed({ n: { type: 'integer', minimum: 0, enum: [-1, 1] } }),
      '/properties/n/enum/0',
    ],
    ['an integer enum holding a fraction', closed({ n: { type: 'integer', enum: [1.5] } }), '/properties/n/enum/0'],
    [
      'an enum listing a value twice',
      closed({ e: { type: 'string', enum: ['a', 'a'] } }),
      '/properties/e/enum/1',
      /twice/,
    ],
    ['an empty enum', closed({ e: { type: 'string', enum: [] } }), '/properties/e/enum'],
    [
      'a const that breaks the pattern',
      closed({ s: { type: 'string', pattern: '^a', const: 'b' } }),
      '/properties/s/const',
    ],
    [
      'a default that does not fit',
      closed({ n: { type: 'integer', maximum: 5, default: 6 } }),
      '/properties/n/default',
      /default/,
    ],
    [
      'an object default missing a required member',
      { ...closed({ a: { type: 'null' } }, ['a']), default: {} },
      '/default',
    ],
    [
      'an unsafe pattern',
      closed({ s: { type: 'string', pattern: '(a|b)*' } }),
      '/properties/s/pattern',
      /repeated alternation/,
    ],
    ['an invalid pattern', closed({ s: { type: 'string', pattern: '[' } }), '/properties/s/pattern', /not a valid/],
    [
      'a property named __proto__ (from JSON text)',
      JSON.parse('{"type":"object","additionalProperties":false,"properties":{"__proto__":{"type":"null"}}}'),
      '/properties/__proto__',
    ],
    ['a property name that is not an identifier', closed({ 'a-b': { type: 'null' } }), '/properties/a-b'],
    ['a negative minLength', closed({ s: { type: 'string', minLength: -1 } }), '/properties/s/minLength'],
    [
      'a fractional maxItems',
      closed({ a: { type: 'array', items: { type: 'null' }, maxItems: 1.5 } }),
      '/properties/a/maxItems',
    ],
    ['an empty description', closed({ s: { type: 'string', description: '' } }), '/properties/s/description'],
  ];
  for (const [name, schema, pointer, message] of refusals)
    it(`refuses ${name}`, () => refusedAt(schema, pointer, message));

  it(`refuses schemas nested deeper than ${MAX_SCHEMA_DEPTH}`, () => {
    let s: JsonSchema = { type: 'null' };
    for (let i = 0; i <= MAX_SCHEMA_DEPTH; i++) s = closed({ c: s });
    refusedAt(s, '/properties/c'.repeat(MAX_SCHEMA_DEPTH + 1), /nesting/);
    let ok: JsonSchema = { type: 'null' };
    for (let i = 0; i < MAX_SCHEMA_DEPTH; i++) ok = closed({ c: ok });
    assert.ok(decodeToolSchema(ok, 'input'));
  });

  it(`refuses more than ${MAX_SCHEMA_PROPERTIES} properties and more than ${MAX_SCHEMA_NODES} nodes`, () => {
    const many = (n: number, child: () => JsonSchema) =>
      closed(Object.fromEntries(Array.from({ length: n }, (_, i) => [`p${i}`, child()])));
    refusedAt(
      many(MAX_SCHEMA_PROPERTIES + 1, () => ({ type: 'null' })),
      '/properties',
      /at most/,
    );
    assert.ok(
      decodeToolSchema(
        many(MAX_SCHEMA_PROPERTIES, () => ({ type: 'null' })),
        'input',
      ),
    );
    refusedAt(
      many(10, () => many(30, () => ({ type: 'null' }))),
      '',
      /nodes/,
    );
  });

  it('refuses values that are not plain JSON', () => {
    for (const v of [undefined, new Date(), { type: 'object', additionalProperties: false, title: () => 1 }]) {
      assert.throws(
        () => decodeToolSchema(v, 'input'),
        (e) => isOutpostError(e, 'SCHEMA_UNSUPPORTED'),
      );
    }
  });
});

describe('validateJson', () => {
  const good = {
    n: 3,
    s: 'abc',
    e: 'on',
    a: [1, 2],
    o: { deep: { v: true } },
    z: null,
    x: 0.5,
    b: true,
    c: 'fixed',
    k: 2.5,
  };

  it('accepts a value that fits every keyword', () => {
    assert.deepEqual(validateJson(FULL, good), { valid: true });
    assert.equal(ajv.validate(FULL, good), true);
  });

  const cases: [string, unknown, string, string][] = [
    ['wrong type', { ...good, n: 'three' }, '/n', 'type'],
    ['fraction for an integer', { ...good, n: 1.5 }, '/n', 'type'],
    ['below minimum', { ...good, n: -1 }, '/n', 'minimum'],
    ['above maximum', { ...good, n: 11 }, '/n', 'maximum'],
    ['at the exclusive minimum', { ...good, x: 0 }, '/x', 'exclusiveMinimum'],
    ['at the exclusive maximum', { ...good, x: 1 }, '/x', 'exclusiveMaximum'],
    ['too short (code points)', { ...good, s: 'a' }, '/s', 'minLength'],
    ['too long (code points)', { ...good, s: 'abcde' }, '/s', 'maxLength'],
    ['pattern mismatch', { ...good, s: 'ABC' }, '/s', 'pattern'],
    ['not in enum', { ...good, e: 'auto' }, '/e', 'enum'],
    ['not the const', { ...good, c: 'other' }, '/c', 'const'],
    ['missing required', (({ n: _, ...rest }) => rest)(good), '/n', 'required'],
    ['unknown member', { ...good, extra: 1 }, '/extra', 'additionalProperties'],
    ['too few items', { ...good, a: [] }, '/a', 'minItems'],
    ['too many items', { ...good, a: [1, 2, 3, 4] }, '/a', 'maxItems'],
    ['bad item', { ...good, a: [1, 'x'] }, '/a/1', 'type'],
    ['nested missing member', { ...good, o: { deep: {} } }, '/o/deep/v', 'required'],
    ['nested unknown member', { ...good, o: { deep: { v: true, w: 1 } } }, '/o/deep/w', 'additionalProperties'],
    ['null where null is not allowed', { ...good, b: null }, '/b', 'type'],
    ['non-JSON value', { ...good, n: Number.NaN }, '/n', 'type'],
    ['a Date is no object', new Date(0), '', 'type'],
  ];
  for (const [name, value, path, keyword] of cases) {
    it(`${name} → ${keyword} at ${path || '(root)'}`, () => {
      const r = validateJson(FULL, value);
      assert.equal(r.valid, false);
      assert.ok(!r.valid && r.errors.some((e) => e.path === path && e.keyword === keyword), JSON.stringify(r));
    });
  }

  it('counts string length in code points, as JSON Schema does', () => {
    const s: JsonSchema = { type: 'string', minLength: 2, maxLength: 2 };
    assert.equal(validateJson(s, '😀😀').valid, true);
    assert.equal(validateJson(s, '😀').valid, false);
  });

  it('pattern CPU attack: a string over maxLength is refused by length alone, its pattern never run', () => {
    // Matching costs O(length × NFA states); a caller must not make the gate scan a megabyte the schema caps at 8.
    const s: JsonSchema = { type: 'string', maxLength: 8, pattern: '^[a-z]+$' };
    const r = validateJson(s, 'A'.repeat(100_000));
    assert.ok(!r.valid);
    assert.deepEqual(
      r.errors.map((e) => e.keyword),
      ['maxLength'],
    );
    const short = validateJson(s, 'ABC');
    assert.deepEqual(!short.valid && short.errors.map((e) => e.keyword), ['pattern']);
  });

  it('looks up properties as own members only', () => {
    const r = validateJson(closed({ a: { type: 'null' } }), JSON.parse('{"constructor":1,"__proto__":2,"toString":3}'));
    assert.ok(!r.valid);
    assert.deepEqual(
      r.errors.map((e) => e.path),
      ['/constructor', '/__proto__', '/toString'],
    );
  });

  it('stops after maxErrors, refuses values deeper than maxDepth or larger than maxNodes', () => {
    const wide = Object.fromEntries(Array.from({ length: 50 }, (_, i) => [`k${i}`, i]));
    const r = validateJson(closed({}), wide, { maxErrors: 5 });
    assert.ok(!r.valid && r.errors.length === 5);
    let deep: unknown = 1;
    for (let i = 0; i < 20; i++) deep = [deep];
    let nested: JsonSchema = { type: 'integer' };
    for (let i = 0; i < 20; i++) nested = { type: 'array', items: nested };
    assert.equal(validateJson(nested, deep).valid, true);
    const d = validateJson(nested, deep, { maxDepth: 10 });
    assert.ok(!d.valid && d.errors[0]!.keyword === 'depth');
    const big = validateJson({ type: 'array', items: { type: 'integer' } }, new Array(1000).fill(1), { maxNodes: 100 });
    assert.ok(!big.valid && big.errors.some((e) => e.keyword === 'size'));
  });

  it('never throws, whatever the value (cycles included)', () => {
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    const open: JsonSchema = { type: 'object', properties: { self: { type: 'object' } } };
    assert.equal(validateJson(open, cyclic).valid, true);
    let chain: JsonSchema = { type: 'object' };
    for (let i = 0; i < 8; i++) chain = { type: 'object', properties: { self: chain } };
    assert.doesNotThrow(() => validateJson(chain, cyclic));
    fc.assert(
      fc.property(fc.anything({ withBigInt: true, withDate: true, withMap: true, withNullPrototype: true }), (v) => {
        validateJson(FULL, v);
        validateJson({ type: 'array', items: FULL }, [v, v]);
      }),
    );
  });

  it('assertJsonValid throws SCHEMA_VIOLATION carrying the errors', () => {
    assert.throws(
      () => assertJsonValid(FULL, { ...good, n: 99 }, 'arguments of fan.set'),
      (e) =>
        isOutpostError(e, 'SCHEMA_VIOLATION') &&
        /arguments of fan\.set/.test(e.message) &&
        (e.details.errors as { path: string }[])[0]!.path === '/n',
    );
    assert.doesNotThrow(() => assertJsonValid(FULL, good, 'x'));
  });

  // ---- differential testing against ajv -------------------------------------------------------------------

  const names = fc.constantFrom('a', 'b', 'c');
  const patterns = fc.constantFrom('^[a-c]+$', 'b', '^\\d{2}$', '😀', '^.?$');
  const bound = fc.integer({ min: -5, max: 5 });
  const schemaArb: fc.Arbitrary<JsonSchema> = fc.letrec<{ node: JsonSchema }>((tie) => ({
    node: fc.oneof(
      { depthSize: 'small', withCrossShrink: true },
      fc.constant<JsonSchema>({ type: 'null' }),
      fc.record({ type: fc.constant('boolean' as const), const: fc.boolean() }, { requiredKeys: ['type'] }),
      fc.record(
        {
          type: fc.constantFrom('number' as const, 'integer' as const),
          minimum: bound,
          maximum: bound,
          exclusiveMinimum: bound,
          exclusiveMaximum: bound,
          enum: fc.array(fc.integer({ min: -3, max: 3 }), { minLength: 1, maxLength: 3 }),
        },
        { requiredKeys: ['type'] },
      ),
      fc.record(
        {
          type: fc.constant('string' as const),
          minLength: fc.nat(3),
          maxLength: fc.nat(3),
          pattern: patterns,
          enum: fc.array(fc.constantFrom('a', 'bb', '12', '😀'), { minLength: 1, maxLength: 3 }),
        },
        { requiredKeys: ['type'] },
      ),
      fc.record(
        { type: fc.constant('array' as const), items: tie('node'), minItems: fc.nat(2), maxItems: fc.nat(3) },
        { requiredKeys: ['type', 'items'] },
      ),
      fc
        .record(
          {
            type: fc.constant('object' as const),
            properties: fc.dictionary(names, tie('node'), { maxKeys: 3 }),
            required: fc.uniqueArray(names, { maxLength: 3 }),
            additionalProperties: fc.boolean(),
          },
          { requiredKeys: ['type'] },
        )
        .map((o) => o as JsonSchema),
    ),
  })).node;
  const valueArb = fc.letrec<{ v: unknown }>((tie) => ({
    v: fc.oneof(
      { depthSize: 'small' },
      fc.constantFrom(null, true, false, 0, -1, 1, 2, 1.5, 3, -5, 5, 'a', 'bb', '12', '😀', '', 'abc', 'b'),
      fc.array(tie('v'), { maxLength: 4 }),
      fc.dictionary(fc.constantFrom('a', 'b', 'c', 'd'), tie('v'), { maxKeys: 4 }),
    ),
  })).v;

  it('agrees with ajv (JSON Schema 2020-12) on random schemas and values', () => {
    fc.assert(
      fc.property(schemaArb, fc.array(valueArb, { minLength: 1, maxLength: 6 }), (schema, values) => {
        const check = ajv.compile(schema);
        for (const v of values) {
          assert.equal(validateJson(schema, v).valid, check(v), `${JSON.stringify(schema)} on ${JSON.stringify(v)}`);
        }
      }),
      { numRuns: 1500 },
    );
  });

  it('every error path leads into the value (or, for required, to a member absent from an object that exists)', () => {
    fc.assert(
      fc.property(schemaArb, valueArb, (schema, v) => {
        const r = validateJson(schema, v);
        if (r.valid) return;
        for (const e of r.errors) {
          if (e.keyword === 'required') {
            const parentPointer = e.path.slice(0, e.path.lastIndexOf('/'));
            const parent = resolveJsonPointer(v, parentPointer);
            assert.ok(parent !== null && typeof parent === 'object' && !Array.isArray(parent));
            assert.equal(resolveJsonPointer(v, e.path), undefined);
          } else {
            assert.notEqual(resolveJsonPointer(v, e.path), undefined, e.path);
          }
        }
      }),
      { numRuns: 1000 },
    );
  });
});
