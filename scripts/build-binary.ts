// `npm run build:binary [-- --version X --arch x64|arm64 --out DIR --no-compressed-sizes --no-arm64-code-cache]`:
// writes dist/outpost-linux-x64 and dist/outpost-linux-arm64 and prints their sizes (plain, gzip, xz).

import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { isOutpostError } from '../protocol/errors.ts';
import { ARCHS, type Arch, buildBinaries, defaultBuildCacheDir, sizeReport } from './sea-build.ts';

const ROOT = resolve(import.meta.dirname, '..');

async function buildBinaryMain(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      version: { type: 'string' },
      arch: { type: 'string', multiple: true },
      out: { type: 'string' },
      'no-compressed-sizes': { type: 'boolean' },
      'no-arm64-code-cache': { type: 'boolean' },
    },
  });
  const pkg = JSON.parse(readFileSync(resolve(ROOT, 'package.json'), 'utf8')) as { version: string };
  const archs = (values.arch ?? ARCHS) as Arch[];
  for (const a of archs) if (!ARCHS.includes(a)) throw new Error(`unknown --arch ${a} (x64 or arm64)`);
  const result = await buildBinaries({
    root: ROOT,
    outDir: resolve(values.out ?? resolve(ROOT, 'dist')),
    cacheDir: defaultBuildCacheDir(),
    version: values.version ?? pkg.version,
    archs,
    ...(values['no-arm64-code-cache'] ? { arm64CodeCache: false } : {}),
    compressedSizes: !values['no-compressed-sizes'],
    log: (line) => process.stderr.write(`build: ${line}\n`),
  });
  process.stdout.write(`${sizeReport(result)}\n`);
  return 0;
}

buildBinaryMain(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    const detail = isOutpostError(err) ? `\n${JSON.stringify(err.details, null, 2)}` : '';
    process.stderr.write(`build: ${(err as Error).message}${detail}\n`);
    process.exitCode = 1;
  },
);
