// Writes generated files (JSON Schemas, derived docs) from their sources; `--check` fails if any committed copy is stale.

import { readFileSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { generatedFiles } from './generated-files.ts';

const ROOT = resolve(import.meta.dirname, '..');
const check = process.argv.includes('--check');
let stale = 0;
for (const { path, render } of generatedFiles()) {
  const full = resolve(ROOT, path);
  const want = render();
  let have: string | undefined;
  try {
    have = readFileSync(full, 'utf8');
  } catch {
    have = undefined;
  }
  if (have === want) continue;
  if (check) {
    stale++;
    process.stderr.write(`stale generated file: ${path} (run \`npm run generate\`)\n`);
  } else {
    writeFileSync(full, want);
    process.stdout.write(`wrote ${path}\n`);
  }
}
if (stale > 0) process.exitCode = 1;
else if (check) process.stdout.write('generated files are up to date\n');
