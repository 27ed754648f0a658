// `npm run release -- --version X [--out DIR] [--no-latest]`: builds both binaries and writes a signed release
// directory (scripts/release-layout.ts). `npm run release -- --sign-installer` only re-signs install.sh into
// install.sh.minisig after an edit. The secret key comes from the path in $OUTPOST_RELEASE_KEY, never argv.

import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { isOutpostError } from '../protocol/errors.ts';
import {
  assertKeyReadable,
  ReleaseError,
  releasePublicKeyFile,
  signFile,
  trustedComment,
  VERSION_PATTERN,
  verifyFile,
  writeRelease,
} from './release-layout.ts';
import { buildBinaries, defaultBuildCacheDir, sizeReport } from './sea-build.ts';

const ROOT = resolve(import.meta.dirname, '..');

async function releaseMain(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      version: { type: 'string' },
      out: { type: 'string' },
      'no-latest': { type: 'boolean' },
      'sign-installer': { type: 'boolean' },
    },
  });
  const keyPath = await assertKeyReadable(process.env.OUTPOST_RELEASE_KEY);
  const installer = resolve(ROOT, 'install.sh');
  if (values['sign-installer']) {
    await signFile(keyPath, installer, trustedComment('install.sh'));
    await verifyFile(releasePublicKeyFile(ROOT), installer);
    process.stdout.write('signed install.sh -> install.sh.minisig (commit both)\n');
    return;
  }
  const version = values.version;
  if (!version || !VERSION_PATTERN.test(version)) {
    throw new ReleaseError('RELEASE_BAD_VERSION', 'give the release version: npm run release -- --version X.Y.Z');
  }
  // A release ships the installer whose committed signature verifies: editing it without re-signing fails here.
  await verifyFile(releasePublicKeyFile(ROOT), installer).catch((cause: unknown) => {
    throw new ReleaseError(
      'RELEASE_SIGN_FAILED',
      'install.sh.minisig is stale: run `npm run release -- --sign-installer`',
      {
        cause,
      },
    );
  });
  const pkg = JSON.parse(readFileSync(resolve(ROOT, 'package.json'), 'utf8')) as { version: string };
  if (pkg.version !== version)
    process.stderr.write(`release: note: package.json says ${pkg.version}, releasing ${version}\n`);
  const outDir = resolve(values.out ?? resolve(ROOT, 'dist/release'));
  const built = await buildBinaries({
    root: ROOT,
    outDir: resolve(ROOT, 'dist'),
    cacheDir: defaultBuildCacheDir(),
    version,
    compressedSizes: true,
    log: (line) => process.stderr.write(`build: ${line}\n`),
  });
  process.stdout.write(`${sizeReport(built)}\n`);
  const binaries = Object.fromEntries(built.binaries.map((b) => [b.arch, b.path]));
  const files = await writeRelease({ root: ROOT, outDir, version, binaries, keyPath, latest: !values['no-latest'] });
  process.stdout.write(`release ${version} in ${outDir}:\n${files.map((f) => `  ${f}\n`).join('')}`);
}

releaseMain(process.argv.slice(2)).catch((err: unknown) => {
  const code = isOutpostError(err) ? ` [${err.code}]` : '';
  process.stderr.write(`release: ${(err as Error).message}${code}\n`);
  process.exitCode = 1;
});
