// The control plane's logic runs over ports (controlplane/ports.ts); only controlplane/node/ knows Node's I/O,
// SQLite and ws. This keeps another host (Workers + Durable Objects + D1) possible: see DESIGN.md "Scale path".

import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { it } from 'node:test';

/** Module specifiers of static, side-effect and dynamic imports (comments stripped). */
function specifiers(source: string): string[] {
  const code = source.replace(/\/\*[\s\S]*?\*\//g, '').replace(/^\s*\/\/.*$/gm, '');
  return [
    ...code.matchAll(/\bfrom\s+['"]([^'"]+)['"]/g),
    ...code.matchAll(/\bimport\s*\(\s*['"]([^'"]+)['"]\s*\)/g),
    ...code.matchAll(/^\s*import\s+['"]([^'"]+)['"]/gm),
  ].map((m) => m[1]!);
}

const DIR = resolve(import.meta.dirname, '../../controlplane');
const ALLOWED_PACKAGES = ['zod', '@modelcontextprotocol/sdk/', 'node:crypto', 'node:buffer'];

it('controlplane/ outside node/ imports only protocol/, its own modules, node:crypto and portable packages', () => {
  const violations: string[] = [];
  for (const name of readdirSync(DIR).filter((n) => n.endsWith('.ts'))) {
    for (const spec of specifiers(readFileSync(join(DIR, name), 'utf8'))) {
      const ok =
        (spec.startsWith('./') && !spec.startsWith('./node/')) ||
        spec.startsWith('../protocol/') ||
        ALLOWED_PACKAGES.some((p) => spec === p || (p.endsWith('/') && spec.startsWith(p)));
      if (!ok) violations.push(`${name} imports ${spec}`);
    }
  }
  assert.deepEqual(violations, []);
});
