// What ships carries no copyleft licence: shipped code imports only `dependencies` (never a devDependency such as the
// GPL Meshtastic test oracles), and every package in the production dependency closure has a permissive licence.

import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, it } from 'node:test';

const ROOT = resolve(import.meta.dirname, '..');
/** Folders whose code goes into the binary (scripts/, bench/ and test/ do not). */
const SHIPPED = ['protocol', 'store', 'firmware-bridge', 'agent', 'gateway', 'controlplane', 'cli'];
/** SPDX identifiers DESIGN.md allows in `dependencies`. */
const PERMISSIVE = new Set(['MIT', 'ISC', 'Apache-2.0', 'BSD-2-Clause', 'BSD-3-Clause', '0BSD']);

interface PackageJson {
  name: string;
  version: string;
  license?: string | { type?: string };
  dependencies?: Record<string, string>;
  optionalDependencies?: Record<string, string>;
  devDependencies?: Record<string, string>;
}

const readPackage = (dir: string): PackageJson =>
  JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as PackageJson;
const root = readPackage(ROOT);

function tsFiles(dir: string): string[] {
  if (!existsSync(dir)) return [];
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    if (name === 'node_modules' || name.startsWith('.')) continue;
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...tsFiles(p));
    else if (/\.(ts|mts|js|mjs)$/.test(name)) out.push(p);
  }
  return out;
}

/** Module specifiers of static imports, re-exports and dynamic imports (as test/deps.test.ts reads them). */
function specifiers(source: string): string[] {
  const code = source.replace(/\/\*[\s\S]*?\*\//g, '').replace(/^\s*\/\/.*$/gm, '');
  const found: string[] = [];
  for (const re of [
    /\bfrom\s+['"]([^'"]+)['"]/g,
    /\bimport\s*\(\s*['"]([^'"]+)['"]\s*\)/g,
    /^\s*import\s+['"]([^'"]+)['"]/gm,
  ]) {
    for (const m of code.matchAll(re)) found.push(m[1]!);
  }
  return found;
}

/** `@scope/name/sub/path` → `@scope/name`; `name/sub` → `name`. */
function packageName(specifier: string): string {
  const parts = specifier.split('/');
  return specifier.startsWith('@') ? `${parts[0]}/${parts[1]}` : parts[0]!;
}

/** Where Node would find package `name` when required from `fromDir`. */
function packageDir(name: string, fromDir: string): string | undefined {
  for (let dir = fromDir; ; dir = dirname(dir)) {
    const candidate = join(dir, 'node_modules', name);
    if (existsSync(join(candidate, 'package.json'))) return candidate;
    if (dir === ROOT || dir === dirname(dir)) return undefined;
  }
}

/** True when an SPDX expression (`MIT`, `(MIT OR Apache-2.0)`, `A AND B`) only needs permissive licences. */
export function isPermissive(expression: string): boolean {
  const text = expression.replace(/[()]/g, ' ').trim();
  if (/\bAND\b/.test(text)) return text.split(/\s+AND\s+/).every(isPermissive);
  return text.split(/\s+OR\s+/).some((id) => PERMISSIVE.has(id.trim()));
}

function licenceOf(p: PackageJson): string {
  return typeof p.license === 'string' ? p.license : (p.license?.type ?? 'UNKNOWN');
}

/** The production dependency closure: package directory → its package.json, from `dependencies` down. */
function productionClosure(): Map<string, PackageJson> {
  const seen = new Map<string, PackageJson>();
  const queue: [string, string][] = Object.keys(root.dependencies ?? {}).map((n) => [n, ROOT]);
  while (queue.length > 0) {
    const [name, from] = queue.shift()!;
    const dir = packageDir(name, from);
    // Optional platform packages (another CPU's prebuild) are legitimately absent.
    if (dir === undefined || seen.has(dir)) continue;
    const p = readPackage(dir);
    seen.set(dir, p);
    for (const dep of [...Object.keys(p.dependencies ?? {}), ...Object.keys(p.optionalDependencies ?? {})]) {
      queue.push([dep, dir]);
    }
  }
  return seen;
}

describe('supply chain: no copyleft licence ships', () => {
  const closure = productionClosure();

  it('the licence check reads SPDX expressions', () => {
    assert.ok(isPermissive('MIT') && isPermissive('(MIT OR Apache-2.0)') && isPermissive('MIT AND ISC'));
    assert.ok(!isPermissive('GPL-3.0') && !isPermissive('GPL-3.0-only') && !isPermissive('LGPL-2.1 AND MIT'));
    assert.ok(!isPermissive('UNKNOWN') && !isPermissive('SEE LICENSE IN LICENSE'));
  });

  it('shipped code imports only production packages (never a devDependency such as the GPL test oracles)', () => {
    const builtins = new Set(builtinModules);
    const production = new Set([...closure.values()].map((p) => p.name));
    const bad: string[] = [];
    for (const part of SHIPPED) {
      for (const file of tsFiles(join(ROOT, part))) {
        for (const s of specifiers(readFileSync(file, 'utf8'))) {
          if (s.startsWith('.') || s.startsWith('node:') || builtins.has(s)) continue;
          if (!production.has(packageName(s))) bad.push(`${relative(ROOT, file)} imports ${s}`);
        }
      }
    }
    assert.deepEqual(bad, []);
  });

  it('every package of the production dependency closure has a permissive licence', () => {
    assert.ok(closure.size >= Object.keys(root.dependencies ?? {}).length, 'the closure was walked');
    const bad = [...closure.values()]
      .filter((p) => !isPermissive(licenceOf(p)))
      .map((p) => `${p.name}@${p.version}: ${licenceOf(p)}`);
    assert.deepEqual(bad, []);
  });

  it('the GPL Meshtastic packages are devDependencies only, outside the production closure', () => {
    const gpl = Object.keys(root.devDependencies ?? {}).filter((n) => n.startsWith('@meshtastic/'));
    assert.ok(gpl.length > 0);
    for (const n of gpl) {
      assert.equal(root.dependencies?.[n], undefined, `${n} must not be a dependency`);
      assert.ok(![...closure.values()].some((p) => p.name === n), `${n} must not be reachable from dependencies`);
    }
  });
});
