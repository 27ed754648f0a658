import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { describe, it } from 'node:test';
import { validateToolName } from '@modelcontextprotocol/sdk/shared/toolNameValidation.js';
import { ToolSchema } from '@modelcontextprotocol/sdk/types.js';
import { Ajv2020 } from 'ajv/dist/2020.js';
import fc from 'fast-check';
import { isOutpostError } from '../../protocol/errors.ts';
import { DEVICE_LABEL, DOTTED_NAME, decodeManifest, type SafetyClass } from '../../protocol/manifest.ts';
import {
  annotationsFor,
  MCP_TOOL_NAME,
  type McpToolDefinition,
  mcpToolName,
  parseMcpToolName,
  projectManifest,
  projectTool,
} from '../../protocol/mcp-projection.ts';
import { vectorJson } from '../support/protocol-vectors.ts';

const ROOT = resolve(import.meta.dirname, '../..');

interface Golden {
  manifest: string;
  namePrefix: string | null;
  tools: McpToolDefinition[];
}
interface Names {
  vectors: { deviceLabel: string; toolName: string; mcpName: string }[];
  rejects: { name: string; mcpName: string; error: string }[];
}

const names = vectorJson<Names>('mcp-projection', 'names.json');
const label = fc.stringMatching(DEVICE_LABEL);
const toolName = fc.stringMatching(DOTTED_NAME).filter((n) => n.length <= 64);

describe('MCP projection', () => {
  for (const file of ['greenhouse.json', 'minimal.json']) {
    describe(`golden: ${file}`, () => {
      const golden = vectorJson<Golden>('mcp-projection', file);
      const manifest = decodeManifest(readFileSync(resolve(ROOT, golden.manifest), 'utf8'));
      const projected = projectManifest(manifest, golden.namePrefix === null ? {} : { namePrefix: golden.namePrefix });

      it('matches the golden file', () => assert.deepEqual(projected, golden.tools));

      it('every tool is a valid MCP Tool (SDK schema and tool-name rules)', () => {
        for (const t of projected) {
          ToolSchema.parse(t);
          const v = validateToolName(t.name);
          assert.ok(v.isValid && v.warnings.length === 0, `${t.name}: ${v.warnings.join('; ')}`);
          assert.match(t.name, MCP_TOOL_NAME);
        }
      });

      it('every schema compiles as JSON Schema 2020-12', () => {
        const ajv = new Ajv2020({ strict: true });
        for (const t of projected) {
          ajv.compile(t.inputSchema);
          if (t.outputSchema) ajv.compile(t.outputSchema);
        }
      });

      it('maps every gateway name back to its device and tool', () => {
        for (const [i, t] of projected.entries()) {
          if (golden.namePrefix === null) assert.equal(t.name, manifest.tools[i]!.name);
          else
            assert.deepEqual(parseMcpToolName(t.name), {
              deviceLabel: golden.namePrefix,
              toolName: manifest.tools[i]!.name,
            });
        }
      });
    });
  }

  describe('annotations follow the safety class', () => {
    const table: [SafetyClass, boolean, boolean, boolean, boolean][] = [
      ['read_only', true, false, true, false],
      ['reversible', false, false, false, false],
      ['physical_actuation', false, true, false, true],
    ];
    for (const [cls, readOnly, destructive, idempotent, openWorld] of table) {
      it(cls, () =>
        assert.deepEqual(annotationsFor(cls), {
          readOnlyHint: readOnly,
          destructiveHint: destructive,
          idempotentHint: idempotent,
          openWorldHint: openWorld,
        }),
      );
    }
  });

  describe('names', () => {
    for (const v of names.vectors) {
      it(`${v.deviceLabel} + ${v.toolName} ⇄ ${v.mcpName}`, () => {
        assert.equal(mcpToolName(v.deviceLabel, v.toolName), v.mcpName);
        assert.deepEqual(parseMcpToolName(v.mcpName), { deviceLabel: v.deviceLabel, toolName: v.toolName });
        assert.ok(validateToolName(v.mcpName).isValid);
      });
    }
    for (const r of names.rejects) {
      it(`refuses ${r.name}`, () =>
        assert.throws(
          () => parseMcpToolName(r.mcpName),
          (e) => isOutpostError(e, r.error),
        ));
    }

    it('refuses a malformed label or tool name when building a name', () => {
      for (const [l, t] of [
        ['Gh1', 'valve.open'],
        ['gh.1', 'valve.open'],
        ['gh1', 'valve'],
        ['gh1', 'Valve.open'],
      ]) {
        assert.throws(
          () => mcpToolName(l, t!),
          (e) => isOutpostError(e, 'MCP_NAME_INVALID'),
        );
      }
    });

    it('every label and tool name give a valid MCP name that maps back (so distinct pairs never collide)', () => {
      fc.assert(
        fc.property(label, toolName, (l, t) => {
          const name = mcpToolName(l, t);
          assert.match(name, MCP_TOOL_NAME);
          assert.ok(name.length <= 97);
          assert.deepEqual(parseMcpToolName(name), { deviceLabel: l, toolName: t });
        }),
      );
    });
  });

  describe('purity', () => {
    const manifest = decodeManifest(readFileSync(resolve(ROOT, 'examples/manifests/greenhouse.json'), 'utf8'));

    it('shares nothing with the manifest and gives the same answer twice', () => {
      const before = structuredClone(manifest);
      const a = projectTool(manifest.tools[0]!, { namePrefix: 'gh' });
      (a.inputSchema.properties as Record<string, unknown>).injected = { type: 'null' };
      a.annotations.readOnlyHint = false;
      assert.deepEqual(manifest, before);
      assert.deepEqual(projectTool(manifest.tools[0]!, { namePrefix: 'gh' }).annotations.readOnlyHint, true);
    });

    it('omits title and outputSchema when the manifest has none', () => {
      const t = projectTool({ ...manifest.tools[4]!, title: undefined });
      assert.equal('title' in t, false);
      assert.equal('title' in t.annotations, false);
      assert.equal('outputSchema' in t, false);
    });

    it('refuses a name prefix that is not a device label', () => {
      assert.throws(
        () => projectManifest(manifest, { namePrefix: 'Greenhouse 1' }),
        (e) => isOutpostError(e, 'MCP_NAME_INVALID'),
      );
    });
  });
});
