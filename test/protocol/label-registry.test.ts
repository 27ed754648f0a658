// Every domain-separation label in shipped code is registered in canonical-signing.md §12, so no
// label is used for two purposes and every signed structure has a documented home.

import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { it } from 'node:test';

const ROOT = resolve(import.meta.dirname, '../..');
const SHIPPED = ['protocol', 'store', 'firmware-bridge', 'agent', 'gateway', 'controlplane', 'cli'];

function sources(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...sources(p));
    else if (name.endsWith('.ts')) out.push(p);
  }
  return out;
}

it('every outpost/<purpose>/v<n> label in shipped code is in the registry', () => {
  const registry = readFileSync(join(ROOT, 'docs/protocol/canonical-signing.md'), 'utf8');
  const missing: string[] = [];
  for (const part of SHIPPED) {
    for (const file of sources(join(ROOT, part))) {
      for (const m of readFileSync(file, 'utf8').matchAll(/['"`](outpost\/[a-z0-9-]+\/v\d+)/g)) {
        if (!registry.includes(`\`${m[1]}\``)) missing.push(`${m[1]} (${file.slice(ROOT.length + 1)})`);
      }
    }
  }
  assert.deepEqual(missing, []);
});
