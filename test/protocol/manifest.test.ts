import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { describe, it } from 'node:test';
import { Ajv2020 } from 'ajv/dist/2020.js';
import fc from 'fast-check';
import { canonicalize } from '../../protocol/canonical-json.ts';
import { isOutpostError } from '../../protocol/errors.ts';
import {
  type CapabilityManifest,
  decodeManifest,
  type Interlock,
  isWithinAllowedHours,
  MAX_TOOLS,
  manifestHash,
  manifestJsonSchema,
  planUndo,
} from '../../protocol/manifest.ts';
import { vectorJson } from '../support/protocol-vectors.ts';

const ROOT = resolve(import.meta.dirname, '../..');
const example = (name: string): string => readFileSync(resolve(ROOT, 'examples/manifests', name), 'utf8');

interface ValidVector {
  name: string;
  manifestText: string;
  canonicalText: string;
  hash: string;
}
interface InvalidVector {
  name: string;
  manifestText: string;
  error: string;
  issues: { path: string | null; line: number | null; column: number | null }[];
}
const valid = vectorJson<{ vectors: ValidVector[] }>('manifest', 'valid.json').vectors;
const invalid = vectorJson<{ vectors: InvalidVector[] }>('manifest', 'invalid.json').vectors;

const greenhouse = (): Record<string, unknown> & CapabilityManifest => JSON.parse(example('greenhouse.json'));
// biome-ignore lint/suspicious/noExplicitAny: the table below pokes at arbitrary members of a manifest
type Mutable = Record<string, any>;

function issuesOf(fn: () => unknown): { code: string; issues: { path: string; message: string }[] } {
  try {
    fn();
  } catch (e) {
    assert.ok(isOutpostError(e), String(e));
    return { code: e.code, issues: (e.details.issues ?? []) as { path: string; message: string }[] };
  }
  assert.fail('expected the manifest to be refused');
}

function refusedAt(m: unknown, path: string, message: RegExp): void {
  const { code, issues } = issuesOf(() => decodeManifest(m));
  assert.equal(code, 'MANIFEST_INVALID');
  assert.ok(
    issues.some((i) => i.path === path && message.test(i.message)),
    `wanted ${path} ~ ${message}, got ${JSON.stringify(issues)}`,
  );
}

describe('CapabilityManifest', () => {
  describe('vectors: valid manifests and their hashes', () => {
    for (const v of valid) {
      it(v.name, () => {
        const m = decodeManifest(v.manifestText);
        assert.equal(canonicalize(m), v.canonicalText);
        assert.equal(manifestHash(m), v.hash);
        // Decoding a parsed value gives the same manifest; nothing is added or dropped.
        assert.deepEqual(decodeManifest(JSON.parse(v.manifestText)), m);
        assert.deepEqual(m, JSON.parse(v.manifestText));
      });
    }
  });

  describe('vectors: refused manifests, with where each problem is', () => {
    for (const v of invalid) {
      it(`${v.name} → ${v.error}`, () => {
        try {
          decodeManifest(v.manifestText);
          assert.fail('accepted');
        } catch (e) {
          assert.ok(isOutpostError(e, v.error), String(e));
          const got =
            (e.details.issues as { path: string; line: number; column: number }[] | undefined)?.map((i) => ({
              path: i.path,
              line: i.line,
              column: i.column,
            })) ?? (e.details.line ? [{ path: null, line: e.details.line, column: e.details.column }] : []);
          assert.deepEqual(got, v.issues);
        }
      });
    }

    it('every file in examples/manifests/invalid/ is one of the vectors, byte for byte', () => {
      const dir = resolve(ROOT, 'examples/manifests/invalid');
      const files = readdirSync(dir).filter((f) => f.endsWith('.json'));
      assert.ok(files.length >= 8);
      for (const f of files) {
        const v = invalid.find((x) => x.name === `examples/manifests/invalid/${f}`);
        assert.ok(v, `${f} has no vector`);
        assert.equal(v.manifestText, readFileSync(resolve(dir, f), 'utf8'));
      }
      const reasons = new Set(invalid.map((v) => `${v.error} ${v.issues[0]?.path} ${v.issues[0]?.line}`));
      assert.equal(reasons.size, invalid.length, 'each invalid example fails for a different reason');
    });
  });

  describe('cross-field rules', () => {
    const cases: [string, (m: Mutable) => void, string, RegExp][] = [
      ['duplicate tool names', (m) => (m.tools[1].name = 'soil.read_moisture'), '/tools/1/name', /twice/],
      ['undo naming no tool', (m) => (m.tools[2].undo.tool = 'fan.sett'), '/tools/2/undo/tool', /no tool "fan.sett"/],
      ['undo on a read_only tool', (m) => (m.tools[0].undo = m.tools[2].undo), '/tools/0/undo', /only reversible/],
      ['undo on a physical tool', (m) => (m.tools[3].undo = m.tools[2].undo), '/tools/3/undo', /only reversible/],
      ['reversible without undo', (m) => delete m.tools[2].undo, '/tools/2/undo', /must declare how to undo/],
      [
        'undo through a read_only tool',
        (m) => (m.tools[2].undo = { tool: 'air.read_climate', args: {} }),
        '/tools/2/undo/tool',
        /must be reversible/,
      ],
      [
        'undo through a physical tool',
        (m) => (m.tools[2].undo = { tool: 'valve.flush', args: {} }),
        '/tools/2/undo/tool',
        /physical_actuation/,
      ],
      [
        'undo argument the undo tool does not take',
        (m) => (m.tools[2].undo.args.rpm = { const: 1 }),
        '/tools/2/undo/args/rpm',
        /takes no argument/,
      ],
      [
        'undo leaving out a required argument',
        (m) => (m.tools[2].undo.args = {}),
        '/tools/2/undo/args',
        /requires argument "speedPercent"/,
      ],
      [
        'undo pointer to an optional result member',
        (m) => (m.tools[2].outputSchema.required = ['speedPercent']),
        '/tools/2/undo/args/speedPercent/pointer',
        /not required/,
      ],
      [
        'undo pointer to a member of another type',
        (m) => (m.tools[2].outputSchema.properties.previousSpeedPercent = { type: 'string' }),
        '/tools/2/undo/args/speedPercent/pointer',
        /string.*needs a integer/,
      ],
      [
        'undo pointer that is not a JSON Pointer',
        (m) => (m.tools[2].undo.args.speedPercent.pointer = 'previousSpeedPercent'),
        '/tools/2/undo/args/speedPercent/pointer',
        /malformed/,
      ],
      [
        'undo pointer to the whole result',
        (m) => (m.tools[2].undo.args.speedPercent.pointer = ''),
        '/tools/2/undo/args/speedPercent/pointer',
        /.+/,
      ],
      [
        'undo from a result the tool does not declare',
        (m) => delete m.tools[2].outputSchema,
        '/tools/2/undo/args/speedPercent/from',
        /no outputSchema/,
      ],
      [
        'undo constant outside the argument schema',
        (m) => (m.tools[2].undo.args.speedPercent = { const: 150 }),
        '/tools/2/undo/args/speedPercent/const',
        /≤ 100/,
      ],
      [
        'a tool excluding itself',
        (m) => m.tools[3].interlocks[1].tools.push('valve.open'),
        '/tools/3/interlocks/1/tools/1',
        /itself/,
      ],
      [
        'an exclusion listed twice',
        (m) => m.tools[3].interlocks[1].tools.push('valve.flush'),
        '/tools/3/interlocks/1/tools/1',
        /twice/,
      ],
      [
        'an exclusion of an undeclared tool',
        (m) => (m.tools[3].interlocks[1].tools = ['valve.close']),
        '/tools/3/interlocks/1/tools/0',
        /no tool/,
      ],
      [
        'allowed hours from equal to to',
        (m) => (m.tools[3].interlocks[0].toHour = 5),
        '/tools/3/interlocks/0/toHour',
        /differ/,
      ],
      [
        'an unknown interlock kind',
        (m) => (m.tools[3].interlocks[0].kind = 'quiet_hours'),
        '/tools/3/interlocks/0/kind',
        /.+/,
      ],
      ['duplicate stream names', (m) => (m.streams[1].name = 'soil.moisture'), '/streams/1/name', /twice/],
      [
        'a stream ttl shorter than its period',
        (m) => (m.streams[0].ttlMs = 1000),
        '/streams/0/ttlMs',
        /samplePeriodMs/,
      ],
      ['a stream priority above 7', (m) => (m.streams[0].priority = 8), '/streams/0/priority', /.+/],
      [
        'an RNode frequency outside its region',
        (m) => (m.radios[0].frequencyHz = 915_000_000),
        '/radios/0/frequencyHz',
        /outside EU868/,
      ],
      [
        'meshtastic fields on an RNode',
        (m) => (m.radios[0].modemPreset = 'LONG_FAST'),
        '/radios/0/modemPreset',
        /unknown member/,
      ],
      ['an uppercase device name', (m) => (m.device.name = 'Greenhouse'), '/device/name', /lowercase/],
      ['a device name with a dot', (m) => (m.device.name = 'gh.1'), '/device/name', /lowercase/],
      [
        '17 labels',
        (m) => (m.device.labels = Object.fromEntries(Array.from({ length: 17 }, (_, i) => [`k${i}`, 'v']))),
        '/device/labels',
        /16/,
      ],
      [
        'a did:key of another key type',
        (m) => (m.device.id = 'did:key:z6LShs9GGnqk85isEBzzshkuVWrVKsRp24GnDuHk8QWkARMW'),
        '/device/id',
        /did:key/,
      ],
      ['a one-word tool name', (m) => (m.tools[4].name = 'flush'), '/tools/4/name', /dotted/],
      ['an uppercase tool name', (m) => (m.tools[4].name = 'valve.Flush'), '/tools/4/name', /dotted/],
      ['a 65-character tool name', (m) => (m.tools[4].name = `valve.${'x'.repeat(59)}`), '/tools/4/name', /.+/],
      [
        'a control character in a description',
        (m) => (m.tools[4].description = 'two\nlines'),
        '/tools/4/description',
        /control/,
      ],
      ['a zero timeout', (m) => (m.tools[4].timeoutMs = 0), '/tools/4/timeoutMs', /.+/],
      ['a rate limit of zero calls', (m) => (m.tools[4].rateLimit.maxCalls = 0), '/tools/4/rateLimit/maxCalls', /.+/],
      [
        'a missing required member',
        (m) => delete m.tools[4].timeoutMs,
        '/tools/4/timeoutMs',
        /required member "timeoutMs" is missing/,
      ],
      ['manifestVersion as a string', (m) => (m.manifestVersion = '1'), '/manifestVersion', /.+/],
      [
        'an open input schema',
        (m) => delete m.tools[0].inputSchema.additionalProperties,
        '/tools/0/inputSchema/additionalProperties',
        /false/,
      ],
      [
        'an output schema rooted at an array',
        (m) => (m.tools[0].outputSchema = { type: 'array', items: { type: 'number' } }),
        '/tools/0/outputSchema/type',
        /object/,
      ],
      ['an unknown top-level member', (m) => (m.extensions = {}), '/extensions', /unknown member/],
    ];
    for (const [name, mutate, path, message] of cases) {
      it(`refuses ${name}`, () => {
        const m = greenhouse() as Mutable;
        mutate(m);
        refusedAt(m, path, message);
      });
    }

    it('accepts an event stream (no samplePeriodMs) and a unitless stream', () => {
      const m = greenhouse() as Mutable;
      m.streams.push({ name: 'door.events', type: 'string', ttlMs: 60_000, priority: 6 });
      assert.equal(decodeManifest(m).streams?.at(-1)?.name, 'door.events');
    });

    it(`refuses more than ${MAX_TOOLS} tools`, () => {
      const m = greenhouse() as Mutable;
      m.tools = Array.from({ length: MAX_TOOLS + 1 }, (_, i) => ({ ...m.tools[4], name: `t.n${i}` }));
      refusedAt(m, '/tools', /.+/);
    });

    it('refuses another integer manifestVersion as unsupported (not invalid)', () => {
      const m = greenhouse() as Mutable;
      m.manifestVersion = 2;
      assert.throws(
        () => decodeManifest(m),
        (e) => isOutpostError(e, 'MANIFEST_VERSION_UNSUPPORTED') && e.details.manifestVersion === 2,
      );
    });

    it('refuses values that are no manifest at all', () => {
      for (const v of [null, [], 42, {}, undefined])
        assert.equal(issuesOf(() => decodeManifest(v)).code, 'MANIFEST_INVALID');
      assert.equal(issuesOf(() => decodeManifest('not json')).code, 'JSON_MALFORMED');
    });

    it('refuses lone surrogates, which could not be hashed', () => {
      const text = example('minimal.json').replace('free disk space.', 'free disk space \\ud800.');
      refusedAt(text, '/tools/0/description', /surrogate/);
      const m = greenhouse() as Mutable;
      m.device.labels['\udc00'] = 'x';
      refusedAt(m, '/device/labels/\udc00', /surrogate/);
    });

    it('bounds a manifest given as a value like one given as text', () => {
      const m = greenhouse() as Mutable;
      const desc = 'x'.repeat(1000);
      m.tools = Array.from({ length: 120 }, (_, i) => ({
        ...m.tools[4],
        name: `t.n${i}`,
        description: desc,
        title: 't'.repeat(64),
      }));
      for (const t of m.tools) t.inputSchema = { type: 'object', additionalProperties: false, description: desc };
      assert.throws(
        () => decodeManifest(m),
        (e) => isOutpostError(e, 'JSON_TOO_LARGE'),
      );
    });

    it('refuses an own "__proto__" member anywhere, instead of dropping it', () => {
      const text = example('minimal.json').replace('"safety_class"', '"__proto__": {"x": 1}, "safety_class"');
      refusedAt(JSON.parse(text), '/tools/0/__proto__', /__proto__/);
      refusedAt(text, '/tools/0/__proto__', /__proto__/);
    });

    it('locates each problem in the text, member names at the name', () => {
      const text = example('minimal.json').replace('"timeoutMs": 1000', '"timeoutMs": 1000, "retries": 3');
      const { issues } = issuesOf(() => decodeManifest(text));
      const lines = text.split('\n');
      const i = issues[0] as unknown as { path: string; line: number; column: number };
      assert.equal(i.path, '/tools/0/retries');
      assert.equal(lines[i.line - 1]!.slice(i.column - 1, i.column + 8), '"retries"');
    });
  });

  describe('manifestHash', () => {
    it('does not depend on member order or formatting', () => {
      const m = decodeManifest(example('greenhouse.json'));
      const h = manifestHash(m);
      fc.assert(
        fc.property(fc.nat(), fc.constantFrom(0, 1, '\t'), (seed, indent) => {
          const shuffle = (v: unknown, s: number): unknown => {
            if (Array.isArray(v)) return v.map((x, i) => shuffle(x, s + i));
            if (v === null || typeof v !== 'object') return v;
            const keys = Object.keys(v);
            const order = keys
              .map((k, i) => [((s + 1) * 2654435761 * (i + 1)) % 1009, k] as const)
              .sort((a, b) => a[0] - b[0]);
            return Object.fromEntries(order.map(([, k]) => [k, shuffle((v as Record<string, unknown>)[k], s + 7)]));
          };
          assert.equal(manifestHash(decodeManifest(JSON.stringify(shuffle(m, seed), null, indent))), h);
        }),
        { numRuns: 50 },
      );
    });

    it('changes when any value changes', () => {
      const a = decodeManifest(example('greenhouse.json'));
      const b = structuredClone(a);
      b.tools[4]!.timeoutMs += 1;
      assert.notEqual(manifestHash(a), manifestHash(b));
      assert.match(manifestHash(a), /^sha256:[0-9a-f]{64}$/);
    });
  });

  describe('planUndo', () => {
    const m = decodeManifest(example('greenhouse.json'));
    const fan = m.tools.find((t) => t.name === 'fan.set')!;

    it('builds the undo call from the result', () => {
      const result = { speedPercent: 80, previousSpeedPercent: 30 };
      const undo = planUndo(fan, { speedPercent: 80 }, result);
      assert.deepEqual(undo, { tool: 'fan.set', args: { speedPercent: 30 } });
      const tool = m.tools.find((t) => t.name === undo.tool)!;
      assert.equal(tool.safety_class, 'reversible');
    });

    it('takes constants and arguments, and copies values rather than sharing them', () => {
      const t = structuredClone(fan);
      t.undo = { tool: 'fan.set', args: { speedPercent: { const: 0 }, note: { from: 'args', pointer: '/meta' } } };
      const args = { speedPercent: 5, meta: { who: 'x' } };
      const undo = planUndo(t, args, {});
      assert.deepEqual(undo.args, { speedPercent: 0, note: { who: 'x' } });
      args.meta.who = 'changed';
      assert.deepEqual(undo.args.note, { who: 'x' });
    });

    it('throws UNDO_UNRESOLVED when a source is missing or the tool has no undo', () => {
      assert.throws(
        () => planUndo(fan, { speedPercent: 80 }, { speedPercent: 80 }),
        (e) => isOutpostError(e, 'UNDO_UNRESOLVED'),
      );
      assert.throws(
        () => planUndo(m.tools[0]!, {}, {}),
        (e) => isOutpostError(e, 'UNDO_UNRESOLVED'),
      );
    });
  });

  describe('isWithinAllowedHours', () => {
    const at = (h: number, min = 0) => Date.UTC(2026, 0, 15, h, min);
    const il = (fromHour: number, toHour: number, utcOffsetMinutes: number) =>
      ({ kind: 'allowed_hours', fromHour, toHour, utcOffsetMinutes }) as Extract<Interlock, { kind: 'allowed_hours' }>;
    const table: [string, ReturnType<typeof il>, number, boolean][] = [
      ['05:00 local opens the window (UTC+1)', il(5, 21, 60), at(4), true],
      ['04:59 local is before it', il(5, 21, 60), at(3, 59), false],
      ['20:59 local is inside', il(5, 21, 60), at(19, 59), true],
      ['21:00 local closes it', il(5, 21, 60), at(20), false],
      ['23:00 in a window past midnight', il(22, 6, 0), at(23), true],
      ['05:59 in a window past midnight', il(22, 6, 0), at(5, 59), true],
      ['06:00 after a window past midnight', il(22, 6, 0), at(6), false],
      ['local day before the UTC day (UTC-5)', il(20, 23, -300), at(2), true],
      ['half-hour offset (UTC+5:30)', il(9, 10, 330), at(3, 30), true],
      ['before the epoch', il(0, 12, 0), Date.UTC(1969, 11, 31, 11), true],
    ];
    for (const [name, interlock, wallMs, want] of table) {
      it(name, () => assert.equal(isWithinAllowedHours(interlock, wallMs), want));
    }

    it('agrees with the hour Date computes for the shifted time', () => {
      fc.assert(
        fc.property(
          fc.integer({ min: 0, max: 23 }),
          fc.integer({ min: 0, max: 23 }),
          fc.integer({ min: -720, max: 840 }),
          fc.integer({ min: -1e12, max: 4e12 }),
          (from, to, offset, wallMs) => {
            fc.pre(from !== to);
            const h = new Date(wallMs + offset * 60_000).getUTCHours();
            const want = from < to ? h >= from && h < to : h >= from || h < to;
            assert.equal(isWithinAllowedHours(il(from, to, offset), wallMs), want);
          },
        ),
      );
    });
  });

  describe('generated JSON Schema (docs/protocol/manifest.schema.json)', () => {
    const schema = JSON.parse(readFileSync(resolve(ROOT, 'docs/protocol/manifest.schema.json'), 'utf8'));
    const check = new Ajv2020({ strict: false, allErrors: true }).compile(schema);

    it('is what the zod source renders', () => {
      assert.deepEqual(schema, JSON.parse(JSON.stringify(manifestJsonSchema())));
    });

    it('accepts every valid vector', () => {
      for (const v of valid) assert.ok(check(JSON.parse(v.manifestText)), `${v.name}: ${JSON.stringify(check.errors)}`);
    });

    it('refuses the structurally invalid examples (cross-field rules need decodeManifest)', () => {
      for (const f of ['unknown-member.json', 'bad-device-id.json']) {
        assert.equal(check(JSON.parse(example(`invalid/${f}`))), false, f);
      }
    });
  });
});
