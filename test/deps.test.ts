// Enforces the dependency direction of DESIGN.md: each folder's README "May import:" line lists
// the folders its code may import; protocol/ may import no `node:` module but crypto and buffer.

import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { describe, it } from 'node:test';

const ROOT = resolve(import.meta.dirname, '..');
const PARTS = [
  'protocol',
  'store',
  'firmware-bridge',
  'agent',
  'gateway',
  'controlplane',
  'cli',
  'scripts',
  'bench',
  'test',
];

function allowedImports(part: string): Set<string> {
  const readme = readFileSync(join(ROOT, part, 'README.md'), 'utf8');
  const line = readme.split('\n').find((l) => l.startsWith('May import:'));
  assert.ok(line, `${part}/README.md has no "May import:" line`);
  return new Set([...line.matchAll(/([a-z-]+)\//g)].map((m) => m[1]!));
}

function tsFiles(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    if (name === 'node_modules' || name.startsWith('.')) continue;
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...tsFiles(p));
    else if (/\.(ts|mts|js|mjs)$/.test(name)) out.push(p);
  }
  return out;
}

/** Every module specifier in static imports, re-exports and dynamic imports. */
export function specifiers(source: string): string[] {
  const noComments = source.replace(/\/\*[\s\S]*?\*\//g, '').replace(/^\s*\/\/.*$/gm, '');
  const found: string[] = [];
  for (const re of [
    /\bfrom\s+['"]([^'"]+)['"]/g,
    /\bimport\s*\(\s*['"]([^'"]+)['"]\s*\)/g,
    /^\s*import\s+['"]([^'"]+)['"]/gm,
  ]) {
    for (const m of noComments.matchAll(re)) found.push(m[1]!);
  }
  return found;
}

describe('dependency direction', () => {
  it('specifiers() finds static, re-export, side-effect and dynamic imports', () => {
    const src =
      "import a from '../x/a.ts';\nexport { b } from './b.ts';\nimport './c.ts';\nconst d = await import('node:fs');\n// import z from '../no.ts'";
    assert.deepEqual(specifiers(src).sort(), ['../x/a.ts', './b.ts', './c.ts', 'node:fs'].sort());
  });

  for (const part of PARTS) {
    it(`${part}/ imports only what its README allows`, () => {
      const allowed = allowedImports(part);
      const violations: string[] = [];
      for (const file of tsFiles(join(ROOT, part))) {
        for (const spec of specifiers(readFileSync(file, 'utf8'))) {
          const where = relative(ROOT, file);
          if (spec.startsWith('.')) {
            const target = relative(ROOT, resolve(dirname(file), spec));
            const targetPart = target.split(sep)[0]!;
            if (targetPart !== part && PARTS.includes(targetPart) && !allowed.has(targetPart)) {
              violations.push(`${where} imports ${spec} (${targetPart}/ is not in "May import")`);
            }
          } else if (
            part === 'protocol' &&
            spec.startsWith('node:') &&
            !['node:crypto', 'node:buffer'].includes(spec)
          ) {
            violations.push(`${where} imports ${spec} (protocol/ does no I/O)`);
          }
        }
      }
      assert.deepEqual(violations, []);
    });
  }

  it('every code folder has a README with Job, Owns, May import and Must not', () => {
    for (const part of PARTS) {
      const readme = readFileSync(join(ROOT, part, 'README.md'), 'utf8');
      for (const key of ['Job:', 'Owns:', 'May import:', 'Must not']) {
        assert.ok(readme.includes(key), `${part}/README.md lacks "${key}"`);
      }
    }
  });
});
